"""Thread-safe log of what reached a fake, with API keys masked before storage."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Headers that carry credentials across the providers we fake (Azure uses api-key).
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key"}
)
# Which secret header names the key, in order of preference.
_KEY_HEADERS = ("x-api-key", "authorization", "api-key", "x-goog-api-key")


def mask_secret(value: str) -> tuple[str, str]:
    """("Bearer …abcd", "abcd") for "Bearer sk-…abcd"; the raw value is not kept."""
    scheme, _, token = value.strip().rpartition(" ")
    last4 = token[-4:]
    masked = f"…{last4}"
    return (f"{scheme} {masked}" if scheme else masked), last4


def mask_headers(headers: Mapping[str, str]) -> tuple[dict[str, str], str | None]:
    """Headers with secrets masked, plus the last 4 characters of the API key."""
    masked: dict[str, str] = {}
    last4s: dict[str, str] = {}
    for name, value in headers.items():
        if name in SECRET_HEADERS:
            masked[name], last4s[name] = mask_secret(value)
        else:
            masked[name] = value
    key_last4 = next((last4s[h] for h in _KEY_HEADERS if h in last4s), None)
    return masked, key_last4


@dataclass
class RequestRecord:
    """One request as the fake saw it, and what it did about it."""

    received_at: float  # time.monotonic() when the request was parsed
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names, secrets masked
    key_last4: str | None  # last 4 chars of the API key, None if none was sent
    connection: int = 0  # server-side connection number (same number: keep-alive reuse)
    model: str | None = None
    stream: bool = False
    body: Any = None  # parsed JSON (None if there was no JSON body)
    outcome: str = "ok"  # e.g. "ok", "status:429", "reset", "cut:3", "not_found"
    prefill: str | None = None  # text of a trailing assistant message, if any
    tokens_sent: int = 0  # content tokens written to the socket
    completed: bool = False  # the whole response was written
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def messages(self) -> list[Any]:
        if isinstance(self.body, dict) and isinstance(self.body.get("messages"), list):
            return list(self.body["messages"])
        return []


class RequestLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []

    def append(self, record: RequestRecord) -> int:
        """Store a record; returns its 1-based sequence number."""
        with self._lock:
            self._records.append(record)
            return len(self._records)

    def select(self, model: str | None = None, path: str | None = None) -> list[RequestRecord]:
        with self._lock:
            records = list(self._records)
        return [
            r
            for r in records
            if (model is None or r.model == model) and (path is None or r.path == path)
        ]

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
