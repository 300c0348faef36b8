"""Every st.session_state key the app uses, in one place. Session state holds UI state only."""

from __future__ import annotations

# Set by streamlit-authenticator; read here so nobody spells them twice.
AUTH_STATUS = "authentication_status"
AUTH_USERNAME = "username"

# Ours.
CURRENT_USER = "sb_current_user"
COOKIE_PENDING = "sb_cookie_pending"  # signed in by form; set the cookie on the next run
ACTIVE_PROFILE = "sb_active_profile"  # name of the profile chosen in the sidebar; None: default

# Analytics page.
ANALYTICS_CURSORS = "sb_analytics_cursors"  # keyset cursors of the request pages seen so far
ANALYTICS_FILTER_PREFIX = "sb_analytics_f_"  # + field name: the filter widgets
ANALYTICS_WHATIF = "sb_analytics_whatif"  # the last what-if result
ANALYTICS_EXPORT = "sb_analytics_export"  # the prepared requests CSV and its filters
