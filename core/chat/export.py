"""A conversation as a Markdown document or a JSON file, for the export buttons."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from core.chat.conversations import STATUS_COMPLETE, ConversationInfo, MessageInfo
from core.chat.view import badge, fallback_notice

_ROLE_TITLES = {"user": "You", "assistant": "Assistant", "system": "System"}
_STATUS_NOTES = {
    "incomplete": "incomplete: the answer ended with an error",
    "stopped": "stopped: generation was stopped",
}


def file_name(conversation: ConversationInfo, extension: str) -> str:
    """A safe file name from the title, e.g. ``chat-plan-the-offsite.md``."""
    slug = re.sub(r"[^a-z0-9]+", "-", conversation.title.lower()).strip("-")[:60] or "chat"
    return f"chat-{slug}.{extension}"


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="seconds")


def to_markdown(conversation: ConversationInfo, items: Sequence[MessageInfo]) -> str:
    lines = [
        f"# {conversation.title}",
        "",
        f"_Model: {conversation.model} · task: {conversation.task or 'chat'} · "
        f"started {_iso(conversation.created_at)}_",
        "",
    ]
    system = str(conversation.settings.get("system_prompt") or "")
    if system:
        lines += ["## System prompt", "", system, ""]
    for m in items:
        lines += [f"## {_ROLE_TITLES.get(m.role, m.role)}", "", m.content or "_(no text)_", ""]
        if m.status != STATUS_COMPLETE:
            lines += [f"> ({_STATUS_NOTES.get(m.status, m.status)})", ""]
        if m.role == "assistant" and m.details.get("model"):
            lines += [f"> {badge(m.details)}", ""]
            notice = fallback_notice(m.details)
            if notice:
                lines += [f"> {notice}", ""]
    return "\n".join(lines).rstrip() + "\n"


def to_json(conversation: ConversationInfo, items: Sequence[MessageInfo]) -> str:
    data: dict[str, Any] = {
        "id": conversation.id,
        "title": conversation.title,
        "model": conversation.model,
        "task": conversation.task,
        "settings": dict(conversation.settings),
        "created_at": _iso(conversation.created_at),
        "updated_at": _iso(conversation.updated_at),
        "messages": [
            {
                "role": m.role,
                "content": m.content,
                "status": m.status,
                "model": m.model,
                "request_id": m.request_id,
                "created_at": _iso(m.created_at),
                "details": dict(m.details),
            }
            for m in items
        ],
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
