"""Admin: organisation and team keys and routes, endpoints, budgets, prices, the audit log."""

import streamlit as st

from ui import admin_routes, settings
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
settings.show_flash()

keys, routes, endpoints, budgets, prices, audit = st.tabs(
    ["Organisation & team keys", "Routes", "Endpoints", "Budgets", "Prices", "Audit log"]
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
