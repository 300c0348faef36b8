"""Gateway tokens: bearer tokens that let programs call the /v1 API as a user.

A token is ``sb-`` + 43 URL-safe characters (256 bits). Only its SHA-256 and a short
display prefix are stored; the plaintext exists once, in ``create_token``'s return
value. A fast unsalted hash is enough here because the token is random, not a
password: there is nothing to guess from a dictionary, and lookups stay one indexed
query per request.

The gateway_tokens table is unique on (user_id, name), revoked rows included, so
creating a token under the name of a revoked one deletes that revoked row (its
history stays in the audit log) rather than failing.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from core.errors import AuthenticationFailed, Conflict, InvalidInput, NotFound
from core.request import Caller
from core.store import audit
from core.store.tables import GatewayToken, User

TOKEN_PREFIX = "sb-"
DISPLAY_CHARS = 8  # "sb-" + 5 characters: enough to tell tokens apart, useless to guess with
DEFAULT_NAME = "default"
# A write per request would serialise the API on SQLite; a minute is precise enough.
LAST_USED_RESOLUTION = timedelta(minutes=1)
AUTH_FAILED_MESSAGE = (
    "Invalid or revoked gateway token. Create one with `switchboard token create USERNAME`."
)
_NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass(frozen=True)
class TokenInfo:
    """A token as people see it: never the token or its hash."""

    name: str
    username: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def validate_name(name: str | None) -> str:
    clean = DEFAULT_NAME if name is None else name.strip()
    if not _NAME_RE.match(clean):
        raise InvalidInput(
            f"Token name {clean!r} is not allowed. Use 1-64 letters, digits, dashes, "
            "underscores or dots."
        )
    return clean


def _info(row: GatewayToken, username: str) -> TokenInfo:
    return TokenInfo(
        name=row.name,
        username=username,
        prefix=row.prefix,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def _user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"No user named {username!r}. `switchboard user list` shows who exists.")
    return user


def create_token(
    session: Session, *, username: str, name: str | None = None, actor: str, now: datetime
) -> tuple[str, TokenInfo]:
    """A new token for an active user; returns the plaintext (shown once) and its info."""
    clean = validate_name(name)
    user = _user(session, username)
    if not user.active:
        raise InvalidInput(f"User {username!r} is inactive; reactivate them before adding tokens.")
    existing = session.scalar(
        select(GatewayToken).where(GatewayToken.user_id == user.id, GatewayToken.name == clean)
    )
    if existing is not None and existing.revoked_at is None:
        raise Conflict(
            f"{username!r} already has an active token named {clean!r}. Pick another name "
            f"with --name, or revoke it first: switchboard token revoke {username} {clean}"
        )
    if existing is not None:
        session.execute(delete(GatewayToken).where(GatewayToken.id == existing.id))
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = GatewayToken(
        user_id=user.id,
        name=clean,
        token_hash=hash_token(token),
        prefix=token[:DISPLAY_CHARS],
        created_at=now,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="token.create",
        target=f"{username}/{clean}",
        now=now,
        details={"prefix": row.prefix},
    )
    return token, _info(row, username)


def authenticate_token(session: Session, token: str, now: datetime) -> Caller:
    """The caller a bearer token stands for, or AuthenticationFailed.

    Needs a writable transaction: it stamps ``last_used_at`` at most once a minute.
    """
    # Only the cheap public prefix is checked before hashing; the lookup itself is by
    # hash, so response time does not depend on how much of a guess was right.
    if not token.startswith(TOKEN_PREFIX):
        raise AuthenticationFailed(AUTH_FAILED_MESSAGE)
    found = session.execute(
        select(GatewayToken, User)
        .join(User, User.id == GatewayToken.user_id)
        .where(GatewayToken.token_hash == hash_token(token))
    ).first()
    if found is None:
        raise AuthenticationFailed(AUTH_FAILED_MESSAGE)
    row, user = found.tuple()
    if row.revoked_at is not None or not user.active:
        raise AuthenticationFailed(AUTH_FAILED_MESSAGE)
    stale = now - LAST_USED_RESOLUTION
    if row.last_used_at is None or row.last_used_at <= stale:
        # Conditional UPDATE: replicas racing on the same token write once, not each.
        session.execute(
            update(GatewayToken)
            .where(
                GatewayToken.id == row.id,
                or_(GatewayToken.last_used_at.is_(None), GatewayToken.last_used_at <= stale),
            )
            .values(last_used_at=now)
            .execution_options(synchronize_session=False)
        )
    return Caller(
        user_id=user.id,
        username=user.username,
        role=user.role,
        team_id=user.team_id,
        token_name=row.name,
    )


def list_tokens(session: Session, username: str | None = None) -> list[TokenInfo]:
    """Every token (revoked ones too), by username then name; one user's if given."""
    query = (
        select(GatewayToken, User.username)
        .join(User, User.id == GatewayToken.user_id)
        .order_by(User.username, GatewayToken.name)
    )
    if username is not None:
        query = query.where(GatewayToken.user_id == _user(session, username).id)
    return [_info(row, name) for row, name in session.execute(query).tuples()]


def revoke_token(
    session: Session, *, username: str, name: str, actor: str, now: datetime
) -> TokenInfo:
    """Revoke a token; revoking one that already is changes nothing and is not an error.

    The returned ``revoked_at`` equals ``now`` exactly when this call did the revoking.
    """
    user = _user(session, username)
    row = session.scalar(
        select(GatewayToken).where(GatewayToken.user_id == user.id, GatewayToken.name == name)
    )
    if row is None:
        raise NotFound(
            f"{username!r} has no token named {name!r}. "
            f"`switchboard token list --user {username}` shows their tokens."
        )
    if row.revoked_at is None:
        row.revoked_at = now
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="token.revoke",
            target=f"{username}/{name}",
            now=now,
            details={"prefix": row.prefix},
        )
    return _info(row, username)
