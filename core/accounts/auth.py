"""Users, teams, roles, passwords and sign-in lockout.

Passwords are bcrypt-hashed. Lockout is kept in the database, so it holds across
app replicas: five failures within 15 minutes lock the account for 15 minutes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import bcrypt
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from core.accounts.sessions import end_sessions, still_valid
from core.errors import AuthenticationFailed, Conflict, InvalidInput, LoginLocked, NotFound
from core.request import Caller
from core.store import audit
from core.store.tables import ROLES, LoginFailure, Team, User

BCRYPT_ROUNDS = 12
LOCKOUT_THRESHOLD = 5
LOCKOUT_WINDOW = timedelta(minutes=15)
LOCKOUT_DURATION = timedelta(minutes=15)
# An account's failures read per check: many addresses failing at once still cost one
# bounded query.
MAX_FAILURES_READ = 200
MIN_PASSWORD_LENGTH = 10

# Lowercase because streamlit-authenticator lowercases usernames.
_USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
_TEAM_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_COMMON_PASSWORDS = frozenset(
    {
        "password",
        "password1",
        "password123",
        "1234567890",
        "qwertyuiop",
        "letmein123",
        "switchboard",
        "administrator",
        "iloveyou12",
        "changeme123",
        "welcome123",
    }
)


@dataclass(frozen=True)
class UserInfo:
    """A user as the UI and CLI see it; never carries the password hash."""

    id: int
    username: str
    display_name: str
    email: str | None
    role: str
    team: str | None
    active: bool
    created_at: datetime

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_manager(self) -> bool:
        return self.role in ("admin", "manager")


def _info(user: User) -> UserInfo:
    return UserInfo(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        email=user.email,
        role=user.role,
        team=user.team.name if user.team else None,
        active=user.active,
        created_at=user.created_at,
    )


def validate_username(username: str) -> str:
    name = username.strip()
    if not _USERNAME_RE.match(name):
        raise InvalidInput(
            f"Username {name!r} is not allowed. Use 2-64 lowercase letters, digits, "
            "dots, dashes or underscores, starting with a letter or digit."
        )
    return name


def validate_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput(f"Unknown role {role!r}. Choose one of: {', '.join(ROLES)}.")
    return role


def check_password_strength(password: str, username: str = "") -> None:
    """Refuse empty, short and guessable passwords with a message that says what to do."""
    if not password or not password.strip():
        raise InvalidInput("The password is empty. Choose one of at least 10 characters.")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"The password is too short ({len(password)} characters). "
            f"Use at least {MIN_PASSWORD_LENGTH}."
        )
    lowered = password.lower()
    if lowered in _COMMON_PASSWORDS or len(set(password)) < 4:
        raise InvalidInput("That password is too easy to guess. Choose a less common one.")
    if username and username.lower() in lowered:
        raise InvalidInput("The password must not contain the username.")


def hash_password(password: str, rounds: int = BCRYPT_ROUNDS) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


def password_matches(password: str, password_hash: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode(), password_hash.encode())
    except ValueError:
        return False


def ensure_team(session: Session, name: str, *, actor: str, now: datetime) -> Team:
    clean = name.strip()
    if not _TEAM_RE.match(clean):
        raise InvalidInput(
            f"Team name {clean!r} is not allowed. Use up to 64 letters, digits, spaces, "
            "dots, dashes or underscores."
        )
    team = session.scalar(select(Team).where(Team.name == clean))
    if team is None:
        team = Team(name=clean, created_at=now)
        session.add(team)
        session.flush()
        audit.record(session, actor=actor, action="team.create", target=clean, now=now)
    return team


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: str,
    actor: str,
    now: datetime,
    team: str | None = None,
    display_name: str | None = None,
    email: str | None = None,
    rounds: int = BCRYPT_ROUNDS,
) -> UserInfo:
    """Validate everything first, then write user, team and audit rows in one transaction."""
    name = validate_username(username)
    validate_role(role)
    check_password_strength(password, name)
    if email is not None and email.strip() and not _EMAIL_RE.match(email.strip()):
        raise InvalidInput(f"{email!r} does not look like an email address.")
    if session.scalar(select(User.id).where(User.username == name)) is not None:
        raise Conflict(f"A user named {name!r} already exists. Pick another username.")
    team_row = ensure_team(session, team, actor=actor, now=now) if team else None
    user = User(
        username=name,
        display_name=(display_name or "").strip() or name,
        email=(email or "").strip() or None,
        password_hash=hash_password(password, rounds),
        role=role,
        team=team_row,
        active=True,
        created_at=now,
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="user.create",
        target=name,
        now=now,
        details={"role": role, "team": team_row.name if team_row else None},
    )
    return _info(user)


def create_first_admin(
    session: Session,
    *,
    username: str,
    password: str,
    now: datetime,
    display_name: str | None = None,
    email: str | None = None,
    rounds: int = BCRYPT_ROUNDS,
) -> UserInfo:
    """Create the first admin, only while there are no users at all."""
    if count_users(session) > 0:
        raise Conflict("An admin already exists. Sign in, or ask an admin for an account.")
    return create_user(
        session,
        username=username,
        password=password,
        role="admin",
        actor="first-run",
        now=now,
        display_name=display_name,
        email=email,
        rounds=rounds,
    )


def count_users(session: Session) -> int:
    return session.scalar(select(func.count(User.id))) or 0


def list_users(session: Session) -> list[UserInfo]:
    return [_info(u) for u in session.scalars(select(User).order_by(User.username))]


def get_user(session: Session, username: str) -> UserInfo:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"No user named {username!r}. `switchboard user list` shows who exists.")
    return _info(user)


def find_active_user(session: Session, username: str) -> UserInfo | None:
    user = session.scalar(select(User).where(User.username == username, User.active.is_(True)))
    return _info(user) if user else None


def find_session_user(session: Session, username: str, issued: datetime | None) -> UserInfo | None:
    """The active user a sign-in issued at ``issued`` still stands for; None once revoked."""
    user = session.scalar(select(User).where(User.username == username, User.active.is_(True)))
    if user is None or not still_valid(user.sessions_valid_after, issued):
        return None
    return _info(user)


def _lock_end(recent_desc: list[datetime], now: datetime) -> datetime | None:
    """From one account's newest failures (newest first): when its lock ends, if locked."""
    recent = recent_desc[:LOCKOUT_THRESHOLD]
    if len(recent) < LOCKOUT_THRESHOLD or recent[0] - recent[-1] > LOCKOUT_WINDOW:
        return None
    until = recent[0] + LOCKOUT_DURATION
    return until if until > now else None


def _counted(rows: Iterable[tuple[datetime, str | None]]) -> list[datetime]:
    """An account's failures (newest first) that count toward its lock: at most
    LOCKOUT_THRESHOLD - 1 from any one address, so one address cannot lock it alone.
    Failures without an address (the CLI, older rows) all count."""
    per_address: dict[str, int] = {}
    counted: list[datetime] = []
    for at, address in rows:
        if address is not None:
            per_address[address] = per_address.get(address, 0) + 1
            if per_address[address] >= LOCKOUT_THRESHOLD:
                continue
        counted.append(at)
    return counted


def locked_until(session: Session, username: str, now: datetime) -> datetime | None:
    """When the account's lock ends, or None if it is not locked."""
    rows = session.execute(
        select(LoginFailure.at, LoginFailure.address)
        .where(LoginFailure.username == username, LoginFailure.at > now - 2 * LOCKOUT_WINDOW)
        .order_by(LoginFailure.at.desc())
        .limit(MAX_FAILURES_READ)
    )
    return _lock_end(_counted((at, address) for at, address in rows), now)


def address_locked_until(session: Session, address: str, now: datetime) -> datetime | None:
    """When one client address may try to sign in again, after too many failures from it."""
    recent = list(
        session.scalars(
            select(LoginFailure.at)
            .where(LoginFailure.address == address, LoginFailure.at > now - 2 * LOCKOUT_WINDOW)
            .order_by(LoginFailure.at.desc())
            .limit(LOCKOUT_THRESHOLD)
        )
    )
    return _lock_end(recent, now)


def locked_usernames(session: Session, now: datetime) -> set[str]:
    """Every account locked right now, in one query (the sign-in page asks on each run)."""
    by_user: dict[str, list[tuple[datetime, str | None]]] = {}
    rows = session.execute(
        select(LoginFailure.username, LoginFailure.at, LoginFailure.address)
        .where(LoginFailure.at > now - 2 * LOCKOUT_WINDOW)
        .order_by(LoginFailure.at.desc())
    )
    for username, at, address in rows:
        by_user.setdefault(username, []).append((at, address))
    return {n for n, rs in by_user.items() if _lock_end(_counted(rs), now) is not None}


def lock_message(until: datetime, now: datetime) -> LoginLocked:
    seconds = max(1, int((until - now).total_seconds()))
    minutes = -(-seconds // 60)
    return LoginLocked(
        f"Too many failed sign-ins. This account is locked for {minutes} more minute"
        f"{'s' if minutes != 1 else ''}; try again later or ask an admin.",
        retry_after_s=seconds,
    )


def record_login_failure(
    session: Session, username: str, now: datetime, address: str | None = None
) -> None:
    """One failed sign-in; any typed name is kept (clipped), so unknown ones count alike."""
    session.add(LoginFailure(username=username[:64], at=now, address=address and address[:64]))


def record_login_success(session: Session, username: str, now: datetime) -> None:
    session.execute(delete(LoginFailure).where(LoginFailure.username == username))
    audit.record(session, actor=username, action="user.sign_in", target=username, now=now)


def verify_login(
    sessions: sessionmaker[Session], username: str, password: str, now: datetime
) -> UserInfo:
    """Check a password with lockout. Owns its transactions: a failure is committed even
    though the call then raises, so lockout counts it."""
    name = username.strip().lower()
    with sessions.begin() as session:
        until = locked_until(session, name, now)
        if until is not None:
            raise lock_message(until, now)
        user = session.scalar(select(User).where(User.username == name, User.active.is_(True)))
        if user is not None and password_matches(password, user.password_hash):
            record_login_success(session, name, now)
            return _info(user)
        record_login_failure(session, name, now)
    raise AuthenticationFailed("Wrong username or password.")


# --- user administration (the Admin page and `switchboard user ...`) -------------------


def _user_row(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"No user named {username!r}. `switchboard user list` shows who exists.")
    return user


def _active_admins(session: Session) -> int:
    query = select(func.count(User.id)).where(User.role == "admin", User.active.is_(True))
    return session.scalar(query) or 0


def _guard_last_admin(session: Session, user: User, what: str) -> None:
    """Refuse a change that would leave no active admin (checked after the change is flushed,
    so two admins demoting each other at once cannot both succeed on one database)."""
    session.flush()
    if _active_admins(session) == 0:
        raise Conflict(
            f"Cannot {what} {user.username!r}: they are the last active admin. "
            "Make another user an admin first."
        )


def set_active(
    session: Session, *, username: str, active: bool, actor: str, now: datetime
) -> UserInfo:
    """Deactivate (sign-in refused, live sessions end on their next action) or reactivate."""
    user = _user_row(session, username)
    if user.active == active:
        return _info(user)
    user.active = active
    if not active:
        _guard_last_admin(session, user, "deactivate")
        end_sessions(session, username, now)
    audit.record(
        session,
        actor=actor,
        action="user.activate" if active else "user.deactivate",
        target=username,
        now=now,
    )
    return _info(user)


def set_role(session: Session, *, username: str, role: str, actor: str, now: datetime) -> UserInfo:
    user = _user_row(session, username)
    validate_role(role)
    previous = user.role
    if previous == role:
        return _info(user)
    user.role = role
    if previous == "admin":
        _guard_last_admin(session, user, "demote")
    end_sessions(session, username, now)  # the new role applies from a new sign-in
    audit.record(
        session,
        actor=actor,
        action="user.role",
        target=username,
        now=now,
        details={"from": previous, "to": role},
    )
    return _info(user)


def set_team(
    session: Session, *, username: str, team: str | None, actor: str, now: datetime
) -> UserInfo:
    """Move a user to a team (created if new), or out of any team with None or ""."""
    user = _user_row(session, username)
    previous = user.team.name if user.team else None
    user.team = ensure_team(session, team, actor=actor, now=now) if team and team.strip() else None
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="user.team",
        target=username,
        now=now,
        details={"from": previous, "to": user.team.name if user.team else None},
    )
    return _info(user)


def reset_password(
    session: Session,
    *,
    username: str,
    new_password: str,
    actor: str,
    now: datetime,
    rounds: int = BCRYPT_ROUNDS,
) -> None:
    """An admin sets a new password; failed sign-ins are forgotten so the user can sign in."""
    user = _user_row(session, username)
    check_password_strength(new_password, username)
    user.password_hash = hash_password(new_password, rounds)
    session.execute(delete(LoginFailure).where(LoginFailure.username == username))
    end_sessions(session, username, now)
    audit.record(session, actor=actor, action="user.password_reset", target=username, now=now)


def change_password(
    session: Session,
    *,
    username: str,
    current: str,
    new_password: str,
    now: datetime,
    rounds: int = BCRYPT_ROUNDS,
) -> None:
    """A user changes their own password; the current one must match."""
    user = _user_row(session, username)
    if not password_matches(current, user.password_hash):
        raise AuthenticationFailed("The current password is wrong. Nothing was changed.")
    if current == new_password:
        raise InvalidInput("The new password is the same as the current one. Choose another.")
    check_password_strength(new_password, username)
    user.password_hash = hash_password(new_password, rounds)
    end_sessions(session, username, now)  # a copied cookie dies with the old password
    audit.record(session, actor=username, action="user.password_change", target=username, now=now)


def list_teams(session: Session) -> list[tuple[int, str]]:
    return [(i, n) for i, n in session.execute(select(Team.id, Team.name).order_by(Team.name))]


def caller_for(session: Session, user_id: int, token_name: str | None = None) -> Caller:
    """The gateway's view of an active user: id, name, role and current team id."""
    user = session.get(User, user_id)
    if user is None or not user.active:
        raise NotFound("Your account no longer exists or is deactivated; sign in again.")
    return Caller(user.id, user.username, user.role, user.team_id, token_name)
