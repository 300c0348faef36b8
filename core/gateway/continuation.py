"""Continuing an answer on another model after the stream broke mid-way.

With assistant prefill the new model is handed the partial answer and writes
only the rest. Without it the question is asked again; ``PrefixMatcher`` holds
back the new text until it has covered what the caller already has, then passes
on only what follows — or reports that the new answer diverged.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.request import Message


def prefill_messages(messages: Sequence[Message], sent: str) -> list[Message]:
    """The conversation plus the partial answer as an assistant prefix.

    Trailing whitespace is left off: Anthropic rejects a prefix that ends in it (and
    litellm strips it), and the model then starts its continuation with that space.
    """
    return [*messages, {"role": "assistant", "content": sent.rstrip()}]


class PrefillJoin:
    """Drops the whitespace a prefilled model repeats at the start of its continuation."""

    def __init__(self, sent: str) -> None:
        self._pending = len(sent) - len(sent.rstrip())

    def feed(self, text: str) -> str:
        if not self._pending or not text:
            return text
        leading = len(text) - len(text.lstrip())
        drop = min(leading, self._pending)
        self._pending = 0
        return text[drop:]


class Diverged(Exception):
    """The re-asked model's answer does not begin with the text already sent."""


class PrefixMatcher:
    def __init__(self, sent: str) -> None:
        self._sent = sent
        self._buffer = ""
        self._matched = not sent

    @property
    def matched(self) -> bool:
        return self._matched

    def feed(self, text: str) -> str:
        """Return the text to pass on (empty while still covering the sent prefix)."""
        if self._matched:
            return text
        self._buffer += text
        covered = min(len(self._buffer), len(self._sent))
        if self._buffer[:covered] != self._sent[:covered]:
            raise Diverged
        if len(self._buffer) < len(self._sent):
            return ""
        self._matched = True
        rest = self._buffer[len(self._sent) :]
        self._buffer = ""
        return rest

    def finish(self) -> None:
        """The new stream ended: it must at least have reproduced what was sent."""
        if not self._matched:
            raise Diverged
