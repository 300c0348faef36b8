"""Home: your spend this month against your budget, your recent conversations and
comparisons, the providers you can use; managers and admins also their people's spend
and alerts."""

import streamlit as st

from core.analytics.scope import scope_for
from core.clock import utc_now
from ui import home_panels, settings
from ui.resources import services
from ui.session import current_user

user = current_user()
svc = services()
me = settings.caller(svc, user.id)
now = utc_now()

st.title(f"Hello, {user.display_name}")
st.caption(f"Role: {user.role}" + (f" · Team: {user.team}" if user.team else ""))

home_panels.month_panel(svc, user, now)
if user.is_manager:
    with svc.sessions() as session:
        scope = scope_for(session, user)
    if scope.kind != "user":  # a manager without a team looks after nobody else
        home_panels.team_panel(scope, now)
home_panels.recent_panel(svc, me)
home_panels.health_panel(svc, me, now)
