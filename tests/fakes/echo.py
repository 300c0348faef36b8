"""Echo mode: an upstream (or a corporate proxy) that repeats the request's headers.

A script writes ``echo("key", 0, 9)`` wherever the answer should carry what arrived on
the wire: reply tokens, reasoning, a tool call's name or arguments, an error message or
an error's response header. The fake fills each placeholder in from the request it
received, so a test proves what the gateway does with the key it really sent, not with
one the test already knows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import replace

from tests.fakes.behaviours import Behaviour, Reply, Status

#: The pseudo-header for the API key itself (the Bearer token, x-api-key or api-key).
KEY = "key"

_PLACEHOLDER = re.compile(r"\[\[echo:([a-z0-9-]+):(-?\d*):(-?\d*)\]\]")


def echo(header: str = KEY, start: int | None = None, stop: int | None = None) -> str:
    """A placeholder for ``received[header][start:stop]`` (header lower-case, or KEY)."""
    first = "" if start is None else str(start)
    last = "" if stop is None else str(stop)
    return f"[[echo:{header.lower()}:{first}:{last}]]"


def filler(headers: Mapping[str, str], key: str | None) -> Callable[[str], str]:
    """Replace every placeholder in a text with the slice of the header it names."""

    def fill(text: str) -> str:
        def one(m: re.Match[str]) -> str:
            value = key if m[1] == KEY else headers.get(m[1])
            start = int(m[2]) if m[2] else None
            stop = int(m[3]) if m[3] else None
            return (value or "")[start:stop]

        return _PLACEHOLDER.sub(one, text)

    return fill


def echoed(behaviour: Behaviour, fill: Callable[[str], str]) -> Behaviour:
    """The behaviour with its placeholders filled from the request received."""
    match behaviour:
        case Reply():
            calls = [
                replace(c, name=fill(c.name), arguments=fill(c.arguments))
                for c in behaviour.tool_calls
            ]
            tokens = None if behaviour.tokens is None else [fill(t) for t in behaviour.tokens]
            return replace(
                behaviour,
                tokens=tokens,
                reasoning=[fill(r) for r in behaviour.reasoning],
                tool_calls=calls,
            )
        case Status():
            message = None if behaviour.message is None else fill(behaviour.message)
            headers = {k: fill(v) for k, v in behaviour.headers.items()}
            return replace(behaviour, message=message, headers=headers)
        case _:
            return behaviour
