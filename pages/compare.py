"""Compare (being built in this session)."""

import streamlit as st

from ui.session import current_user

current_user()
st.title("Compare")
