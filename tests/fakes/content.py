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


@dataclass(frozen=True)
class ToolCall:
    """A function call the fake's model makes; ``arguments`` is the JSON text it streams."""

    name: str
    arguments: str = "{}"
    id: str | None = None  # None: call_<request seq>_<index>
    fragments: int = 3  # the arguments stream in this many pieces (at most one per character)

    def pieces(self) -> list[str]:
        """The arguments split into fragments, as providers stream them (never empty)."""
        text = self.arguments
        count = max(1, min(self.fragments, len(text)))
        size = -(-len(text) // count) if text else 0
        return [text[i : i + size] for i in range(0, len(text), size)] if text else [""]


@dataclass(frozen=True)
class CalledTool:
    """A tool call as one answer renders it: its id fixed, its fragments known."""

    index: int
    id: str
    name: str
    arguments: str
    pieces: tuple[str, ...]


@dataclass(frozen=True)
class Fragment:
    """One streamed piece of a tool call's arguments (a stream position, like a token)."""

    call: CalledTool
    seq: int  # 0 for the call's first fragment
    text: str


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
    tool_calls: list[CalledTool] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)  # reasoning text, streamed first
    reported_model: str | None = None  # the model name the answer carries (None: as asked)

    @property
    def text(self) -> str:
        return "".join(self.tokens)

    @property
    def reasoning_text(self) -> str:
        return "".join(self.reasoning)

    @property
    def answer_model(self) -> str:
        return self.reported_model or self.model

    @property
    def fragments(self) -> list[Fragment]:
        """Every tool call's argument fragments in order: stream positions after the tokens."""
        return [
            Fragment(call, seq, text)
            for call in self.tool_calls
            for seq, text in enumerate(call.pieces)
        ]


def dumps(payload: Any) -> bytes:
    """Compact JSON, as the real APIs send it."""
    return json.dumps(payload, separators=(",", ":")).encode()


def sse(data: Mapping[str, Any] | str, event: str | None = None) -> bytes:
    """One server-sent event; data dicts are compact JSON like the real APIs send."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {text}\n\n".encode()
