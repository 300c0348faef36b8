"""The OpenAI chat-completions request, parsed: a body (bytes) becomes a :class:`ChatCall`.

Every way a body can be wrong raises ``InvalidInput`` with a message that says what to
fix, so the API answers 400 and never 500 for bad input. The response side is
core/api/openai_format.py.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.api.surrogates import refuse_lone_surrogates
from core.errors import InvalidInput
from core.request import Caller, ChatRequest
from core.settings.routes import MAX_CHAIN

ROLES = ("system", "developer", "user", "assistant", "tool")
# Content-part types a user message may carry; other roles take text parts only.
USER_PART_TYPES = frozenset({"text", "image_url", "input_audio", "file"})
MAX_TOKENS_LIMIT = 2**31 - 1  # keeps worst-case reservations inside a 64-bit column
MAX_STOP_SEQUENCES = 4
# `metadata` is stored on every ledger row, so it stays small and flat: OpenAI's own
# limits (16 keys of up to 64 characters, string values of up to 512), plus scalars.
MAX_METADATA_KEYS = 16
MAX_METADATA_KEY_CHARS = 64
MAX_METADATA_VALUE_CHARS = 512
_INT64 = 2**63
AUTO = "auto"
_TOOLS_UNSUPPORTED = (
    "Tool and function calling is not supported through Switchboard yet; the gateway "
    "relays text answers only. Remove `{name}` from the request."
)


@dataclass(frozen=True)
class ChatCall:
    """A parsed chat request plus the wire options that only shape the response."""

    request: ChatRequest
    include_usage: bool = False


# --- parsing --------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise InvalidInput(f"The body contains {name}, which is not valid JSON; send a number.")


def parse_json(raw: bytes) -> dict[str, Any]:
    """The request body as a JSON object, or InvalidInput saying why it is not one."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"The body is not valid UTF-8 (bad byte at position {exc.start}). "
            "Send JSON encoded as UTF-8."
        ) from None
    if not text.strip():
        raise InvalidInput("The body is empty. Send a JSON object with `model` and `messages`.")
    try:
        body = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"The body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}."
        ) from None
    except RecursionError:
        raise InvalidInput("The body is nested too deeply to parse.") from None
    except ValueError:  # e.g. an integer literal longer than Python converts (4300 digits)
        raise InvalidInput("The body contains a number too large to read.") from None
    refuse_lone_surrogates(text, body)  # no database can store one: 400, not a lost row
    if not isinstance(body, dict):
        raise InvalidInput(
            f"The body must be a JSON object, not {_json_type(body)}. "
            'Send {"model": ..., "messages": [...]}.'
        )
    return body


_JSON_TYPES: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (bool, "a boolean"),  # before int: bool is an int subclass
    ((int, float), "a number"),
    (str, "a string"),
    (list, "an array"),
    (dict, "an object"),
)


def _json_type(value: Any) -> str:
    return next((name for kind, name in _JSON_TYPES if isinstance(value, kind)), "null")


def _wrong(field: str, expected: str, value: Any) -> InvalidInput:
    return InvalidInput(f"`{field}` must be {expected}, not {_json_type(value)}.")


def _opt_str(body: Mapping[str, Any], field: str) -> str | None:
    value = body.get(field)
    if value is not None and not isinstance(value, str):
        raise _wrong(field, "a string", value)
    return value


def _opt_bool(body: Mapping[str, Any], field: str) -> bool:
    value = body.get(field, False)
    if value is not None and not isinstance(value, bool):
        raise _wrong(field, "true or false", value)
    return bool(value)


def _opt_object(body: Mapping[str, Any], field: str) -> dict[str, Any] | None:
    value = body.get(field)
    if value is not None and not isinstance(value, dict):
        raise _wrong(field, "an object", value)
    return value


def _opt_int(body: Mapping[str, Any], field: str, low: int, high: int) -> int | None:
    value = body.get(field)
    if value is None:
        return None
    # bool is an int subclass; `true` is never a sensible count.
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong(field, "a whole number", value)
    if not low <= value <= high:
        raise InvalidInput(f"`{field}` must be between {low} and {high}; got {value}.")
    return value


def _opt_number(body: Mapping[str, Any], field: str, low: float, high: float) -> float | None:
    value = body.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _wrong(field, "a number", value)
    if not low <= value <= high:
        raise InvalidInput(f"`{field}` must be between {low:g} and {high:g}; got {value:g}.")
    return float(value)


def _text_parts(field: str, parts: list[Any], allowed: frozenset[str]) -> list[dict[str, Any]]:
    if not parts:
        raise InvalidInput(f"`{field}` is an empty list; send a string or at least one part.")
    out: list[dict[str, Any]] = []
    for j, part in enumerate(parts):
        where = f"{field}[{j}]"
        if not isinstance(part, dict):
            raise _wrong(where, 'an object such as {"type": "text", "text": "..."}', part)
        kind = part.get("type")
        if not isinstance(kind, str) or kind not in allowed:
            kinds = ", ".join(sorted(allowed))
            raise InvalidInput(f"`{where}.type` must be one of: {kinds}; got {kind!r}.")
        if kind == "text" and not isinstance(part.get("text"), str):
            raise _wrong(f"{where}.text", "a string", part.get("text"))
        out.append(dict(part))
    return out


def _content(field: str, role: str, value: Any) -> str | list[dict[str, Any]]:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        allowed = USER_PART_TYPES if role == "user" else frozenset({"text"})
        return _text_parts(field, value, allowed)
    if value is None:
        raise InvalidInput(f"`{field}` is missing; every {role} message needs content.")
    raise _wrong(field, "a string or a list of content parts", value)


def _message(i: int, raw: Any) -> dict[str, Any]:
    where = f"messages[{i}]"
    if not isinstance(raw, dict):
        raise _wrong(where, 'an object such as {"role": "user", "content": "Hi"}', raw)
    role = raw.get("role")
    if not isinstance(role, str) or role not in ROLES:
        raise InvalidInput(f"`{where}.role` must be one of {', '.join(ROLES)}; got {role!r}.")
    # "developer" is OpenAI's newer name for system instructions; every provider
    # understands "system", and OpenAI itself treats the two alike for chat models.
    out: dict[str, Any] = {"role": "system" if role == "developer" else role}
    calls, content = raw.get("tool_calls"), raw.get("content")
    if role == "assistant" and calls is not None:  # replayed history of a tool-calling turn
        if not isinstance(calls, list) or not all(isinstance(c, dict) for c in calls):
            raise _wrong(f"{where}.tool_calls", "a list of objects", calls)
        out["tool_calls"] = calls
    if content is not None or "tool_calls" not in out:  # only such a turn may lack content
        out["content"] = _content(f"{where}.content", role, content)
    name = _opt_str(raw, "name")
    if name is not None:
        out["name"] = name
    if role == "tool":
        call_id = raw.get("tool_call_id")
        if not isinstance(call_id, str) or not call_id:
            raise InvalidInput(f"`{where}.tool_call_id` is missing; a tool message needs one.")
        out["tool_call_id"] = call_id
    return out


def _messages(body: Mapping[str, Any]) -> tuple[dict[str, Any], ...]:
    raw = body.get("messages")
    if raw is None:
        raise InvalidInput('`messages` is missing. Send e.g. [{"role": "user", "content": "Hi"}].')
    if not isinstance(raw, list):
        raise _wrong("messages", "a list of messages", raw)
    if not raw:
        raise InvalidInput("`messages` is empty; send at least one message.")
    return tuple(_message(i, m) for i, m in enumerate(raw))


def _fallbacks(body: Mapping[str, Any]) -> tuple[str, ...] | None:
    raw = body.get("fallbacks")
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(m, str) and m.strip() for m in raw):
        raise InvalidInput("`fallbacks` must be a list of model ids (or [] for none).")
    if len(raw) > MAX_CHAIN:
        raise InvalidInput(f"`fallbacks` can list at most {MAX_CHAIN} models; got {len(raw)}.")
    return tuple(m.strip() for m in raw)


def _stop(body: Mapping[str, Any]) -> str | list[str] | None:
    raw = body.get("stop")
    if raw is None or isinstance(raw, str):
        return raw
    if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
        raise _wrong("stop", "a string or a list of strings", raw)
    if len(raw) > MAX_STOP_SEQUENCES:
        raise InvalidInput(f"`stop` can hold at most {MAX_STOP_SEQUENCES} sequences.")
    return list(raw)


def _metadata_value(key: str, value: Any) -> None:
    field = f"metadata.{key}"
    if isinstance(value, str) and len(value) > MAX_METADATA_VALUE_CHARS:
        raise InvalidInput(
            f"`{field}` can be at most {MAX_METADATA_VALUE_CHARS} characters; got {len(value)}."
        )
    if isinstance(value, int) and not isinstance(value, bool) and not -_INT64 <= value < _INT64:
        raise InvalidInput(f"`{field}` is too large for a 64-bit number; send it as a string.")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput(f"`{field}` is too large a number; send it as a string.")
    if isinstance(value, list | dict):
        raise _wrong(field, "a string, number, boolean or null (metadata is flat)", value)


def _metadata(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """The caller's labels for the ledger: a small flat object, or None when absent."""
    raw = _opt_object(body, "metadata")
    if not raw:
        return None
    if len(raw) > MAX_METADATA_KEYS:
        raise InvalidInput(f"`metadata` can hold at most {MAX_METADATA_KEYS} keys; got {len(raw)}.")
    for key, value in raw.items():
        if not 1 <= len(key) <= MAX_METADATA_KEY_CHARS:
            raise InvalidInput(
                f"`metadata` keys must be 1 to {MAX_METADATA_KEY_CHARS} characters; "
                f"one has {len(key)}."
            )
        _metadata_value(key, value)
    return raw


def _unsupported(body: Mapping[str, Any]) -> None:
    for name in ("tools", "functions"):
        if body.get(name):  # an empty list is harmless and some clients always send one
            raise InvalidInput(_TOOLS_UNSUPPORTED.format(name=name))
    n = _opt_int(body, "n", 1, 128)
    if n is not None and n != 1:
        raise InvalidInput("`n` must be 1: Switchboard returns one choice per request.")
    if _opt_bool(body, "logprobs"):
        raise InvalidInput("`logprobs` is not supported through Switchboard; remove it.")


def _params(body: Mapping[str, Any]) -> dict[str, Any]:
    """OpenAI options the gateway passes upstream unchanged, after checking their types."""
    checked: dict[str, Any] = {
        "top_p": _opt_number(body, "top_p", 0, 1),
        "presence_penalty": _opt_number(body, "presence_penalty", -2, 2),
        "frequency_penalty": _opt_number(body, "frequency_penalty", -2, 2),
        "seed": _opt_int(body, "seed", -(2**63), 2**63 - 1),
        "stop": _stop(body),
        "user": _opt_str(body, "user"),
        "reasoning_effort": _opt_str(body, "reasoning_effort"),
        "response_format": _opt_object(body, "response_format"),
        "logit_bias": _opt_object(body, "logit_bias"),
    }
    return {k: v for k, v in checked.items() if v is not None}


def parse_chat(body: Mapping[str, Any], caller: Caller, request_id: str | None = None) -> ChatCall:
    """A chat-completions body as a ChatRequest for ``caller``; InvalidInput if malformed."""
    messages = _messages(body)
    model = _opt_str(body, "model") or AUTO
    stream = _opt_bool(body, "stream")
    include_usage = _opt_bool(_opt_object(body, "stream_options") or {}, "include_usage")
    _unsupported(body)
    max_tokens = _opt_int(body, "max_tokens", 1, MAX_TOKENS_LIMIT)
    max_completion = _opt_int(body, "max_completion_tokens", 1, MAX_TOKENS_LIMIT)
    if max_tokens is not None and max_completion is not None and max_tokens != max_completion:
        raise InvalidInput(
            "`max_tokens` and `max_completion_tokens` disagree; send only one of them."
        )
    task = _opt_str(body, "task") or ""
    if len(task) > 64:
        raise InvalidInput("`task` can be at most 64 characters.")
    # One of the caller's profiles (Settings > Preferences): its routes and keys choice.
    profile = _opt_str(body, "profile") or None
    if profile is not None and len(profile) > 64:
        raise InvalidInput("`profile` can be at most 64 characters.")
    metadata = _metadata(body)
    request = ChatRequest(
        caller=caller,
        messages=messages,
        model=model,
        fallbacks=_fallbacks(body),
        task=task,
        profile=profile,
        source="api",
        stream=stream,
        max_tokens=max_completion or max_tokens,
        temperature=_opt_number(body, "temperature", 0, 2),
        params=_params(body),
        metadata=metadata or {},
        request_id=request_id,
        strict_model=True,  # a named model /v1/models would not list is 403, not skipped
    )
    return ChatCall(request, include_usage=stream and include_usage)
