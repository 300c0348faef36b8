"""Every st.session_state key the app uses, in one place. Session state holds UI state only."""

from __future__ import annotations

# Set by streamlit-authenticator; read here so nobody spells them twice.
AUTH_STATUS = "authentication_status"
AUTH_USERNAME = "username"

# Ours.
CURRENT_USER = "sb_current_user"
COOKIE_PENDING = "sb_cookie_pending"  # signed in by form; set the cookie on the next run
ACTIVE_PROFILE = "sb_active_profile"  # name of the profile chosen in the sidebar; None: default

# Chat page (issue 5).
CHAT_CONVERSATION = "sb_chat_conversation"  # id of the open conversation; None: a new one
CHAT_LOADED = "sb_chat_loaded"  # which conversation the widgets below were filled from
CHAT_FAILED = "sb_chat_failed"  # {"prompt", "message"} of a send that got no answer
CHAT_PENDING = "sb_chat_pending"  # a prompt waiting for cost confirmation
CHAT_RESEND = "sb_chat_resend"  # a prompt to send on this run (Send again / Send anyway)
CHAT_CONFIRM_DELETE = "sb_chat_confirm_delete"  # conversation id awaiting "Yes, delete"
CHAT_SESSION_TOTALS = "sb_chat_session_totals"  # conversations.Totals for this browser session
CHAT_INFLIGHT = "sb_chat_inflight"  # threading.Event of a turn still saving after a rerun
CHAT_NOTICE = "sb_chat_notice"  # a one-off success message shown on the next run
# Chat widgets.
CHAT_TASK = "sb_chat_task"
CHAT_MODEL = "sb_chat_model"
CHAT_TEMPERATURE = "sb_chat_temperature"
CHAT_MAX_TOKENS = "sb_chat_max_tokens"
CHAT_SYSTEM_PROMPT = "sb_chat_system_prompt"
CHAT_CONFIRM_ABOVE = "sb_chat_confirm_above"
CHAT_SEARCH = "sb_chat_search"
CHAT_TITLE = "sb_chat_title"
CHAT_DRAFT = "sb_chat_draft"  # the text area holding a message to send again
CHAT_INPUT = "sb_chat_input"
CHAT_OPEN_PREFIX = "sb_chat_open_"  # + conversation id: its button in the sidebar
