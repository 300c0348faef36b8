"""One dashboard sign-in try: quiet about who exists, and throttled per client address.

Every try costs the same: the same queries and exactly one bcrypt check, against the
user's hash when the name exists and may sign in, else against a fixed hash of the same
cost. A wrong password, an unknown name, a locked account and a throttled address all
answer with the same words (``FAILED``), so neither the reply nor its timing tells
whether a username exists.

Policy (auth.py holds the numbers): 5 failures within 15 minutes lock an account for 15
minutes, but at most 4 failures from any one address count toward it, so one address
cannot lock an account on its own. 5 failures from one address within 15 minutes (any
usernames) pause that address's sign-ins for 15 minutes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from core.accounts import auth

# A bcrypt hash of a password nobody has, at the production cost (auth.BCRYPT_ROUNDS):
# checked when there is no usable hash, so that try takes as long as a real one.
DUMMY_HASH = "$2b$12$nIRZyFX3vcXUdqB3GBaK2.fIC04qJDjnf3QghZ04fI9sbgOo3yBKi"

FAILED = (
    "Wrong username or password, or too many failed sign-ins (sign-in then pauses for "
    f"{int(auth.LOCKOUT_DURATION.total_seconds() // 60)} minutes). Try again later, or ask "
    "an admin to reset your password."
)


def _refused(session: Session, username: str, address: str | None, now: datetime) -> bool:
    if address is not None and auth.address_locked_until(session, address, now) is not None:
        return True
    return auth.locked_until(session, username, now) is not None


def check_sign_in(
    sessions: sessionmaker[Session],
    username: str,
    password: str,
    password_hash: str | None,
    address: str | None,
    now: datetime,
) -> bool:
    """Whether this try signs in; a failure is recorded (committed) before returning.

    ``password_hash`` is the active user's, or None when no such active user exists.
    """
    with sessions() as session:
        refused = _refused(session, username, address, now)
    usable = password_hash if password_hash is not None and not refused else None
    matches = auth.password_matches(password, usable or DUMMY_HASH)
    if matches and usable is not None:
        return True
    with sessions.begin() as session:
        auth.record_login_failure(session, username, now, address)
    return False
