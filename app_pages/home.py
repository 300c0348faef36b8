"""Home: who you are, what you can do here, and the state of the catalog."""

import streamlit as st

from ui.resources import catalog
from ui.session import current_user

user = current_user()
models = catalog().models()

st.title(f"Hello, {user.display_name}")
st.caption(f"Role: {user.role}" + (f" · Team: {user.team}" if user.team else ""))

c1, c2, c3 = st.columns(3)
c1.metric("Chat models in the catalog", len(models))
c2.metric("Providers", len({m.provider for m in models}))
c3.metric("Unpriced models", sum(1 for m in models if not m.priced))

st.subheader("What you can do")
st.page_link(
    "app_pages/models.py", label="Browse models, prices and capabilities", icon=":material/list:"
)
if user.is_admin:
    st.page_link("app_pages/users.py", label="Manage users and teams", icon=":material/group:")
st.caption(f"Prices: {catalog().price_version}")
