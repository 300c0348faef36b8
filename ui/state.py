"""Every st.session_state key the app uses, in one place. Session state holds UI state only."""

from __future__ import annotations

# Set by streamlit-authenticator; read here so nobody spells them twice.
AUTH_STATUS = "authentication_status"
AUTH_USERNAME = "username"

# Ours.
CURRENT_USER = "sb_current_user"
COOKIE_PENDING = "sb_cookie_pending"  # signed in by form; set the cookie on the next run
ACTIVE_PROFILE = "sb_active_profile"  # name of the profile chosen in the sidebar; None: default
PROFILE_SWITCH = "sb_profile_switch"  # the sidebar selectbox; mirrors into ACTIVE_PROFILE
NEW_TOKEN = "sb_new_token"  # a just-created gateway token, shown once then dropped
KEY_TEST_RESULT = "sb_key_test_result"  # provider -> last Test outcome on this page
CONFIRM_DELETE = "sb_confirm_delete"  # what a destructive button is waiting to confirm
CHAIN_DRAFT = "sb_chain_draft"  # the fallback chain being edited, before it is saved
FLASH = "sb_flash"  # a success message carried over the rerun that follows a save
