"""What a fake does with one request: answer, fail, or misbehave at the socket level.

Each behaviour is an immutable value; a fake consumes one per chat request from a
per-model queue (see FakeProvider.script), so a test reads as the upstream's script.
Flapping outages are just queues: ``[Status(503)] * 3`` then the default, or
``[Status(503), Reply()] * 5`` to alternate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from tests.fakes.content import ToolCall


@dataclass(frozen=True)
class Reply:
    """A successful answer, optionally with delays and stream faults.

    Positions count content tokens already sent: ``cut_after=0`` cuts before the
    first token, ``cut_after=len(tokens)`` cuts after the last token but before
    the finish chunk. Tool calls stream after the tokens, each call's arguments in
    ``ToolCall.fragments`` pieces, and every piece is one more position: with two
    tokens, ``cut_after=3`` cuts after the first call's first fragment.
    On a non-streaming request, cut/stall send the headers and half of the JSON body,
    malformed sends an unparsable body, and error_after /
    omit_done / chunked do nothing.
    """

    tokens: Sequence[str] | None = None  # None: the model's configured reply
    finish_reason: str | None = None  # raw provider value; None: "stop"/"length" as due
    headers_delay: float = 0.0  # before the status line (slow first byte)
    first_token_delay: float = 0.0  # after the headers, before the first event
    token_delay: float = 0.0  # between content tokens (non-stream: summed up front)
    cut_after: int | None = None  # close mid-stream: no finish chunk, no terminator
    rst: bool = False  # cut with a TCP reset instead of a FIN
    stall_after: int | None = None  # stop sending, keep the socket open
    malformed_after: int | None = None  # one unparsable event, then carry on
    error_after: int | None = None  # provider-shaped in-stream error event, then close
    omit_done: bool = False  # finish + usage, but no [DONE] / message_stop
    chunked: bool = True  # False: close-delimited body (no Transfer-Encoding)
    # Usage details, as OpenAI reports them (prompt_tokens_details.cached_tokens,
    # completion_tokens_details.reasoning_tokens); subsets of the prompt and completion.
    # The OpenAI fake only: Anthropic's fake reports plain input/output tokens.
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    # Function calls after the text; the finish reason is then the provider's tool reason.
    tool_calls: Sequence[ToolCall] = ()
    # Reasoning text before the answer: OpenAI-wire `reasoning_content` as DeepSeek and
    # vLLM send it; Anthropic `thinking` blocks with a signature.
    reasoning: Sequence[str] = ()

    def __post_init__(self) -> None:
        if self.tokens is not None:
            object.__setattr__(self, "tokens", tuple(self.tokens))
        object.__setattr__(self, "tool_calls", tuple(self.tool_calls))
        object.__setattr__(self, "reasoning", tuple(self.reasoning))


@dataclass(frozen=True)
class Status:
    """An HTTP error with the provider's error body (e.g. 429, 503, 529)."""

    code: int
    retry_after: float | None = None  # sent as a Retry-After header
    message: str | None = None  # None: a realistic message for the code
    error_type: str | None = None  # override the body's error type
    error_code: str | None = None  # override OpenAI's error.code (e.g. insufficient_quota)
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0  # wait before answering

    def response_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.retry_after is not None:
            value = self.retry_after
            headers["Retry-After"] = str(int(value)) if float(value).is_integer() else str(value)
        return {**headers, **self.headers}


@dataclass(frozen=True)
class Reset:
    """Read the request, then drop the connection with a TCP reset and no response."""

    delay: float = 0.0


@dataclass(frozen=True)
class Hang:
    """Read the request and never answer; hold the socket until the client leaves."""


@dataclass(frozen=True)
class Garbage:
    """Answer with bytes that are not HTTP, then close."""

    data: bytes = b"SSH-2.0-OpenSSH_9.6\r\nthis is not http\r\n\r\n"


@dataclass(frozen=True)
class ContextLength:
    """The provider's context-window error (400)."""

    limit: int = 8192
    tokens: int = 9000


@dataclass(frozen=True)
class ContentFilter:
    """A safety refusal.

    ``after=None``: a 400 error (OpenAI ``code`` is ``error_code``).
    ``after=n``: a 200 answer cut to n tokens whose finish reason is the
    provider's filter reason (OpenAI ``content_filter``, Anthropic ``refusal``).
    """

    after: int | None = None
    error_code: str = "content_filter"  # or "content_policy_violation"


Behaviour = Reply | Status | Reset | Hang | Garbage | ContextLength | ContentFilter


def outcome_label(behaviour: Behaviour) -> str:
    """Short label logged for what the fake applied, e.g. "ok", "status:429", "cut:3"."""
    match behaviour:
        case Status(code=code):
            return f"status:{code}"
        case Reset():
            return "reset"
        case Hang():
            return "hang"
        case Garbage():
            return "garbage"
        case ContextLength():
            return "context_length"
        case ContentFilter():
            return "content_filter"
        case Reply():
            parts = [
                f"{name}:{value}"
                for name, value in (
                    ("cut", behaviour.cut_after),
                    ("stall", behaviour.stall_after),
                    ("malformed", behaviour.malformed_after),
                    ("stream_error", behaviour.error_after),
                )
                if value is not None
            ]
            if behaviour.omit_done:
                parts.append("no_done")
            return ",".join(parts) or "ok"
