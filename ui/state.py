"""Every st.session_state key the app uses, in one place. Session state holds UI state only."""

from __future__ import annotations

# Set by streamlit-authenticator; read here so nobody spells them twice.
AUTH_STATUS = "authentication_status"
AUTH_USERNAME = "username"

# Ours.
CURRENT_USER = "sb_current_user"
COOKIE_PENDING = "sb_cookie_pending"  # signed in by form; the cookie the browser must still set
SIGNED_IN_AT = "sb_signed_in_at"  # when this session's sign-in (form or cookie) was issued
ACTIVE_PROFILE = "sb_active_profile"  # name of the profile chosen in the sidebar; None: default
PROFILE_SWITCH = "sb_profile_switch"  # the sidebar selectbox; mirrors into ACTIVE_PROFILE
NEW_TOKEN = "sb_new_token"  # a just-created gateway token, shown once then dropped
KEY_TEST_RESULT = "sb_key_test_result"  # provider -> last Test outcome on this page
CONFIRM_DELETE = "sb_confirm_delete"  # what a destructive button is waiting to confirm
CHAIN_DRAFT = "sb_chain_draft"  # the fallback chain being edited, before it is saved
FLASH = "sb_flash"  # a success message carried over the rerun that follows a save
ADMIN_TAB = "tab"  # the Admin page's open tab; also its URL parameter (?tab=Prices)

# Compare page (issue 6). Widget keys too, so tests and callbacks share one spelling.
COMPARE_SESSION = "sb_compare_session"  # id of the open comparison session
COMPARE_NOTICE = "sb_compare_notice"  # one message to show after a rerun
COMPARE_MODELS = "cmp_models"
COMPARE_SET = "cmp_set"
COMPARE_SET_NAME = "cmp_set_name"
COMPARE_TITLE = "cmp_title"
COMPARE_TASK = "cmp_task"
COMPARE_SYSTEM = "cmp_system"
COMPARE_TEMPERATURE = "cmp_temperature"
COMPARE_MAX_TOKENS = "cmp_max_tokens"
COMPARE_BLIND = "cmp_blind"
COMPARE_FALLBACKS = "cmp_fallbacks"
COMPARE_SHARED = "cmp_shared"
COMPARE_PROMPT = "cmp_prompt"
COMPARE_FOLLOWUP = "cmp_followup"
COMPARE_BATCH_TEXT = "cmp_batch_text"
COMPARE_BATCH_FILE = "cmp_batch_file"
COMPARE_OPEN = "cmp_open"
COMPARE_DELETE_CONFIRM = "cmp_delete_confirm"


def compare_vote_key(round_id: int) -> str:
    return f"cmp_vote_{round_id}"


def compare_comment_key(round_id: int) -> str:
    return f"cmp_comment_{round_id}"


def compare_share_key(session_id: str) -> str:
    return f"cmp_share_{session_id}"


# Analytics page.
ANALYTICS_CURSORS = "sb_analytics_cursors"  # keyset cursors of the request pages seen so far
ANALYTICS_FILTER_PREFIX = "sb_analytics_f_"  # + field name: the filter widgets
ANALYTICS_WHATIF = "sb_analytics_whatif"  # the last what-if result
ANALYTICS_EXPORT = "sb_analytics_export"  # the prepared requests CSV and its filters

# Chat page (issue 5).
CHAT_CONVERSATION = "sb_chat_conversation"  # id of the open conversation; None: a new one
CHAT_LOADED = "sb_chat_loaded"  # which conversation the widgets below were filled from
CHAT_FAILED = "sb_chat_failed"  # {"prompt", "message"} of a send that got no answer
CHAT_PENDING = "sb_chat_pending"  # a prompt waiting for cost confirmation
CHAT_RESEND = "sb_chat_resend"  # a prompt to send on this run (Send again / Send anyway)
CHAT_CONFIRM_DELETE = "sb_chat_confirm_delete"  # conversation id awaiting "Yes, delete"
CHAT_SESSION_TOTALS = "sb_chat_session_totals"  # conversations.Totals for this browser session
CHAT_INFLIGHT = "sb_chat_inflight"  # the ChatTurn still streaming; a Stop's rerun settles it
CHAT_FOLLOW_ROUTE = "sb_chat_follow_route"  # the task changed: set the picker to its route
CHAT_FORCE_MODEL = "sb_chat_force_model"  # a model the picker shows on its next draw
CHAT_NOTICE = "sb_chat_notice"  # a one-off success message shown on the next run
# Chat widgets.
CHAT_TASK = "sb_chat_task"
CHAT_MODEL = "sb_chat_model"
CHAT_SHOW_NO_KEY = "sb_chat_show_no_key"  # also list models without a usable key
CHAT_TEMPERATURE = "sb_chat_temperature"
CHAT_MAX_TOKENS = "sb_chat_max_tokens"
CHAT_SYSTEM_PROMPT = "sb_chat_system_prompt"
CHAT_CONFIRM_ABOVE = "sb_chat_confirm_above"
CHAT_SEARCH = "sb_chat_search"
CHAT_TITLE = "sb_chat_title"
CHAT_DRAFT = "sb_chat_draft"  # the text area holding a message to send again
CHAT_INPUT = "sb_chat_input"
CHAT_OPEN_PREFIX = "sb_chat_open_"  # + conversation id: its button in the sidebar
