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
from core.upstream.params import not_forwarded_reason

# "function" is the legacy result of a `function_call`; it becomes a "tool" message.
ROLES = ("system", "developer", "user", "assistant", "tool", "function")
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
# Fields read here (Switchboard's own, or translated); every other field is a model
# parameter or a provider extra, checked per model by core/upstream/params.py.
OWN_FIELDS = frozenset(
    {
        "model", "messages", "stream", "stream_options", "fallbacks", "task", "profile",
        "metadata", "drop_params", "max_tokens", "max_completion_tokens", "temperature",
        "functions", "function_call", "extra_body",
    }
)  # fmt: skip
# Fields whose answer part the gateway does not relay: refused, never silently lost.
_NOT_RELAYED = {
    "logprobs": "token log-probabilities are not relayed by Switchboard",
    "top_logprobs": "token log-probabilities are not relayed by Switchboard",
    "audio": "audio answers are not relayed by Switchboard",
    "modalities": "only text answers are relayed by Switchboard",
}
TOOL_CHOICES = ("none", "auto", "required")


@dataclass(frozen=True)
class ChatCall:
    """A parsed chat request plus the wire options that only shape the response."""

    request: ChatRequest
    include_usage: bool = False
    # The caller used the legacy `functions`: answer with `function_call`, as OpenAI does.
    legacy_functions: bool = False


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
        if kind != "text":  # the part's own object, named as its type: image_url, file, ...
            body = part.get(kind)
            if not isinstance(body, dict) or (kind == "image_url" and not _has_url(body)):
                raise InvalidInput(
                    f"`{where}.{kind}` is missing or malformed; send e.g. {_PART_EXAMPLES[kind]}."
                )
        out.append(dict(part))
    return out


_PART_EXAMPLES = {
    "image_url": '{"type": "image_url", "image_url": {"url": "https://..."}}',
    "input_audio": '{"type": "input_audio", "input_audio": {"data": "...", "format": "wav"}}',
    "file": '{"type": "file", "file": {"file_id": "..."}}',
}


def _has_url(body: Mapping[str, Any]) -> bool:
    url = body.get("url")
    return isinstance(url, str) and bool(url)


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
        out["tool_calls"] = _history_calls(f"{where}.tool_calls", calls)
    if role == "assistant" and raw.get("function_call") is not None:
        out["function_call"] = _function_call(f"{where}.function_call", raw["function_call"])
    if role == "assistant":
        _replayed_reasoning(where, raw, out)
    if content is not None or not {"tool_calls", "function_call"} & out.keys():
        # Only a calling turn may lack content; a tool result may be empty text.
        out["content"] = _content(f"{where}.content", role, content)
    name = _opt_str(raw, "name")
    if name is not None:
        out["name"] = name
    if role == "function" and not name:
        raise InvalidInput(f"`{where}.name` is missing; a function message names its function.")
    if role == "tool":
        call_id = raw.get("tool_call_id")
        if not isinstance(call_id, str) or not call_id:
            raise InvalidInput(f"`{where}.tool_call_id` is missing; a tool message needs one.")
        out["tool_call_id"] = call_id
    return out


def _history_calls(field: str, calls: Any) -> list[dict[str, Any]]:
    if not isinstance(calls, list) or not all(isinstance(c, dict) for c in calls):
        raise _wrong(field, "a list of objects", calls)
    for j, call in enumerate(calls):
        if not isinstance(call.get("id"), str) or not call["id"]:
            raise InvalidInput(f"`{field}[{j}].id` is missing; each tool call needs its id.")
        _function_call(f"{field}[{j}].function", call.get("function"))
    return [dict(c) for c in calls]


def _function_call(field: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        raise _wrong(field, 'an object such as {"name": "f", "arguments": "{}"}', value)
    arguments = value.get("arguments", "")
    if not isinstance(arguments, str):
        raise _wrong(f"{field}.arguments", "a string of JSON", arguments)
    return {"name": value["name"], "arguments": arguments}


def _replayed_reasoning(where: str, raw: Mapping[str, Any], out: dict[str, Any]) -> None:
    """Reasoning a client hands back: Anthropic needs its signed thinking blocks again."""
    reasoning = raw.get("reasoning_content")
    if reasoning is not None:
        if not isinstance(reasoning, str):
            raise _wrong(f"{where}.reasoning_content", "a string", reasoning)
        out["reasoning_content"] = reasoning
    blocks = raw.get("thinking_blocks")
    if blocks is not None:
        if not isinstance(blocks, list) or not all(isinstance(b, dict) for b in blocks):
            raise _wrong(f"{where}.thinking_blocks", "a list of objects", blocks)
        out["thinking_blocks"] = [dict(b) for b in blocks]


def _legacy_history(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Legacy `function_call` turns and `function` results as tool calls and results.

    Anthropic refuses `functions`, and a provider that takes tools needs each result
    tied to its call: a legacy call gets an id, and its result the id of the latest
    call of that function.
    """
    out: list[dict[str, Any]] = []
    latest: dict[str, str] = {}
    for i, message in enumerate(messages):
        message = dict(message)
        call = message.pop("function_call", None)
        if call is not None:
            call_id = f"call_fn_{i}"
            latest[call["name"]] = call_id
            message.setdefault("tool_calls", []).append(
                {"id": call_id, "type": "function", "function": call}
            )
        if message["role"] == "function":
            answered = latest.get(message["name"])
            if answered is None:
                raise InvalidInput(
                    f"`messages[{i}]` is the result of function {message['name']!r}, but no "
                    "earlier assistant message calls it; send the call before its result."
                )
            message = {"role": "tool", "tool_call_id": answered, "content": message["content"]}
        out.append(message)
    return out


def _messages(body: Mapping[str, Any]) -> tuple[dict[str, Any], ...]:
    raw = body.get("messages")
    if raw is None:
        raise InvalidInput('`messages` is missing. Send e.g. [{"role": "user", "content": "Hi"}].')
    if not isinstance(raw, list):
        raise _wrong("messages", "a list of messages", raw)
    if not raw:
        raise InvalidInput("`messages` is empty; send at least one message.")
    return tuple(_legacy_history([_message(i, m) for i, m in enumerate(raw)]))


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


def _tools(body: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """`tools`, or the legacy `functions` as tools (never both)."""
    tools, functions = body.get("tools"), body.get("functions")
    if tools and functions:
        raise InvalidInput("Send `tools` or the legacy `functions`, not both.")
    field = "tools" if tools else "functions"
    raw = tools or functions
    if not raw:  # an empty list is harmless and some clients always send one
        return None
    if not isinstance(raw, list):
        raise _wrong(field, "a list of objects", raw)
    out: list[dict[str, Any]] = []
    for j, item in enumerate(raw):
        where = f"{field}[{j}]"
        if not isinstance(item, dict):
            raise _wrong(where, "an object", item)
        function = item if field == "functions" else item.get("function")
        if field == "tools" and item.get("type") != "function":
            raise InvalidInput(f'`{where}.type` must be "function"; got {item.get("type")!r}.')
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise InvalidInput(f"`{where}` needs a function with a `name`.")
        out.append(dict(item) if field == "tools" else {"type": "function", "function": item})
    return out


def _tool_choice(body: Mapping[str, Any]) -> str | dict[str, Any] | None:
    """`tool_choice`, or the legacy `function_call` choice in its shape."""
    choice, legacy = body.get("tool_choice"), body.get("function_call")
    field = "tool_choice"
    if choice is None and legacy is not None:
        field, choice = "function_call", legacy
        if isinstance(legacy, dict) and isinstance(legacy.get("name"), str):
            choice = {"type": "function", "function": {"name": legacy["name"]}}
    if choice is None:
        return None
    if isinstance(choice, str):
        if choice not in TOOL_CHOICES:
            raise InvalidInput(
                f"`{field}` must be one of {', '.join(TOOL_CHOICES)} or name a function; "
                f"got {choice!r}."
            )
        return choice
    function = choice.get("function") if isinstance(choice, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise _wrong(field, '"auto", "none", "required" or {"type": "function", ...}', choice)
    return dict(choice)


def _relayed(body: Mapping[str, Any]) -> None:
    """Refuse what the gateway would take but could not hand back."""
    n = _opt_int(body, "n", 1, 128)
    if n is not None and n != 1:
        raise InvalidInput(
            "`n` must be 1: Switchboard returns one choice per request; send the request "
            f"{n} times for {n} answers."
        )
    for name, why in _NOT_RELAYED.items():
        value = body.get(name)
        if value not in (None, False, [], ["text"]):
            raise InvalidInput(f"`{name}` cannot be used: {why}. Remove it.")


def _extras(body: Mapping[str, Any], checked: Mapping[str, Any]) -> dict[str, Any]:
    """Every other field, unchanged: model parameters and provider extras."""
    extra_body = _opt_object(body, "extra_body") or {}
    out: dict[str, Any] = {}
    for name, value in [*body.items(), *extra_body.items()]:
        if name in OWN_FIELDS or name in checked or name in _NOT_RELAYED or name == "n":
            continue
        if value is None:
            continue
        reason = not_forwarded_reason(name)
        if reason is not None:
            raise InvalidInput(reason)
        out[name] = value
    return out


def _params(body: Mapping[str, Any]) -> dict[str, Any]:
    """Model parameters for the gateway to forward, type-checked where OpenAI's are known.

    Which of them a model takes is decided per model at admission (core/upstream/params.py).
    """
    _relayed(body)
    checked: dict[str, Any] = {
        "top_p": _opt_number(body, "top_p", 0, 1),
        "presence_penalty": _opt_number(body, "presence_penalty", -2, 2),
        "frequency_penalty": _opt_number(body, "frequency_penalty", -2, 2),
        "seed": _opt_int(body, "seed", -(2**63), 2**63 - 1),
        "stop": _stop(body),
        "user": _opt_str(body, "user"),
        "reasoning_effort": _reasoning_effort(body),
        "response_format": _opt_object(body, "response_format"),
        "logit_bias": _opt_object(body, "logit_bias"),
        "tools": _tools(body),
        "tool_choice": _tool_choice(body),
        "parallel_tool_calls": _opt_bool_or_none(body, "parallel_tool_calls"),
    }
    params = {k: v for k, v in checked.items() if v is not None}
    return {**params, **_extras(body, checked)}


REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")


def _reasoning_effort(body: Mapping[str, Any]) -> str | None:
    value = _opt_str(body, "reasoning_effort")
    if value is not None and value not in REASONING_EFFORTS:
        raise InvalidInput(
            f"`reasoning_effort` must be one of {', '.join(REASONING_EFFORTS)}; got {value!r}."
        )
    return value


def _opt_bool_or_none(body: Mapping[str, Any], field: str) -> bool | None:
    return _opt_bool(body, field) if body.get(field) is not None else None


def parse_chat(body: Mapping[str, Any], caller: Caller, request_id: str | None = None) -> ChatCall:
    """A chat-completions body as a ChatRequest for ``caller``; InvalidInput if malformed."""
    messages = _messages(body)
    model = _opt_str(body, "model") or AUTO
    stream = _opt_bool(body, "stream")
    include_usage = _opt_bool(_opt_object(body, "stream_options") or {}, "include_usage")
    params = _params(body)
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
        params=params,
        metadata=metadata or {},
        request_id=request_id,
        strict_model=True,  # a named model /v1/models would not list is 403, not skipped
        drop_params=_opt_bool(body, "drop_params"),
    )
    legacy = bool(body.get("functions")) and not body.get("tools")
    return ChatCall(request, include_usage=stream and include_usage, legacy_functions=legacy)
