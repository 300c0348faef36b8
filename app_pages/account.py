"""My account: password, gateway tokens, and my budget and spend this month."""

import streamlit as st

from core.accounts import auth, tokens
from core.clock import utc_now
from core.errors import SwitchboardError
from core.money import budgets, spend
from core.money.display import usd
from ui import settings, state
from ui.resources import services
from ui.session import current_user

user = current_user()
svc = services()
me = settings.caller(svc, user.id)
now = utc_now()

st.title("My account")
settings.show_flash()
st.caption(
    f"{user.display_name} · {user.username} · {user.role}"
    + (f" · team {user.team}" if user.team else "")
)

# --- budget and spend ----------------------------------------------------------------
st.subheader("My budget this month")
with svc.sessions() as session:
    month = spend.standing(session, user.id, now)
    team_budgets = (
        budgets.budgets_for_team(session, me.team_id, now)
        if user.is_manager and me.team_id is not None
        else []
    )
    my_tokens = tokens.list_tokens(session, user.username)
# One spent figure on the card (spend.standing): the budget's count when there is one.
mine = month.budget
c1, c2, c3 = st.columns(3)
c1.metric(
    "Spent this month",
    usd(month.spent_micros),
    help="What your budget counts: priced requests settled this month."
    if mine
    else "Priced requests only.",
)
c2.metric("Requests this month", f"{month.requests:,}")
if mine is not None:
    c3.metric(
        "Budget left",
        usd(mine.remaining_micros),
        help=f"{usd(mine.limit_micros)} a month ({'hard' if mine.hard else 'soft'}); "
        f"resets {mine.resets_on.isoformat()}",
    )
    held = (
        f" · {usd(mine.reserved_micros)} held by requests in progress"
        if mine.reserved_micros
        else ""
    )
    kind = "hard: requests stop" if mine.hard else "soft: alerts only"
    st.caption(
        f"Budget {usd(mine.limit_micros)} a month ({kind}){held} · resets on "
        f"{mine.resets_on.isoformat()}."
    )
else:
    c3.metric("Budget", "none set")
if month.unpriced_requests:
    st.warning(
        f"{month.unpriced_requests} request(s) this month used unpriced models; their "
        "cost is unknown and not included above."
    )

if team_budgets:
    st.subheader(f"Team {user.team}: budgets")
    st.dataframe(
        [
            {
                "Budget": b.label,
                "Limit": usd(b.limit_micros),
                "Spent": usd(b.spent_micros),
                "Held": usd(b.reserved_micros),
                "Left": usd(b.remaining_micros),
                "Kind": "hard" if b.hard else "soft",
                "Resets": b.resets_on.isoformat(),
            }
            for b in team_budgets
        ],
        hide_index=True,
        width="stretch",
    )

# --- gateway tokens --------------------------------------------------------------------
st.subheader("Gateway tokens")
st.caption(
    "Programs call the /v1 API with a token as you. A token is shown once, when it is "
    "created; only its prefix is kept."
)
new_token = st.session_state.pop(state.NEW_TOKEN, None)
if isinstance(new_token, tuple):
    st.success(f"Created token {new_token[0]!r}. Copy it now; it will not be shown again.")
    st.code(new_token[1], language=None)
active = [t for t in my_tokens if not t.revoked]
if my_tokens:
    st.dataframe(
        [
            {
                "Name": t.name,
                "Prefix": f"{t.prefix}…",
                "Created": settings.when(t.created_at),
                "Last used": settings.when(t.last_used_at),
                "State": f"revoked {settings.when(t.revoked_at)}" if t.revoked else "active",
            }
            for t in my_tokens
        ],
        hide_index=True,
        width="stretch",
    )
else:
    st.info("You have no tokens yet.")
with st.form("new_token", clear_on_submit=True):
    name = st.text_input("Token name", key="token_name", placeholder="e.g. laptop-script")
    if st.form_submit_button("Create token"):
        try:
            with svc.sessions.begin() as session:
                plain, info = tokens.create_token(
                    session,
                    username=user.username,
                    name=name or None,
                    actor=user.username,
                    now=utc_now(),
                )
        except SwitchboardError as exc:
            st.error(exc.message)
        else:
            st.session_state[state.NEW_TOKEN] = (info.name, plain)
            st.rerun()
if active:
    c1, c2 = st.columns([3, 1])
    to_revoke = c1.selectbox("Revoke a token", [t.name for t in active], key="revoke_pick")

    def _revoke(token_name: str = to_revoke) -> None:
        with svc.sessions.begin() as session:
            tokens.revoke_token(
                session, username=user.username, name=token_name, actor=user.username, now=utc_now()
            )
        settings.flash(f"Revoked token {token_name!r}; programs using it are refused from now on.")

    with c2:
        settings.confirm(
            f"token:{to_revoke}",
            f"Revoke token {to_revoke!r}? Programs using it stop working at once.",
            _revoke,
            key="token",
            label="Revoke",
        )

# --- password ------------------------------------------------------------------------
st.subheader("Change password")
with st.form("password", clear_on_submit=True):
    current = st.text_input("Current password", type="password", key="pw_current")
    new = st.text_input(
        "New password",
        type="password",
        key="pw_new",
        help=f"At least {auth.MIN_PASSWORD_LENGTH} characters.",
    )
    repeat = st.text_input("Repeat new password", type="password", key="pw_repeat")
    if st.form_submit_button("Change password"):
        if new != repeat:
            st.error("The two new passwords differ. Nothing was changed; type them again.")
        else:
            try:
                with svc.sessions.begin() as session:
                    auth.change_password(
                        session,
                        username=user.username,
                        current=current,
                        new_password=new,
                        now=utc_now(),
                    )
            except SwitchboardError as exc:
                st.error(exc.message)
            else:
                st.success("Password changed. Use the new one next time you sign in.")
