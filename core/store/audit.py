"""The audit log: who changed what, when. Never a secret value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.store.tables import AuditEntry

# Detail keys that would smell of a secret; writing one is a programming error.
_SECRET_WORDS = ("password", "secret", "api_key", "apikey", "token", "hash", "ciphertext")


@dataclass(frozen=True)
class AuditRecord:
    at: datetime
    actor: str
    action: str
    target: str
    details: Mapping[str, Any]


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    target: str,
    now: datetime,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Add one audit row in the caller's transaction, so it commits with the change."""
    clean = dict(details or {})
    for key in clean:
        if any(word in key.lower() for word in _SECRET_WORDS):
            raise ValueError(f"audit details must not carry secrets (key {key!r})")
    session.add(AuditEntry(at=now, actor=actor, action=action, target=target, details=clean))


def recent(
    session: Session,
    *,
    limit: int = 200,
    actor: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
) -> list[AuditRecord]:
    query = select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if action:
        query = query.where(AuditEntry.action == action)
    if since:
        query = query.where(AuditEntry.at >= since)
    return [
        AuditRecord(e.at, e.actor, e.action, e.target, dict(e.details))
        for e in session.scalars(query)
    ]
