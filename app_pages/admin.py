"""Admin: organisation and team keys and routes, endpoints, budgets, prices, the audit log."""

import streamlit as st

from ui import admin_routes, settings, state
from ui.admin_audit import audit_tab
from ui.admin_data import load_admin
from ui.admin_endpoints import endpoints_tab
from ui.admin_keys import shared_keys_tab
from ui.admin_money import budgets_tab, prices_tab
from ui.resources import services
from ui.session import require_role

admin = require_role("admin")
page = load_admin(services(), admin)

st.title("Admin")
# A toast, not a box above the tabs: nothing moves, so the page keeps its scroll position.
settings.show_flash(toast=True)

# Stateful tabs, bound to ?tab=: a save's rerun (and a reload or a shared link) keeps the tab.
keys, routes, endpoints, budgets, prices, audit = st.tabs(
    ["Organisation & team keys", "Routes", "Endpoints", "Budgets", "Prices", "Audit log"],
    key=state.ADMIN_TAB,
    bind="query-params",
)
with keys:
    shared_keys_tab(page)
with routes:
    admin_routes.render(page.svc, admin.username, page.teams)
with endpoints:
    endpoints_tab(page)
with budgets:
    budgets_tab(page)
with prices:
    prices_tab(page)
with audit:
    audit_tab(page.svc)
