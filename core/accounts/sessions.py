"""Dashboard sign-in sessions that can be revoked on every replica.

The sign-in cookie is a signed token (HS256 under the cookie key) naming the user, when
it expires and when it was issued. Each user has a ``sessions_valid_after`` time in the
database: sign-out, a password change or reset, deactivation and a role change move it
to now, so every cookie and live session issued before then stops working, on every
replica, at its next page run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from sqlalchemy import update
from sqlalchemy.orm import Session

from core.store.tables import User

# The claim the issue time travels in. Not JWT's registered "iat": PyJWT refuses an
# "iat" a moment in the future, which clock skew between replicas would trigger.
ISSUED_CLAIM = "sb_issued"


@dataclass(frozen=True)
class CookieClaims:
    username: str
    expires: datetime
    issued: datetime


def cookie_token(username: str, issued: datetime, lifetime: timedelta, key: str) -> str:
    """The cookie's value; it also carries what streamlit-authenticator reads back."""
    claims: dict[str, Any] = {
        "username": username,
        "exp_date": (issued + lifetime).timestamp(),
        ISSUED_CLAIM: issued.timestamp(),
    }
    return jwt.encode(claims, key, algorithm="HS256")


def read_cookie(token: str, key: str, now: datetime) -> CookieClaims | None:
    """The claims of a well-signed, unexpired cookie that says when it was issued."""
    try:
        claims = jwt.decode(token, key, algorithms=["HS256"])
    except jwt.PyJWTError:
        return None
    username, expires, issued = (claims.get(k) for k in ("username", "exp_date", ISSUED_CLAIM))
    if not isinstance(username, str) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in (expires, issued)
    ):
        return None  # a cookie from before revocable sessions: sign in again
    claims_out = CookieClaims(
        username,
        datetime.fromtimestamp(float(expires), UTC),  # type: ignore[arg-type]
        datetime.fromtimestamp(float(issued), UTC),  # type: ignore[arg-type]
    )
    return claims_out if claims_out.expires > now else None


def end_sessions(session: Session, username: str, now: datetime) -> None:
    """Every cookie and live session of this user issued until now stops working."""
    session.execute(update(User).where(User.username == username).values(sessions_valid_after=now))


def still_valid(valid_after: datetime | None, issued: datetime | None) -> bool:
    """Whether a session issued at ``issued`` outlives the user's last revocation."""
    return valid_after is None or (issued is not None and issued > valid_after)
