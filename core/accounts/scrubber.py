"""Scrubbing the secrets a request used out of what goes back to the caller and is stored.

An upstream (or a proxy before it) may echo request headers, so the provider key, an
endpoint's key, or the caller's own gateway token can come back inside an answer, a
tool call's arguments, reasoning or an error. The gateway builds one ``Scrubber`` per
request from exactly the secrets that request used; ``stream()`` gives a scrubber for
one stream of text, which holds back only a tail that could be the start of a secret
split across chunks (at most ``len(longest secret) - 1`` characters, usually none).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace

from core.accounts.secrets import mask_secret
from core.request import Attempt, Summary

# Shorter "keys" (placeholders such as "ollama") are no secret, and masking them would
# mangle ordinary words in answers.
MIN_SECRET_CHARS = 8


def _prefixes_at_end(secret: str) -> str:
    """A pattern for any proper prefix of ``secret`` that ends the text: s(?:k(?:-)?)?\\Z."""
    pattern = ""
    for ch in reversed(secret[:-1]):
        pattern = f"{re.escape(ch)}(?:{pattern})?" if pattern else re.escape(ch)
    return pattern


class Scrubber:
    """The secrets of one request, and their masks, longest first."""

    __slots__ = ("_any", "_masks", "_whole")

    def __init__(self, secrets: Iterable[str | None]) -> None:
        found = {s.strip() for s in secrets if s and len(s.strip()) >= MIN_SECRET_CHARS}
        ordered = sorted(found, key=len, reverse=True)
        self._masks = {s: mask_secret(s) for s in ordered}
        self._whole: re.Pattern[str] | None = None
        self._any: re.Pattern[str] | None = None
        if ordered:  # compiled patterns are cached by re, so a repeat key costs no compile
            whole = "|".join(map(re.escape, ordered))
            tails = "|".join(map(_prefixes_at_end, ordered))
            self._whole = re.compile(whole)
            # A whole secret anywhere, or a secret's beginning that ends the text: the
            # common piece needs this one search only.
            self._any = re.compile(f"{whole}|(?:{tails})\\Z")

    def __bool__(self) -> bool:
        return self._whole is not None

    def __repr__(self) -> str:
        return f"Scrubber({len(self._masks)} secrets)"  # never the secrets themselves

    def text(self, text: str) -> str:
        """Whole text with every secret masked."""
        if self._whole is None or self._whole.search(text) is None:
            return text
        masks = self._masks
        return self._whole.sub(lambda m: masks[m.group(0)], text)

    def split(self, text: str) -> tuple[str, str]:
        """``text`` scrubbed, cut into what may go out now and a tail that may begin a secret."""
        found = self._any.search(text) if self._any is not None else None
        if found is None:
            return text, ""
        if found.group(0) in self._masks or self._whole.search(text, found.start()):  # type: ignore[union-attr]
            text = self.text(text)
            found = self._any.search(text)  # type: ignore[union-attr]
            if found is None:
                return text, ""
        return text[: found.start()], text[found.start() :]

    def stream(self) -> StreamScrubber:
        return StreamScrubber(self)


class StreamScrubber:
    """One stream of text (answer, reasoning, one tool call's arguments) scrubbed as it goes."""

    __slots__ = ("_held", "_scrubber")

    def __init__(self, scrubber: Scrubber) -> None:
        self._scrubber = scrubber
        self._held = ""

    def feed(self, piece: str) -> str:
        """What may go out now; a possible secret's beginning waits for the next piece."""
        scrubber = self._scrubber
        if not scrubber:
            return piece
        out, self._held = scrubber.split(self._held + piece if self._held else piece)
        return out

    def flush(self) -> str:
        """The end of the stream: whatever was held back was no secret after all."""
        held, self._held = self._held, ""
        return held


def _attempt(attempt: Attempt, scrubber: Scrubber) -> Attempt:
    message = attempt.error_message
    if message is None or scrubber.text(message) == message:
        return attempt
    return replace(attempt, error_message=scrubber.text(message))


def scrub_summary(summary: Summary, scrubber: Scrubber) -> Summary:
    """The summary with no secret in its error or attempts (the ledger and error bodies)."""
    if not scrubber:
        return summary
    error = summary.error
    if error is not None:
        clean = scrubber.text(error.message)
        if clean != error.message:
            error.message = clean
            error.args = (clean,)
    attempts = tuple(_attempt(a, scrubber) for a in summary.attempts)
    if any(a is not b for a, b in zip(attempts, summary.attempts, strict=True)):
        summary = replace(summary, attempts=attempts)
    return summary


class Scrubbers:
    """Built scrubbers by their secrets: a caller's keys repeat, so their patterns do too.

    Bounded: when full it starts again, which only costs the next requests a rebuild.
    """

    def __init__(self, limit: int = 1024) -> None:
        self._limit = limit
        self._built: dict[tuple[str, ...], Scrubber] = {}

    def get(self, secrets: Iterable[str | None]) -> Scrubber:
        key = tuple(s for s in secrets if s)
        scrubber = self._built.get(key)
        if scrubber is None:
            if len(self._built) >= self._limit:
                self._built = {}
            scrubber = self._built[key] = Scrubber(key)
        return scrubber
