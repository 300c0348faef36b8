"""Admin (being built in this session)."""

import streamlit as st

from ui.session import require_role

require_role("admin")
st.title("Admin")
