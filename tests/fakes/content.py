"""What an answer contains, independent of wire format: tokens, errors, SSE framing."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TOKEN_COUNT = 8


def default_tokens(model: str, count: int = DEFAULT_TOKEN_COUNT) -> list[str]:
    """Deterministic, all-distinct reply tokens: ["gpt-4o#1 ", "gpt-4o#2 ", ...]."""
    return [f"{model}#{i} " for i in range(1, count + 1)]


def continuation(tokens: Sequence[str], prefix: str) -> list[str] | None:
    """Tokens left after an assistant prefill, or None if prefix doesn't start the reply.

    A token straddling the end of the prefix is emitted as its remaining part.
    """
    if not "".join(tokens).startswith(prefix):
        return None
    out: list[str] = []
    pos = 0
    for tok in tokens:
        end = pos + len(tok)
        if pos >= len(prefix):
            out.append(tok)
        elif end > len(prefix):
            out.append(tok[len(prefix) - pos :])
        pos = end
    return out


def content_text(content: Any) -> str:
    """Text of a message's content: a string or a list of {type: text, text} parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


@dataclass(frozen=True)
class ApiError:
    """A provider error; subclasses render it in their own body shape."""

    status: int
    type: str
    message: str
    code: str | None = None
    param: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Turn:
    """Everything needed to render one successful answer."""

    id: str
    created: int
    model: str
    prompt_tokens: int
    tokens: list[str]
    finish_reason: str  # raw provider value
    include_usage: bool
    body: Mapping[str, Any]
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def text(self) -> str:
        return "".join(self.tokens)


def dumps(payload: Any) -> bytes:
    """Compact JSON, as the real APIs send it."""
    return json.dumps(payload, separators=(",", ":")).encode()


def sse(data: Mapping[str, Any] | str, event: str | None = None) -> bytes:
    """One server-sent event; data dicts are compact JSON like the real APIs send."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {text}\n\n".encode()
