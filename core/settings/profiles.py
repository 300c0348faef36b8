"""Named profiles (e.g. Personal, Work): each holds its own routes and a choice of keys.

A request made under a profile uses the profile's routes before the user's own
(see core.settings.routes.resolve), and looks its provider keys up in the profile's order:

* ``auto``   - your own key, then your team's, the organisation's, the environment's;
* ``own``    - only your own keys (personal work never bills the company);
* ``shared`` - only team, organisation or environment keys (work never bills you).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core.errors import Conflict, InvalidInput, NotFound
from core.settings.routes import KEY_ORDER, RouteOptions, check_options, validate_chain
from core.store import audit
from core.store.tables import KEY_CHOICES, Profile, ProfileRoute

MAX_PROFILES: Final = 20
KEY_CHOICE_LABELS: Final[Mapping[str, str]] = {
    "auto": "Own key first, then team, organisation, environment",
    "own": "Only my own keys",
    "shared": "Only team or organisation keys (never mine)",
}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")


@dataclass(frozen=True)
class ProfileInfo:
    id: int
    name: str
    keys_choice: str
    updated_at: datetime

    @property
    def key_order(self) -> tuple[str, ...]:
        return KEY_ORDER[self.keys_choice]


@dataclass(frozen=True)
class ProfileRouteInfo:
    task: str
    models: tuple[str, ...]
    options: RouteOptions
    updated_at: datetime
    updated_by: str


def _info(row: Profile) -> ProfileInfo:
    return ProfileInfo(row.id, row.name, row.keys_choice, row.updated_at)


def validate_name(name: str) -> str:
    clean = name.strip()
    if not _NAME_RE.match(clean):
        raise InvalidInput(
            f"Profile name {clean!r} is not allowed. Use 1-64 letters, digits, spaces, dots, "
            "dashes or underscores, starting with a letter or digit."
        )
    return clean


def _check_choice(keys_choice: str) -> str:
    if keys_choice not in KEY_CHOICES:
        raise InvalidInput(
            f"Unknown keys choice {keys_choice!r}; use one of {', '.join(KEY_CHOICES)}."
        )
    return keys_choice


def _row(session: Session, user_id: int, name: str) -> Profile | None:
    return session.scalar(select(Profile).where(Profile.user_id == user_id, Profile.name == name))


def list_profiles(session: Session, user_id: int) -> list[ProfileInfo]:
    rows = session.scalars(select(Profile).where(Profile.user_id == user_id).order_by(Profile.name))
    return [_info(r) for r in rows]


def find_profile(session: Session, user_id: int, name: str) -> ProfileInfo | None:
    row = _row(session, user_id, name)
    return _info(row) if row else None


def get_profile(session: Session, user_id: int, name: str) -> ProfileInfo:
    """The caller's own profile by name; another user's profile is simply not found."""
    found = find_profile(session, user_id, name)
    if found is None:
        raise InvalidInput(
            f"You have no profile named {name!r}. Pick one from the sidebar switch, or create "
            "it on the Model preferences page."
        )
    return found


def create_profile(
    session: Session, *, user_id: int, name: str, keys_choice: str, actor: str, now: datetime
) -> ProfileInfo:
    clean = validate_name(name)
    _check_choice(keys_choice)
    if _row(session, user_id, clean) is not None:
        raise Conflict(f"You already have a profile named {clean!r}. Pick another name.")
    if len(list_profiles(session, user_id)) >= MAX_PROFILES:
        raise InvalidInput(f"You can keep at most {MAX_PROFILES} profiles; delete one first.")
    row = Profile(
        user_id=user_id, name=clean, keys_choice=keys_choice, created_at=now, updated_at=now
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="profile.create",
        target=f"{user_id}/{clean}",
        now=now,
        details={"keys_choice": keys_choice},
    )
    return _info(row)


def update_profile(
    session: Session,
    *,
    user_id: int,
    name: str,
    actor: str,
    now: datetime,
    new_name: str | None = None,
    keys_choice: str | None = None,
) -> ProfileInfo:
    row = _row(session, user_id, name)
    if row is None:
        raise NotFound(f"You have no profile named {name!r}.")
    details: dict[str, object] = {}
    if new_name is not None and new_name.strip() != row.name:
        clean = validate_name(new_name)
        if _row(session, user_id, clean) is not None:
            raise Conflict(f"You already have a profile named {clean!r}. Pick another name.")
        details["renamed_to"] = clean
        row.name = clean
    if keys_choice is not None:
        row.keys_choice = _check_choice(keys_choice)
        details["keys_choice"] = keys_choice
    row.updated_at = now
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="profile.update",
        target=f"{user_id}/{name}",
        now=now,
        details=details,
    )
    return _info(row)


def delete_profile(session: Session, *, user_id: int, name: str, actor: str, now: datetime) -> None:
    row = _row(session, user_id, name)
    if row is None:
        raise NotFound(f"You have no profile named {name!r}.")
    # Explicitly, not only by the FK cascade: SQLite enforces foreign keys per connection.
    session.execute(delete(ProfileRoute).where(ProfileRoute.profile_id == row.id))
    session.delete(row)
    audit.record(session, actor=actor, action="profile.delete", target=f"{user_id}/{name}", now=now)


def set_profile_route(
    session: Session,
    *,
    profile_id: int,
    models: Sequence[str],
    known_model: Callable[[str], bool],
    actor: str,
    now: datetime,
    task: str = "",
    options: RouteOptions | None = None,
) -> None:
    """Create or replace a profile's route for a task (last save wins), audited."""
    chain = validate_chain(models, known_model)
    check_options(options or RouteOptions())
    task = task.strip().lower()
    if len(task) > 64:
        raise InvalidInput("A task name can be at most 64 characters.")
    row = session.scalar(
        select(ProfileRoute).where(ProfileRoute.profile_id == profile_id, ProfileRoute.task == task)
    )
    opts = (options or RouteOptions()).to_json()
    if row is None:
        row = ProfileRoute(profile_id=profile_id, task=task)
        session.add(row)
    row.models, row.options, row.updated_at, row.updated_by = list(chain), opts, now, actor
    audit.record(
        session,
        actor=actor,
        action="profile.route.set",
        target=f"profile:{profile_id}:{task or '*'}",
        now=now,
        details={"models": list(chain), "cost_optimised": opts["cost_optimised"]},
    )


def delete_profile_route(
    session: Session, *, profile_id: int, task: str, actor: str, now: datetime
) -> bool:
    row = session.scalar(
        select(ProfileRoute).where(ProfileRoute.profile_id == profile_id, ProfileRoute.task == task)
    )
    if row is None:
        return False
    session.delete(row)
    audit.record(
        session,
        actor=actor,
        action="profile.route.delete",
        target=f"profile:{profile_id}:{task or '*'}",
        now=now,
    )
    return True


def profile_routes(session: Session, profile_id: int) -> dict[str, ProfileRouteInfo]:
    """A profile's routes by task ("" is the default)."""
    rows = session.scalars(select(ProfileRoute).where(ProfileRoute.profile_id == profile_id))
    return {
        r.task: ProfileRouteInfo(
            r.task, tuple(r.models), RouteOptions.from_json(r.options), r.updated_at, r.updated_by
        )
        for r in rows
    }
