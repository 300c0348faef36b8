"""The /v1 API over a real gateway that talks to fake OpenAI/Anthropic servers on loopback.

Each test gets its own SQLite file, copied from one migrated template (migrating per
test would cost most of the suite's time), and its own Gateway.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select

from core.accounts import keys, tokens
from core.accounts.secrets import load_cipher
from core.api import openai_format as fmt
from core.api import openai_request
from core.api.app import build_app
from core.api.context import CALLER_TTL_S, ApiContext
from core.clock import utc_now
from core.config import load_settings
from core.gateway.gateway import Gateway, GatewaySettings
from core.gateway.retry import RetryPolicy
from core.gateway.runtime import Runtime
from core.money import budgets, ratelimits
from core.money.catalog import Catalog, load_catalog
from core.request import Attempt, Summary, micros_to_usd
from core.settings import endpoints, profiles, routes
from core.settings.routes import RouteOptions
from core.store import db
from core.store.tables import RequestRow
from core.ttlcache import TtlCache
from core.upstream.breaker import BreakerPolicy
from tests.conftest import add_user
from tests.fakes import FakeAnthropic, FakeOpenAI, Hang, Reply, Status

MINI = "openai/gpt-4o-mini"
HAIKU = "claude-haiku-4-5"
OPENAI_KEY = "sk-test-openai-key-000000000000000000"
ANTHROPIC_KEY = "sk-ant-test-key-00000000000000000000"
HI = [{"role": "user", "content": "hi"}]


@dataclass
class Api:
    """One test's API: an HTTP client over the ASGI app, plus the pieces behind it."""

    client: httpx.AsyncClient
    ctx: ApiContext
    runtime: Runtime
    token: str
    user_id: int
    environ: dict[str, str] = field(default_factory=dict)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def chat(self, body: dict[str, Any], **kw: Any) -> httpx.Response:
        return await self.client.post("/v1/chat/completions", json=body, headers=self.auth, **kw)

    def ledger(self) -> list[RequestRow]:
        assert self.runtime.gateway.flush(10), "the ledger writer did not drain"
        with self.runtime.sessions() as s:
            return list(s.scalars(select(RequestRow).order_by(RequestRow.at)))


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "switchboard.db"
    engine = db.make_engine(f"sqlite:///{path}")
    db.upgrade_database(engine)
    engine.dispose()
    return path


async def _no_sleep(seconds: float) -> None:
    return None


def make_runtime(catalog: Catalog, environ: dict[str, str], **settings: Any) -> Runtime:
    """A Runtime like build_runtime's, but with no backoff sleeps and a given environment."""
    cfg = load_settings(**settings)
    engine = db.make_engine(cfg.database_url)
    sessions = db.make_session_factory(engine)
    cipher = load_cipher(cfg)
    gateway = Gateway(
        sessions=sessions,
        catalog=catalog,
        cipher=cipher,
        sleep=_no_sleep,
        environ=environ,
        settings=GatewaySettings(
            retry=RetryPolicy(base_delay_s=0.0),
            breaker=BreakerPolicy(min_calls=1000, window_calls=1000),
        ),
    )
    return Runtime(cfg, engine, sessions, catalog, cipher, gateway)


def wire(
    runtime: Runtime, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic | None
) -> tuple[str, int]:
    """Send the built-in providers to the fakes; add user alice with a gateway token."""
    now = utc_now()
    providers = runtime.catalog.providers()
    fakes: dict[str, FakeOpenAI | FakeAnthropic | None] = {
        "openai": fake_openai,
        "anthropic": fake_anthropic,
    }
    with runtime.sessions.begin() as s:
        for name, fake in fakes.items():
            if fake is not None:
                endpoints.add_endpoint(
                    s, name=name, kind="override", api_base=fake.base_url, actor="test",
                    now=now, builtin_providers=providers,
                )  # fmt: skip
    user = add_user(runtime.sessions, "alice")
    with runtime.sessions.begin() as s:
        token, _ = tokens.create_token(s, username="alice", name="ci", actor="test", now=now)
    return token, user.id


@pytest.fixture
async def api(
    isolated_env: Path,
    template_db: Path,
    catalog: Catalog,
    fake_openai: FakeOpenAI,
    fake_anthropic: FakeAnthropic,
) -> AsyncIterator[Api]:
    shutil.copy(template_db, isolated_env / "switchboard.db")
    environ = {"OPENAI_API_KEY": OPENAI_KEY}
    runtime = make_runtime(catalog, environ, api_max_body_bytes=64 * 1024)
    token, user_id = wire(runtime, fake_openai, fake_anthropic)
    ctx = ApiContext(runtime.settings, runtime_factory=lambda _: runtime, environ=environ)
    transport = httpx.ASGITransport(app=build_app(ctx))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield Api(client, ctx, runtime, token, user_id, environ)
    await runtime.gateway.aclose()  # as the lifespan does, which ASGITransport skips
    ctx.close()


def sse_events(text: str) -> list[Any]:
    """The `data:` payloads of an SSE body, JSON-decoded except the [DONE] marker."""
    out: list[Any] = []
    for block in text.split("\n\n"):
        if block.startswith("data: "):
            data = block[len("data: ") :]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


# --- auth -----------------------------------------------------------------------------


async def test_a_checked_token_is_trusted_for_the_ttl_then_rechecked(api: Api) -> None:
    """A busy client costs no token query per request; revocation lands within the TTL."""
    now = [1000.0]
    api.ctx.callers = TtlCache(CALLER_TTL_S, clock=lambda: now[0])
    queries: list[str] = []
    event.listen(
        api.runtime.engine,
        "before_cursor_execute",
        lambda *a: queries.append(a[2]) if "gateway_tokens" in a[2] else None,
    )
    assert (await api.client.get("/v1/models", headers=api.auth)).status_code == 200
    assert (await api.client.get("/v1/models", headers=api.auth)).status_code == 200
    assert len([q for q in queries if q.lstrip().upper().startswith("SELECT")]) == 1
    with api.runtime.sessions.begin() as s:
        tokens.revoke_token(s, username="alice", name="ci", actor="test", now=utc_now())
    assert (await api.client.get("/v1/models", headers=api.auth)).status_code == 200
    now[0] += CALLER_TTL_S + 0.1
    r = await api.client.get("/v1/models", headers=api.auth)
    assert r.status_code == 401, r.text


async def test_concurrent_requests_with_an_unchecked_token_cost_one_query(api: Api) -> None:
    queries: list[str] = []
    event.listen(
        api.runtime.engine,
        "before_cursor_execute",
        lambda *a: queries.append(a[2]) if "gateway_tokens" in a[2] else None,
    )
    replies = await asyncio.gather(
        *(api.client.get("/v1/models", headers=api.auth) for _ in range(32))
    )
    assert [r.status_code for r in replies] == [200] * 32
    assert len([q for q in queries if q.lstrip().upper().startswith("SELECT")]) == 1


@pytest.mark.parametrize("kind", ["missing", "bad", "revoked", "not-bearer"])
async def test_bad_token_is_401(api: Api, kind: str) -> None:
    headers = {
        "missing": {},
        "bad": {"Authorization": "Bearer sb-not-a-real-token"},
        "revoked": api.auth,
        "not-bearer": {"Authorization": f"Basic {api.token}"},
    }[kind]
    if kind == "revoked":
        with api.runtime.sessions.begin() as s:
            tokens.revoke_token(s, username="alice", name="ci", actor="test", now=utc_now())
    for method, path in (("POST", "/v1/chat/completions"), ("GET", "/v1/models")):
        body = {"model": MINI, "messages": HI} if method == "POST" else None
        r = await api.client.request(method, path, json=body, headers=headers)
        assert r.status_code == 401, r.text
        err = r.json()["error"]
        assert (err["type"], err["code"]) == ("authentication_error", "invalid_api_key")
        assert "token" in err["message"]


# --- chat completions -------------------------------------------------------------------


async def test_completion_with_headers_exact_cost_and_ledger_row(
    api: Api, fake_openai: FakeOpenAI
) -> None:
    fake_openai.configure("gpt-4o-mini", reported="gpt-4o-mini-2024-07-18")
    r = await api.chat({"model": MINI, "messages": HI, "temperature": 0.2, "user": "u1"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "chat.completion"
    # The provider's own name, as OpenAI answers; the catalog id is in the header.
    assert body["model"] == "gpt-4o-mini-2024-07-18"
    assert r.headers["x-switchboard-model"] == MINI
    choice = body["choices"][0]
    assert choice["message"] == {
        "role": "assistant",
        "content": fake_openai.reply_text("gpt-4o-mini"),
        "refusal": None,
    }
    assert choice["finish_reason"] == "stop"
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    upstream = fake_openai.requests("gpt-4o-mini")[0].body
    assert (upstream["temperature"], upstream["user"]) == (0.2, "u1")

    h = r.headers
    assert h["x-switchboard-model"] == MINI
    assert h["x-switchboard-fallback"] == "false"
    model, outcome, ms = h["x-switchboard-attempts"].rsplit(":", 2)
    assert (model, outcome, ms.isdigit()) == (MINI, "ok", True)
    [row] = api.ledger()
    assert body["id"] == f"chatcmpl-{row.id}" and h["x-switchboard-request-id"] == row.id
    assert (row.token_name, row.source, row.status, row.username) == (
        "ci",
        "api",
        "success",
        "alice",
    )
    assert row.cost_micros and row.cost_micros > 0
    assert Decimal(h["x-switchboard-cost-usd"]) == micros_to_usd(row.cost_micros)
    # gpt-4o-mini: $0.15 in / $0.60 out per 1M tokens, to the micro-dollar.
    exact = Decimal("0.15") * usage["prompt_tokens"] + Decimal("0.6") * usage["completion_tokens"]
    assert abs(Decimal(h["x-switchboard-cost-usd"]) * 1_000_000 - exact) < 1


async def test_profile_field_picks_the_callers_profile_route(
    api: Api, fake_anthropic: FakeAnthropic
) -> None:
    api.environ["ANTHROPIC_API_KEY"] = ANTHROPIC_KEY
    with api.runtime.sessions.begin() as s:
        drafting = profiles.create_profile(
            s, user_id=api.user_id, name="drafting", keys_choice="auto", actor="t", now=utc_now()
        )
        profiles.set_profile_route(
            s,
            profile_id=drafting.id,
            models=[f"anthropic/{HAIKU}"],
            known_model=lambda m: True,
            actor="t",
            now=utc_now(),
        )
    api.runtime.gateway.refresh()
    r = await api.chat({"messages": HI, "profile": "drafting"})
    assert r.status_code == 200, r.text
    assert r.headers["x-switchboard-model"] == f"anthropic/{HAIKU}"
    assert r.json()["choices"][0]["message"]["content"] == fake_anthropic.reply_text(HAIKU)
    [row] = api.ledger()
    assert (row.profile, row.served_model) == ("drafting", f"anthropic/{HAIKU}")


@pytest.mark.parametrize(
    ("profile", "fragment"),
    [
        ("nope", "no profile named 'nope'"),
        (7, "`profile` must be a string"),
        ("x" * 65, "at most 64 characters"),
    ],
)
async def test_bad_profile_is_400_and_sends_nothing(
    api: Api, fake_openai: FakeOpenAI, profile: Any, fragment: str
) -> None:
    r = await api.chat({"messages": HI, "profile": profile})
    assert r.status_code == 400, r.text
    assert fragment in r.json()["error"]["message"]
    assert fake_openai.count() == 0


@pytest.mark.parametrize("stream", [False, True])
async def test_metadata_is_stored_on_the_request_row(
    api: Api, fake_openai: FakeOpenAI, stream: bool
) -> None:
    # At every limit at once: 16 keys, a 64-character key, a 512-character value.
    metadata: dict[str, Any] = {
        "ticket": "OPS-12",
        "run": 3,
        "ratio": 0.5,
        "dry": False,
        "note": None,
        "k" * 64: "ü" * 512,
    }
    metadata.update({f"tag{i}": str(i) for i in range(16 - len(metadata))})
    r = await api.chat({"model": MINI, "messages": HI, "stream": stream, "metadata": metadata})
    assert r.status_code == 200, r.text
    [row] = api.ledger()
    assert row.request_metadata == metadata
    # Metadata is for the ledger only: it never goes upstream.
    assert "metadata" not in fake_openai.requests("gpt-4o-mini")[0].body


BAD_METADATA = [
    ("not an object", "labels", "`metadata` must be an object, not a string"),
    ("too many keys", {f"k{i}": "v" for i in range(17)}, "at most 16 keys; got 17"),
    ("empty key", {"": "v"}, "keys must be 1 to 64 characters"),
    ("long key", {"k" * 65: "v"}, "keys must be 1 to 64 characters; one has 65"),
    ("long value", {"k": "v" * 513}, "`metadata.k` can be at most 512 characters; got 513"),
    ("nested object", {"k": {"a": 1}}, "`metadata.k` must be a string, number, boolean or null"),
    ("array value", {"k": [1]}, "not an array"),
    ("huge int", {"k": 2**63}, "`metadata.k` is too large"),
]


@pytest.mark.parametrize(
    ("metadata", "hint"),
    [(m, h) for _, m, h in BAD_METADATA],
    ids=[name for name, _, _ in BAD_METADATA],
)
async def test_bad_metadata_is_400_and_nothing_is_sent_or_recorded(
    api: Api, fake_openai: FakeOpenAI, metadata: Any, hint: str
) -> None:
    r = await api.chat({"model": MINI, "messages": HI, "metadata": metadata})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error" and hint in err["message"], err
    assert fake_openai.count() == 0
    assert api.ledger() == []


async def test_metadata_too_large_a_float_is_400(api: Api) -> None:
    # json.loads reads 1e400 as infinity, which no JSON column can store.
    content = (
        b'{"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}],'
        b' "metadata": {"k": 1e400}}'
    )
    r = await api.client.post("/v1/chat/completions", content=content, headers=api.auth)
    assert r.status_code == 400 and "`metadata.k` is too large" in r.text, r.text
    assert api.ledger() == []


async def test_fallback_names_the_model_that_answered(
    api: Api, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic
) -> None:
    api.environ["ANTHROPIC_API_KEY"] = ANTHROPIC_KEY
    fake_openai.configure("gpt-4o", default=Status(503))
    r = await api.chat(
        {"model": "openai/gpt-4o", "messages": HI, "fallbacks": [f"anthropic/{HAIKU}"]}
    )
    assert r.status_code == 200, r.text
    assert r.json()["model"] == HAIKU  # as Anthropic names it
    assert r.json()["choices"][0]["message"]["content"] == fake_anthropic.reply_text(HAIKU)
    assert r.headers["x-switchboard-model"] == f"anthropic/{HAIKU}"
    assert r.headers["x-switchboard-fallback"] == "true"
    items = [i.rsplit(":", 2) for i in r.headers["x-switchboard-attempts"].split(",")]
    assert [i[:2] for i in items] == [["openai/gpt-4o", "error"]] * 3 + [
        [f"anthropic/{HAIKU}", "ok"]
    ]
    [row] = api.ledger()
    assert (row.status, row.served_model, row.fallback_used) == (
        "success-after-fallback",
        f"anthropic/{HAIKU}",
        True,
    )


async def test_stream_with_usage_chunk_and_done(api: Api, fake_openai: FakeOpenAI) -> None:
    fake_openai.configure("gpt-4o-mini", reported="gpt-4o-mini-2024-07-18")
    body = {
        "model": MINI,
        "messages": HI,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    r = await api.chat(body)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == fake_openai.reply_text("gpt-4o-mini")
    finish, usage = chunks[-2], chunks[-1]
    assert finish["choices"][0]["finish_reason"] == "stop"
    assert finish["model"] == "gpt-4o-mini-2024-07-18"  # the provider's name for it
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] > 0
    info = usage["x_switchboard"]
    assert (info["model"], info["fallback"], info["status"]) == (MINI, False, "success")
    assert [a["outcome"] for a in info["attempts"]] == ["ok"]
    [row] = api.ledger()
    assert r.headers["x-switchboard-request-id"]
    assert info["request_id"] == row.id
    assert Decimal(info["cost_usd"]) == micros_to_usd(row.cost_micros or 0)


async def test_stream_cut_after_text_ends_with_error_not_done(
    api: Api, fake_openai: FakeOpenAI
) -> None:
    # token_delay: the upstream really sends text before it breaks.
    fake_openai.script("gpt-4o-mini", Reply(cut_after=3, token_delay=0.01, rst=True))
    r = await api.chat({"model": MINI, "messages": HI, "stream": True, "fallbacks": []})
    assert r.status_code == 200
    events = sse_events(r.text)
    assert "[DONE]" not in events
    text = "".join(
        e["choices"][0]["delta"].get("content") or "" for e in events if e.get("choices")
    )
    assert text == "".join(fake_openai.tokens_for("gpt-4o-mini")[:3])
    assert all(c["finish_reason"] != "stop" for e in events for c in e.get("choices", []))
    err = events[-1]["error"]
    assert err["code"] == "all_models_failed" and "cut off" in err["message"]
    assert events[-1]["x_switchboard"]["status"] == "partial"
    [row] = api.ledger()
    assert row.status == "partial"


async def test_stream_failure_before_text_is_an_http_error(
    api: Api, fake_openai: FakeOpenAI
) -> None:
    fake_openai.configure("gpt-4o-mini", default=Status(400))
    r = await api.chat({"model": MINI, "messages": HI, "stream": True, "fallbacks": []})
    assert r.status_code == 502
    assert r.headers["content-type"] == "application/json"
    assert r.json()["error"]["code"] == "all_models_failed"
    assert r.headers["x-switchboard-attempts"].startswith(f"{MINI}:error:")


def content_chunks(events: list[Any]) -> list[dict[str, Any]]:
    return [
        e
        for e in events
        if isinstance(e, dict) and e.get("choices") and e["choices"][0]["delta"].get("content")
    ]


async def test_stream_headers_name_the_model_after_a_failover_before_text(
    api: Api, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic
) -> None:
    api.environ["ANTHROPIC_API_KEY"] = ANTHROPIC_KEY
    fake_openai.configure("gpt-4o", default=Status(503))
    haiku = f"anthropic/{HAIKU}"
    body = {
        "model": "openai/gpt-4o",
        "messages": HI,
        "stream": True,
        "fallbacks": [haiku],
        "stream_options": {"include_usage": True},
    }
    r = await api.chat(body)
    assert r.status_code == 200, r.text
    h = r.headers
    assert (h["x-switchboard-model"], h["x-switchboard-fallback"]) == (haiku, "true")
    items = [i.rsplit(":", 2) for i in h["x-switchboard-attempts"].split(",")]
    assert [i[:2] for i in items] == [["openai/gpt-4o", "error"]] * 3 + [[haiku, "streaming"]]
    assert all(i[2].isdigit() for i in items)
    assert "x-switchboard-cost-usd" not in h  # known only at the end: in the final chunk
    events = sse_events(r.text)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert {c["model"] for c in chunks} == {HAIKU}  # role, text, finish and usage chunks
    text = "".join(c["choices"][0]["delta"]["content"] for c in content_chunks(chunks))
    assert text == fake_anthropic.reply_text(HAIKU)
    info = chunks[-1]["x_switchboard"]
    assert [a["outcome"] for a in info["attempts"]] == ["error"] * 3 + ["ok"]
    [row] = api.ledger()
    assert h["x-switchboard-request-id"] == info["request_id"] == row.id
    assert Decimal(info["cost_usd"]) == micros_to_usd(row.cost_micros or 0)


CONTINUED_WORDS = [f"w{i} " for i in range(8)]


async def _stream_cut_then_continued(
    api: Api, fake_openai: FakeOpenAI, **body: Any
) -> httpx.Response:
    """gpt-4o-mini is cut after 3 words of 8, and gpt-4o continues the answer."""
    for model in ("gpt-4o-mini", "gpt-4o"):
        fake_openai.configure(model, tokens=CONTINUED_WORDS)
    fake_openai.script("gpt-4o-mini", Reply(cut_after=3, token_delay=0.02, rst=True))
    return await api.chat(
        {"model": MINI, "messages": HI, "stream": True, "fallbacks": ["openai/gpt-4o"], **body}
    )


async def test_stream_chunks_name_the_model_writing_them_across_a_continuation(
    api: Api, fake_openai: FakeOpenAI
) -> None:
    words = CONTINUED_WORDS
    r = await _stream_cut_then_continued(api, fake_openai)
    assert r.status_code == 200, r.text
    # Sent at the first text: the model streaming then, before the cut.
    assert (r.headers["x-switchboard-model"], r.headers["x-switchboard-fallback"]) == (
        MINI,
        "false",
    )
    model, outcome, _ = r.headers["x-switchboard-attempts"].rsplit(":", 2)
    assert (model, outcome) == (MINI, "streaming")
    events = sse_events(r.text)
    texts = content_chunks(events)
    assert "".join(c["choices"][0]["delta"]["content"] for c in texts) == "".join(words)
    assert [c["model"] for c in texts] == ["gpt-4o-mini"] * 3 + ["gpt-4o"] * 5
    assert events[0]["model"] == "gpt-4o-mini"  # the role chunk
    finish = events[-2]
    assert finish["model"] == "gpt-4o"
    info = finish["x_switchboard"]
    assert (info["model"], info["fallback"]) == ("openai/gpt-4o", True)
    assert [a["outcome"] for a in info["attempts"]] == ["cut", "ok"]


async def test_usage_is_the_answering_models_and_cost_covers_the_cut_attempt_too(
    api: Api, fake_openai: FakeOpenAI
) -> None:
    r = await _stream_cut_then_continued(api, fake_openai, stream_options={"include_usage": True})
    events = sse_events(r.text)
    usage = events[-2]["usage"]
    info = next(e["x_switchboard"] for e in events[:-1] if "x_switchboard" in e)
    cut, answered = info["attempts"]
    # The continuation model's own usage, not the sum with the cut attempt's estimate ...
    assert cut["completion_tokens"] > 0
    assert usage["completion_tokens"] == answered["completion_tokens"] > 0
    assert usage["prompt_tokens"] == answered["prompt_tokens"]
    # ... while the cost is everything the request spent.
    assert Decimal(info["cost_usd"]) == Decimal(cut["cost_usd"]) + Decimal(answered["cost_usd"])


async def test_stream_that_ends_without_text_sends_every_header(
    api: Api, fake_openai: FakeOpenAI
) -> None:
    fake_openai.configure("gpt-4o-mini", tokens=[])
    r = await api.chat({"model": MINI, "messages": HI, "stream": True, "fallbacks": []})
    assert r.status_code == 200, r.text
    assert r.headers["x-switchboard-model"] == MINI
    assert r.headers["x-switchboard-attempts"].startswith(f"{MINI}:ok:")
    assert r.headers["x-switchboard-cost-usd"] != "unpriced"
    assert sse_events(r.text)[-1] == "[DONE]"


# --- bad input --------------------------------------------------------------------------

BAD_BODIES: list[tuple[str, bytes | dict[str, Any], str]] = [
    ("invalid json", b'{"model": "x", "messages": [', "not valid JSON"),
    ("non-utf8", b'{"messages": "\xff\xfe"}', "UTF-8"),
    ("empty body", b"", "empty"),
    ("array body", b"[1, 2]", "JSON object"),
    ("NaN", b'{"messages": [{"role": "user", "content": "x"}], "temperature": NaN}', "NaN"),
    ("huge number", b'{"max_tokens": 1' + b"0" * 5000 + b"}", "too large"),
    ("deep nesting", b"[" * 20_000 + b"]" * 20_000, "nested too deeply"),
    ("no messages", {"model": MINI}, "`messages` is missing"),
    ("messages not a list", {"messages": "hi"}, "`messages` must be a list"),
    ("empty messages", {"messages": []}, "`messages` is empty"),
    ("message not object", {"messages": ["hi"]}, "messages[0]"),
    ("unknown role", {"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
    ("missing content", {"messages": [{"role": "user"}]}, "messages[0].content"),
    ("content wrong type", {"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ("bad part", {"messages": [{"role": "user", "content": [{"type": "x"}]}]}, "type"),
    ("tool without id", {"messages": [{"role": "tool", "content": "x"}]}, "tool_call_id"),
    ("model not string", {"model": 4, "messages": HI}, "`model` must be a string"),
    ("stream not bool", {"messages": HI, "stream": "yes"}, "`stream`"),
    ("temperature type", {"messages": HI, "temperature": "hot"}, "`temperature`"),
    ("temperature range", {"messages": HI, "temperature": 2.5}, "between 0 and 2"),
    ("max_tokens zero", {"messages": HI, "max_tokens": 0}, "`max_tokens`"),
    ("max_tokens bool", {"messages": HI, "max_tokens": True}, "`max_tokens`"),
    ("n=2", {"messages": HI, "n": 2}, "`n` must be 1"),
    ("top_p range", {"messages": HI, "top_p": 3}, "`top_p`"),
    ("stop type", {"messages": HI, "stop": 7}, "`stop`"),
    ("fallbacks type", {"messages": HI, "fallbacks": "x"}, "`fallbacks`"),
    ("metadata type", {"messages": HI, "metadata": [1]}, "`metadata`"),
    ("metadata nested", {"messages": HI, "metadata": {"a": {"b": 1}}}, "`metadata.a`"),
    ("tools", {"messages": HI, "tools": [{"type": "function"}]}, "tools"),
    ("auto without route", {"messages": HI}, "No route"),
]


@pytest.mark.parametrize(
    ("raw", "hint"), [(b, h) for _, b, h in BAD_BODIES], ids=[name for name, _, _ in BAD_BODIES]
)
async def test_bad_input_is_400_saying_what_to_fix(
    api: Api, raw: bytes | dict[str, Any], hint: str
) -> None:
    content = raw if isinstance(raw, bytes) else json.dumps(raw).encode()
    r = await api.client.post("/v1/chat/completions", content=content, headers=api.auth)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error"
    assert hint in err["message"]


async def test_body_over_limit_is_413(api: Api) -> None:
    big = {"model": MINI, "messages": [{"role": "user", "content": "x" * 70_000}]}
    r = await api.chat(big)
    assert r.status_code == 413
    assert "limit" in r.json()["error"]["message"]

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
        for _ in range(20):
            yield b" " * 4096

    r = await api.client.post("/v1/chat/completions", content=chunks(), headers=api.auth)
    assert r.status_code == 413


# --- refusals and failures --------------------------------------------------------------


async def test_unknown_model_is_404(api: Api) -> None:
    r = await api.chat({"model": "openai/no-such-model", "messages": HI})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


# A refusal or failure before any text is an HTTP error on a stream too, never a 200.
STREAM = pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])


@STREAM
async def test_hard_budget_is_402(api: Api, fake_openai: FakeOpenAI, stream: bool) -> None:
    with api.runtime.sessions.begin() as s:
        budgets.set_budget(s, "user", str(api.user_id), 1, True, "test", utc_now())
    r = await api.chat({"model": MINI, "messages": HI, "stream": stream})
    assert r.status_code == 402, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.json()["error"]["code"] == "budget_exceeded"
    assert fake_openai.count() == 0


@STREAM
async def test_rate_limit_is_429_with_retry_after(api: Api, stream: bool) -> None:
    with api.runtime.sessions.begin() as s:
        ratelimits.set_rate_limit(s, api.user_id, 1, None, "test", utc_now())
    assert (await api.chat({"model": MINI, "messages": HI})).status_code == 200
    r = await api.chat({"model": MINI, "messages": HI, "stream": stream})
    assert r.status_code == 429
    assert r.headers["content-type"] == "application/json"
    assert r.json()["error"]["type"] == "rate_limit_error"
    assert 1 <= int(r.headers["retry-after"]) <= 60


@STREAM
async def test_model_without_a_key_for_the_caller_is_403_and_sends_nothing(
    api: Api, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic, stream: bool
) -> None:
    haiku = f"anthropic/{HAIKU}"
    listed = (await api.client.get("/v1/models", headers=api.auth)).json()["data"]
    assert haiku not in {m["id"] for m in listed}  # exists, but not for alice: no key
    # Named, it is refused rather than skipped for the fallbacks.
    r = await api.chat({"model": haiku, "messages": HI, "stream": stream, "fallbacks": [MINI]})
    assert r.status_code == 403, r.text
    assert r.headers["content-type"] == "application/json"
    err = r.json()["error"]
    assert (err["type"], err["code"]) == ("permission_error", "model_not_allowed")
    assert haiku in err["message"] and "GET /v1/models" in err["message"]
    assert "anthropic key" in err["message"]
    assert fake_anthropic.count() == 0 and fake_openai.count() == 0
    [row] = api.ledger()  # refused like a budget or rate limit: one row, no attempts
    assert (row.status, row.error_class, row.requested_model, row.attempt_count) == (
        "no-key",
        "ModelNotAllowed",
        haiku,
        0,
    )
    assert r.headers["x-switchboard-request-id"] == row.id


async def test_a_route_may_still_skip_a_model_without_a_key(
    api: Api, fake_anthropic: FakeAnthropic
) -> None:
    # Only a model the request names is refused; `auto` walks the route as before.
    with api.runtime.sessions.begin() as s:
        routes.set_route(
            s,
            scope="user",
            scope_id=api.user_id,
            models=[f"anthropic/{HAIKU}", MINI],
            known_model=lambda m: True,
            actor="test",
            now=utc_now(),
        )
    r = await api.chat({"messages": HI})
    assert r.status_code == 200, r.text
    assert r.headers["x-switchboard-model"] == MINI
    assert r.headers["x-switchboard-attempts"].startswith(f"anthropic/{HAIKU}:no-key:")
    assert fake_anthropic.count() == 0


async def test_a_profile_whose_keys_choice_excludes_every_key_is_403(
    api: Api, fake_openai: FakeOpenAI
) -> None:
    with api.runtime.sessions.begin() as s:
        profiles.create_profile(
            s, user_id=api.user_id, name="Personal", keys_choice="own", actor="t", now=utc_now()
        )
    r = await api.chat({"model": MINI, "messages": HI, "profile": "Personal"})
    assert r.status_code == 403, r.text
    assert "profile 'Personal'" in r.json()["error"]["message"]
    assert fake_openai.count() == 0


async def test_every_model_failed_is_502_listing_attempts(
    api: Api, fake_openai: FakeOpenAI
) -> None:
    fake_openai.configure("gpt-4o-mini", default=Status(400))
    fake_openai.configure("gpt-4o", default=Status(503))
    r = await api.chat({"model": MINI, "messages": HI, "fallbacks": ["openai/gpt-4o"]})
    assert r.status_code == 502
    message = r.json()["error"]["message"]
    assert MINI in message and "openai/gpt-4o:" in message
    [row] = api.ledger()
    assert row.status == "failed" and row.token_name == "ci"


@STREAM
async def test_every_model_timing_out_is_504(
    api: Api, fake_openai: FakeOpenAI, stream: bool
) -> None:
    fake_openai.configure("gpt-4o-mini", default=Hang())
    # The total leaves room for admission on a loaded machine (its first request loads
    # routes and prices from the database); the first-token timer is what fires.
    options = RouteOptions(max_retries=0, total_timeout_s=2.0, first_token_timeout_s=0.3)
    with api.runtime.sessions.begin() as s:
        routes.set_route(
            s,
            scope="user",
            scope_id=api.user_id,
            models=[MINI],
            known_model=lambda m: True,
            actor="test",
            now=utc_now(),
            options=options,
        )
    r = await api.chat({"messages": HI, "stream": stream})  # no model: the caller's route
    assert r.status_code == 504, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.json()["error"]["type"] == "timeout_error"


async def test_unexpected_error_is_a_generic_500(
    isolated_env: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(_: Any) -> Runtime:
        raise RuntimeError("boom with sk-live-secret-0000000000000000")

    ctx = ApiContext(load_settings(), runtime_factory=broken)
    transport = httpx.ASGITransport(app=build_app(ctx))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        r = await client.post(
            "/v1/chat/completions",
            json={"messages": HI},
            headers={"Authorization": "Bearer sb-whatever"},
        )
    assert r.status_code == 500
    rid = r.headers["x-switchboard-request-id"]
    assert rid in r.json()["error"]["message"]
    assert "boom" not in r.text and "Traceback" not in r.text
    logged = caplog.text  # the details go to the log, with the secret masked
    assert rid in logged and "boom" in logged and "sk-live-secret-0000000000000000" not in logged


# --- models and health ------------------------------------------------------------------


async def test_models_lists_what_the_caller_has_keys_for(api: Api) -> None:
    now = utc_now()
    with api.runtime.sessions.begin() as s:
        endpoints.add_endpoint(
            s,
            name="corp",
            kind="openai-compatible",
            api_base="http://127.0.0.1:9/v1",
            models=["m1"],
            actor="test",
            now=now,
            builtin_providers=api.runtime.catalog.providers(),
        )

    async def ids(query: str = "") -> dict[str, str]:
        r = await api.client.get(f"/v1/models{query}", headers=api.auth)
        assert r.status_code == 200 and r.json()["object"] == "list"
        return {m["id"]: m["owned_by"] for m in r.json()["data"]}

    listed = await ids()
    assert listed[MINI] == "openai"  # env key
    assert listed["corp/m1"] == "corp"  # endpoint model
    # Ollama needs no key, but with no server configured its models are not callable.
    assert not any(p == "ollama" for p in listed.values())
    assert not any(p == "anthropic" for p in listed.values())
    with api.runtime.sessions.begin() as s:
        keys.set_key(
            s,
            api.runtime.cipher,
            owner_kind="user",
            owner_id=api.user_id,
            provider="anthropic",
            secret=ANTHROPIC_KEY,
            actor="test",
            now=now,
            known_providers=api.runtime.catalog.providers(),
        )
    assert (await ids())[f"anthropic/{HAIKU}"] == "anthropic"
    api.environ["OLLAMA_API_BASE"] = "http://127.0.0.1:11434"  # the server's environment
    assert any(p == "ollama" for p in (await ids()).values())
    everything = await ids("?all=true")
    assert len(everything) == len(api.runtime.catalog.models()) + 1
    r = await api.client.get(f"/v1/models/{MINI}", headers=api.auth)
    assert r.json() == {"id": MINI, "object": "model", "created": 0, "owned_by": "openai"}
    r = await api.client.get("/v1/models/openai/nope", headers=api.auth)
    assert r.status_code == 404


async def test_one_model_is_403_when_the_caller_could_not_use_it(api: Api) -> None:
    # The same answer a chat request naming it would get: listed models are usable ones.
    r = await api.client.get(f"/v1/models/anthropic/{HAIKU}", headers=api.auth)
    assert r.status_code == 403, r.text
    error = r.json()["error"]
    assert error["code"] == "model_not_allowed"
    assert "add your own anthropic key on the Providers & keys page" in error["message"]
    r = await api.client.get("/v1/models/ollama/llama3", headers=api.auth)
    assert r.status_code == 403  # needs no key, but there is no server to call
    assert "No ollama server is configured" in r.json()["error"]["message"]
    api.environ["OLLAMA_API_BASE"] = "http://127.0.0.1:11434"
    r = await api.client.get("/v1/models/ollama/llama3", headers=api.auth)
    assert r.status_code == 200 and r.json()["owned_by"] == "ollama"


async def test_models_follow_the_profiles_keys_choice(api: Api) -> None:
    # The environment's OpenAI key is shared, not the caller's own: a profile that
    # allows only the caller's own keys sees no OpenAI model, as its chats would.
    api.environ["OLLAMA_API_BASE"] = "http://127.0.0.1:11434"  # keyless, with a server
    with api.runtime.sessions.begin() as s:
        profiles.create_profile(
            s, user_id=api.user_id, name="Personal", keys_choice="own", actor="t", now=utc_now()
        )
    r = await api.client.get("/v1/models?profile=Personal", headers=api.auth)
    assert r.status_code == 200
    owners = {m["owned_by"] for m in r.json()["data"]}
    assert "openai" not in owners and "ollama" in owners
    r = await api.client.get(f"/v1/models/{MINI}?profile=Personal", headers=api.auth)
    assert r.status_code == 403
    assert "profile 'Personal'" in r.json()["error"]["message"]
    r = await api.client.get(f"/v1/models/{MINI}", headers=api.auth)  # no profile: env key
    assert r.status_code == 200
    r = await api.client.get("/v1/models?profile=nope", headers=api.auth)
    assert r.status_code == 400
    assert "no profile named 'nope'" in r.json()["error"]["message"]


async def test_health(api: Api) -> None:
    r = await api.client.get("/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"


# --- wire format units ------------------------------------------------------------------


def _summary(**kw: Any) -> Summary:
    base: dict[str, Any] = {
        "request_id": "r1",
        "requested_model": "auto",
        "chain": (),
        "route_source": "org",
        "status": "success",
        "attempts": (),
    }
    return Summary(**{**base, **kw})


def test_attempts_header_survives_colons_commas_and_unicode() -> None:
    at = utc_now()
    attempts = [
        Attempt("ollama/llama3:8b", "ollama", "timeout", at, latency_ms=12),
        Attempt("corp/a,b", "corp", "error", at, latency_ms=3),
        Attempt("corp/modèle", "corp", "ok", at, latency_ms=7),
    ]
    header = fmt.attempts_header(attempts)
    header.encode("ascii")
    items = [i.rsplit(":", 2) for i in header.split(",")]
    assert items == [
        ["ollama/llama3:8b", "timeout", "12"],
        ["corp/a%2Cb", "error", "3"],
        ["corp/mod%C3%A8le", "ok", "7"],
    ]


def test_cost_text_is_exact_or_unpriced() -> None:
    assert fmt.cost_text(_summary(cost_micros=5)) == "0.000005"
    assert fmt.cost_text(_summary(cost_micros=1_230_000)) == "1.23"
    assert fmt.cost_text(_summary(cost_micros=0)) == "0"
    assert fmt.cost_text(_summary(cost_micros=None, priced=False)) == "unpriced"


def test_developer_role_and_text_parts_are_accepted() -> None:
    from core.request import Caller

    body = {
        "messages": [
            {"role": "developer", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        ],
        "max_completion_tokens": 5,
        "stream": True,
        "stream_options": {"include_usage": True},
        "metadata": {"k": "v"},
    }
    call = openai_request.parse_chat(body, Caller(1, "alice", "member"))
    assert call.include_usage and call.request.stream and call.request.max_tokens == 5
    assert call.request.messages[0] == {"role": "system", "content": "be brief"}
    assert call.request.model == "auto" and call.request.source == "api"
    assert call.request.metadata == {"k": "v"}
