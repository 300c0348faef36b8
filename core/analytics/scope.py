"""Whose usage a person may see: members their own, managers their team's, admins all.

The scope is built from the signed-in user on the server, never from a URL or a form,
and every analytics query applies it on top of whatever filters were asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounts.auth import UserInfo
from core.store.tables import Team

ScopeKind = Literal["all", "team", "user"]


@dataclass(frozen=True, slots=True)
class Scope:
    kind: ScopeKind
    user_id: int  # the viewer
    team_id: int | None  # the viewer's team (the scope for "team")
    label: str  # "everyone", "team Ops", "you"

    @property
    def sees_users(self) -> bool:
        """Whether per-user breakdowns make sense (more than one person in scope)."""
        return self.kind != "user"


def scope_for(session: Session, user: UserInfo) -> Scope:
    """Admins see everything; managers their team (themselves without one); members themselves."""
    if user.is_admin:
        return Scope("all", user.id, None, "everyone")
    team_id = None
    if user.team is not None:
        team_id = session.scalar(select(Team.id).where(Team.name == user.team))
    if user.role == "manager" and team_id is not None:
        return Scope("team", user.id, team_id, f"team {user.team}")
    return Scope("user", user.id, team_id, "you")
