"""Issue 20, finding 5: wrong gateway tokens are throttled per client address.

After the limit of wrong tokens from one address in a minute, /v1 answers 429 with
Retry-After and no database query; a valid token from the same address keeps working;
and the count is shared by replicas through the database.
"""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import event

from core.api.app import build_app
from core.api.context import ApiContext
from tests.test_api import Api, api, catalog, template_db

__all__ = ["api", "catalog", "template_db"]  # fixtures this module borrows

LIMIT = 20  # Settings.api_token_failures_per_minute's default


def _count_queries(api: Api) -> list[str]:
    seen: list[str] = []
    event.listen(api.runtime.engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    return seen


def _bad(i: int) -> dict[str, str]:
    return {"Authorization": f"Bearer sb-wrong-token-{i:04d}"}


async def test_wrong_tokens_get_429_without_a_query_while_a_valid_one_works(api: Api) -> None:
    assert (await api.client.get("/v1/models", headers=api.auth)).status_code == 200
    api.ctx.callers.clear()  # past the 2 s caller cache: the token is checked again below
    codes = [
        (await api.client.get("/v1/models", headers=_bad(i))).status_code for i in range(LIMIT)
    ]
    assert codes == [401] * LIMIT
    queries = _count_queries(api)
    r = await api.client.get("/v1/models", headers=_bad(999))
    assert r.status_code == 429, r.text
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert "wrong gateway tokens" in r.json()["error"]["message"]
    assert queries == []  # refused before any database work
    ok = await api.client.get("/v1/models", headers=api.auth)  # the same address
    assert ok.status_code == 200, ok.text


async def test_the_count_is_shared_by_replicas(api: Api) -> None:
    """A second ApiContext (another replica) over the same database learns the total."""
    other = ApiContext(api.runtime.settings, runtime_factory=lambda _: api.runtime)
    transport = httpx.ASGITransport(app=build_app(other))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as second:
        half = LIMIT // 2
        for i in range(half):
            assert (await api.client.get("/v1/models", headers=_bad(i))).status_code == 401
        for i in range(half, LIMIT):
            assert (await second.get("/v1/models", headers=_bad(i))).status_code == 401
        # The second replica's last failure returned the shared total: it refuses now,
        # and the first refuses after one more failure teaches it the same.
        assert (await second.get("/v1/models", headers=_bad(0))).status_code == 429
        statuses: list[Any] = [
            (await api.client.get("/v1/models", headers=_bad(j))).status_code for j in range(2)
        ]
        assert statuses == [401, 429]


async def test_other_addresses_are_not_throttled(api: Api) -> None:
    for i in range(LIMIT):
        await api.client.get("/v1/models", headers=_bad(i))
    transport = httpx.ASGITransport(app=build_app(api.ctx), client=("198.51.100.9", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as elsewhere:
        assert (await elsewhere.get("/v1/models", headers=_bad(1))).status_code == 401
