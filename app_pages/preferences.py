"""Model preferences: profiles, default model, fallback chain, provider order, per-task routes."""

import streamlit as st

from ui import settings
from ui.default_chain import default_model_section, fallback_chain_section, provider_order_section
from ui.import_panel import import_section
from ui.preferences_data import load_preferences
from ui.profile_panel import profiles_section
from ui.resources import services
from ui.session import current_user
from ui.task_routes import task_routes_section

user = current_user()
page = load_preferences(services(), user)
where = f"profile **{page.profile.name}**" if page.profile else "your own settings (no profile)"

st.title("Model preferences")
settings.show_flash()
st.caption(f"Editing {where}. Switch profiles in the sidebar.")

profiles_section(page)
allowed = default_model_section(page)
fallback_chain_section(page, allowed)
provider_order_section(page)
task_routes_section(page, allowed)
if user.is_admin:
    import_section(page)
