"""Analytics: usage, cost, budgets, alerts and what-if for the viewer's scope.

Members see their own usage, managers their team's, admins everything. The scope comes
from the signed-in user; filters live in the URL so a view can be shared, and any
filter outside the scope is dropped (with a note), never trusted.
"""

from __future__ import annotations

import streamlit as st

from core.clock import utc_now
from core.errors import SwitchboardError
from ui import analytics_data as data
from ui import analytics_views as views
from ui.analytics_figures import key_figures
from ui.analytics_filters import filter_bar, view_from_url, view_picker
from ui.resources import services
from ui.session import current_user

user = current_user()
svc = services()
now = utc_now()
minute = now.replace(second=0, microsecond=0)
today = now.date()

asked = view_from_url(svc.sessions, user, today)
scope, filters = asked.scope, asked.filters

st.title("Analytics")
st.caption(
    f"Showing usage for {scope.label} · {filters.start:%d %b %Y} to "
    f"{filters.end:%d %b %Y} (UTC days) · compared with the {filters.days} days before"
)
for note in asked.notes:
    st.warning(note)

options = data.filter_options(scope, filters.start, filters.end)
filter_bar(scope, filters, options, today)

try:
    current, previous = data.key_figures(scope, filters)
except SwitchboardError as exc:
    st.error(exc.message)
    st.stop()
key_figures(current, previous)
if current.requests == 0:
    st.info(
        "No requests match these filters in this period. Widen the date range or clear a filter."
    )

view = view_picker(asked.view, filters)
if view == "Overview":
    views.overview(scope, filters)
elif view == "Models":
    views.models(scope, filters)
elif view == "Budgets & alerts":
    views.budgets_and_alerts(svc, user, scope, minute, now)
elif view == "What-if":
    views.what_if(svc, scope, filters, options, now)
elif view == "Requests":
    views.request_list(svc, scope, filters)
elif view == "Export":
    views.export(svc, scope, filters, today)
