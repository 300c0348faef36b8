"""Chat conversations: create, list (newest first), search, rename, delete, and their messages.

Every function takes the owner's user id and only ever touches that user's rows, so a
conversation id guessed or copied from someone else reads as "not found".
Assistant messages carry the ledger request id of the answer and a ``details`` dict
(usage, cost, latency, attempts) that the page turns into the answer's badge.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy import delete, exists, func, or_, select, update
from sqlalchemy.orm import Session

from core.errors import InvalidInput, NotFound
from core.store import audit
from core.store.tables import MESSAGE_STATUSES, ChatMessage, ChatSettings, Conversation

TITLE_MAX: Final = 200
AUTO_TITLE_CHARS: Final = 60
DEFAULT_CONFIRM_ABOVE_MICROS: Final = 500_000  # $0.50: ask before a message that may cost more
SETTING_KEYS: Final = ("temperature", "max_tokens", "system_prompt")
STATUS_COMPLETE, STATUS_INCOMPLETE, STATUS_STOPPED = MESSAGE_STATUSES


@dataclass(frozen=True, slots=True)
class ConversationInfo:
    id: str
    title: str
    model: str
    task: str
    settings: Mapping[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class MessageInfo:
    id: int
    seq: int
    role: str
    content: str
    status: str
    request_id: str | None
    model: str | None
    created_at: datetime
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Totals:
    """Summed over a conversation's answers; cost is None when any answer was unpriced."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_micros: int | None = 0
    answers: int = 0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def plus(self, prompt: int, completion: int, cost: int | None) -> Totals:
        total = None if self.cost_micros is None or cost is None else self.cost_micros + cost
        return Totals(
            self.prompt_tokens + prompt,
            self.completion_tokens + completion,
            total,
            self.answers + 1,
        )


def _info(row: Conversation) -> ConversationInfo:
    return ConversationInfo(
        row.id,
        row.title,
        row.model,
        row.task,
        dict(row.settings or {}),
        row.created_at,
        row.updated_at,
    )


def _message(row: ChatMessage) -> MessageInfo:
    return MessageInfo(
        row.id,
        row.seq,
        row.role,
        row.content,
        row.status,
        row.request_id,
        row.model,
        row.created_at,
        dict(row.details or {}),
    )


def auto_title(first_message: str) -> str:
    """A title from the first message: its first line, cut at a word near 60 characters."""
    line = " ".join(first_message.split())
    if not line:
        return "New conversation"
    if len(line) <= AUTO_TITLE_CHARS:
        return line
    cut = line[:AUTO_TITLE_CHARS].rsplit(" ", 1)[0] or line[:AUTO_TITLE_CHARS]
    return cut.rstrip(" ,.;:") + "…"


def clean_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Only the known per-conversation settings, so nothing else is stored by accident."""
    return {k: settings[k] for k in SETTING_KEYS if k in settings}


def _owned(session: Session, user_id: int, conversation_id: str) -> Conversation:
    row = session.get(Conversation, conversation_id)
    if row is None or row.user_id != user_id:
        raise NotFound("That conversation does not exist, or it is not yours.")
    return row


def create(
    session: Session,
    *,
    user_id: int,
    title: str,
    model: str,
    task: str,
    settings: Mapping[str, Any],
    now: datetime,
    conversation_id: str | None = None,
) -> ConversationInfo:
    row = Conversation(
        id=conversation_id or uuid.uuid4().hex,
        user_id=user_id,
        title=_valid_title(title),
        model=model,
        task=task,
        settings=clean_settings(settings),
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return _info(row)


def get(session: Session, user_id: int, conversation_id: str) -> ConversationInfo:
    return _info(_owned(session, user_id, conversation_id))


def count(session: Session, user_id: int) -> int:
    return (
        session.scalar(
            select(func.count()).select_from(Conversation).where(Conversation.user_id == user_id)
        )
        or 0
    )


def list_conversations(
    session: Session, user_id: int, *, query: str = "", limit: int = 50
) -> list[ConversationInfo]:
    """The user's conversations, newest first; ``query`` matches titles and message text."""
    stmt = select(Conversation).where(Conversation.user_id == user_id)
    needle = query.strip().lower()
    if needle:
        pattern = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        in_messages = exists().where(
            ChatMessage.conversation_id == Conversation.id,
            func.lower(ChatMessage.content).like(pattern, escape="\\"),
        )
        stmt = stmt.where(
            or_(func.lower(Conversation.title).like(pattern, escape="\\"), in_messages)
        )
    stmt = stmt.order_by(Conversation.updated_at.desc(), Conversation.id).limit(limit)
    return [_info(row) for row in session.scalars(stmt)]


def _valid_title(title: str) -> str:
    clean = " ".join(title.split())
    if not clean:
        raise InvalidInput("A title cannot be empty; type a few words.")
    if len(clean) > TITLE_MAX:
        raise InvalidInput(f"A title can be at most {TITLE_MAX} characters; shorten it.")
    return clean


def rename(
    session: Session, user_id: int, conversation_id: str, title: str, now: datetime
) -> ConversationInfo:
    row = _owned(session, user_id, conversation_id)
    row.title, row.updated_at = _valid_title(title), now
    return _info(row)


def delete_conversation(
    session: Session, user_id: int, conversation_id: str, *, actor: str, now: datetime
) -> None:
    """Delete a conversation and its messages (the ledger rows stay, for cost reviews)."""
    row = _owned(session, user_id, conversation_id)
    session.execute(delete(ChatMessage).where(ChatMessage.conversation_id == row.id))
    session.delete(row)
    audit.record(session, actor=actor, action="conversation.delete", target=row.id, now=now)


def remember(
    session: Session,
    user_id: int,
    conversation_id: str,
    *,
    model: str,
    task: str,
    settings: Mapping[str, Any],
    now: datetime,
) -> None:
    """Store the model, task and settings the conversation used last."""
    row = _owned(session, user_id, conversation_id)
    row.model, row.task, row.settings = model, task, clean_settings(settings)
    row.updated_at = now


def messages(session: Session, user_id: int, conversation_id: str) -> list[MessageInfo]:
    _owned(session, user_id, conversation_id)
    rows = session.scalars(
        select(ChatMessage)
        .where(ChatMessage.conversation_id == conversation_id)
        .order_by(ChatMessage.seq)
    )
    return [_message(r) for r in rows]


def add_message(
    session: Session,
    user_id: int,
    conversation_id: str,
    *,
    role: str,
    content: str,
    now: datetime,
    status: str = STATUS_COMPLETE,
    request_id: str | None = None,
    model: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> int:
    """Append a message; returns its id. Bumps the conversation to the top of the list."""
    if status not in MESSAGE_STATUSES:
        raise ValueError(f"unknown message status {status!r}")
    conv = _owned(session, user_id, conversation_id)
    last = session.scalar(
        select(func.max(ChatMessage.seq)).where(ChatMessage.conversation_id == conv.id)
    )
    row = ChatMessage(
        conversation_id=conv.id,
        seq=(last or 0) + 1,
        role=role,
        content=content,
        status=status,
        request_id=request_id,
        model=model,
        details=dict(details or {}),
        created_at=now,
    )
    session.add(row)
    conv.updated_at = now
    session.flush()
    return row.id


def update_message(
    session: Session,
    user_id: int,
    message_id: int,
    *,
    content: str,
    status: str,
    model: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Overwrite an answer's text and status (streaming saves it as it grows)."""
    if status not in MESSAGE_STATUSES:
        raise ValueError(f"unknown message status {status!r}")
    owner = select(Conversation.id).where(Conversation.user_id == user_id)
    values: dict[str, Any] = {"content": content, "status": status}
    if model is not None:
        values["model"] = model
    if details is not None:
        values["details"] = dict(details)
    session.execute(
        update(ChatMessage)
        .where(ChatMessage.id == message_id, ChatMessage.conversation_id.in_(owner))
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def totals(items: Sequence[MessageInfo]) -> Totals:
    """Tokens and cost of a conversation's answers, from their stored details."""
    out = Totals()
    for m in items:
        if m.role != "assistant" or not m.details:
            continue
        cost = m.details.get("cost_micros")
        out = out.plus(
            int(m.details.get("prompt_tokens", 0)),
            int(m.details.get("completion_tokens", 0)),
            int(cost) if isinstance(cost, int) else None,
        )
    return out


def confirm_above(session: Session, user_id: int) -> int:
    """The user's confirmation threshold in micro-dollars (the default if never set)."""
    value = session.scalar(
        select(ChatSettings.confirm_above_micros).where(ChatSettings.user_id == user_id)
    )
    return DEFAULT_CONFIRM_ABOVE_MICROS if value is None else value


def set_confirm_above(session: Session, user_id: int, micros: int, now: datetime) -> None:
    if micros < 0:
        raise InvalidInput("The confirmation threshold cannot be negative; use 0 to always ask.")
    row = session.get(ChatSettings, user_id)
    if row is None:
        session.add(ChatSettings(user_id=user_id, confirm_above_micros=micros, updated_at=now))
    else:
        row.confirm_above_micros, row.updated_at = micros, now
