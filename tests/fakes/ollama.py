"""Ollama: its OpenAI-compatible /v1 endpoints plus the native discovery endpoints."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from tests.fakes.behaviours import Status
from tests.fakes.content import ApiError
from tests.fakes.log import RequestRecord
from tests.fakes.openai import FakeOpenAI
from tests.fakes.provider import Route
from tests.fakes.server import Connection, HttpRequest


class FakeOllama(FakeOpenAI):
    """Ollama: base_url is http://127.0.0.1:PORT/v1; no API key needed."""

    listed_models = ("llama3.2:latest",)
    owned_by = "library"
    system_fingerprint = "fp_ollama"
    require_key = False  # Ollama ignores Authorization
    version = "0.6.5"

    def routes(self) -> Mapping[tuple[str, str], Route]:
        return {
            **super().routes(),
            ("GET", "/api/tags"): self._tags,
            ("GET", "/api/version"): self._version,
            ("GET", "/"): self._root,
            ("HEAD", "/"): self._root,
        }

    async def _tags(self, req: HttpRequest, conn: Connection, rec: RequestRecord) -> None:
        models = [self._tag(name) for name in self.model_ids()]
        await self.send_json(conn, rec, {"models": models})

    @staticmethod
    def _tag(name: str) -> dict[str, Any]:
        family = name.split(":")[0].rstrip("0123456789.") or name
        return {
            "name": name,
            "model": name,
            "modified_at": "2025-01-01T00:00:00.000000000Z",
            "size": 2019393189,
            "digest": hashlib.sha256(name.encode()).hexdigest(),
            "details": {
                "parent_model": "",
                "format": "gguf",
                "family": family,
                "families": [family],
                "parameter_size": "3.2B",
                "quantization_level": "Q4_K_M",
            },
        }

    async def _version(self, req: HttpRequest, conn: Connection, rec: RequestRecord) -> None:
        await self.send_json(conn, rec, {"version": self.version})

    async def _root(self, req: HttpRequest, conn: Connection, rec: RequestRecord) -> None:
        self._log.append(rec)
        body = b"" if req.method == "HEAD" else b"Ollama is running"
        await conn.send(200, {"Content-Type": "text/plain; charset=utf-8"}, body)
        rec.completed = True

    def status_error(self, status: Status, model: str | None) -> ApiError:
        if status.code == 404 and status.message is None:
            message = f'model "{model}" not found, try pulling it first'
            return ApiError(404, status.error_type or "api_error", message,
                            headers=status.response_headers())  # fmt: skip
        return super().status_error(status, model)
