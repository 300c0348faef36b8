"""Which failures count against a provider's circuit breaker, against a real gateway, real
litellm and the fake providers on loopback.

Only the provider's own failures count (connection errors, timeouts, 5xx, 429, and a key
it refuses). Never: the caller's Stop, a request the provider rejects for its content,
a content refusal, or a request litellm cannot even build (which is a 400 to the caller,
with no retry and no failover).
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx
import pytest

from core.chat.turns import ChatTurn, TurnPlan
from core.errors import AllModelsFailed, InvalidInput
from core.gateway.sync_bridge import SyncGateway
from core.request import Caller, TextDelta
from tests.conftest import add_user
from tests.fakes import (
    Behaviour,
    ContentFilter,
    ContextLength,
    Garbage,
    Hang,
    Reply,
    Reset,
    Status,
    refused_url,
)
from tests.gateway_support import GPT, HAIKU, MINI, OPENAI_KEY, Rig, collect
from tests.test_api import (  # noqa: F401  (fixtures)
    ANTHROPIC_KEY,
    Api,
    api,
    catalog,
    template_db,
)

FAST = {"first_token_timeout_s": 1.0, "idle_timeout_s": 1.0, "total_timeout_s": 10.0}
GPT5 = "openai/gpt-5"
NO_URL = [
    {"role": "user", "content": [{"type": "text", "text": "what is this?"}, {"type": "image_url"}]}
]


def _failures(rig: Rig, model: str) -> tuple[int, int]:
    """(calls, failures) the breaker of ``model`` has judged; (0, 0) if it has none."""
    found = [s for s in rig.gateway.breaker_states() if s.deployment.startswith(model + "@")]
    return (found[0].calls, found[0].failures) if found else (0, 0)


# --- the table --------------------------------------------------------------------------

COUNTS = [
    ("500", Status(500), True),
    ("502", Status(502), True),
    ("503", Status(503), True),
    ("429", Status(429, retry_after=0), True),
    ("408", Status(408), True),
    ("reset", Reset(), True),
    ("garbage", Garbage(), True),
    ("no first token", Hang(), True),
    ("cut mid-stream", Reply(cut_after=0), True),
    ("401", Status(401), True),  # the key is part of the deployment: it fails for everyone
    ("403", Status(403), True),
    ("400", Status(400), False),
    ("404", Status(404), False),
    ("413", Status(413), False),
    ("422", Status(422), False),
    ("context too long", ContextLength(), False),
    ("content refusal", ContentFilter(), False),
]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize(
    ("behaviour", "counts"), [c[1:] for c in COUNTS], ids=[c[0] for c in COUNTS]
)
async def test_which_provider_answers_count_against_its_breaker(
    rig: Rig, behaviour: Behaviour, counts: bool, stream: bool
) -> None:
    rig.set_route([GPT], **FAST)  # "auto" below: the route's short timeouts apply
    rig.openai.configure("gpt-4o", default=behaviour)
    _, summary = await collect(rig.gateway, rig.request("auto", stream=stream))
    assert summary.model is None  # it failed
    assert rig.openai.count("gpt-4o") >= 1
    # Every upstream call (an attempt; aiohttp may resend a reset one on its own) either
    # counted or did not; retries count one each.
    calls = len(summary.attempts)
    assert _failures(rig, GPT) == ((calls, calls) if counts else (0, 0))


async def test_a_refused_connection_counts(rig: Rig) -> None:
    with refused_url() as dead:
        rig.point_openai_at(dead)
        _, summary = await collect(rig.gateway, rig.request(GPT, fallbacks=()))
    assert summary.model is None
    assert _failures(rig, GPT) == (3, 3)  # one call and two retries


LOCAL = [
    ("image_url without a url", GPT, NO_URL, {}, "'image_url'"),
    ("image_url without a url", HAIKU, NO_URL, {}, "image"),
    ("a part of unknown type", GPT, [{"role": "user", "content": [{"type": "bogus"}]}], {}, ""),
    # A field the model does not take at all is refused at admission (tests/test_api_params);
    # a value it does not take is found by litellm while building the request.
    ("a value the model does not take", GPT5, None, {"temperature": 0.2}, "temperature"),
]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize(
    ("model", "messages", "params", "named"),
    [c[1:] for c in LOCAL],
    ids=[f"{c[0]} ({c[1].split('/')[0]})" for c in LOCAL],
)
async def test_a_request_litellm_cannot_build_is_invalid_not_retried_failed_over_or_counted(
    rig: Rig,
    model: str,
    messages: list[dict[str, Any]] | None,
    params: dict[str, Any],
    named: str,
    stream: bool,
) -> None:
    kw: dict[str, Any] = {"params": params}
    if messages is not None:
        kw["messages"] = tuple(messages)
    other = HAIKU if model != HAIKU else GPT
    _, summary = await collect(
        rig.gateway, rig.request(model, stream=stream, fallbacks=(other,), **kw)
    )
    assert isinstance(summary.error, InvalidInput), summary.error
    message = summary.error.message
    assert message.startswith(f"{model} cannot take this request: ")
    assert named in message
    assert "drop_params" not in message and "Received Messages" not in message
    # Nothing left for any provider: not sent, not retried, not failed over, not counted.
    assert rig.openai.count() == rig.anthropic.count() == 0
    assert [a.outcome for a in summary.attempts] == ["error"]
    assert rig.sleeps.delays == []
    assert rig.gateway.breaker_states() == [] or _failures(rig, model) == (0, 0)


# --- one user's bad requests, another user's service -----------------------------------


async def test_a_malformed_request_from_one_user_never_opens_the_breaker_for_another(
    rig: Rig,
) -> None:
    """The measured failure: four `{"type":"image_url"}` parts from one member opened the
    organisation key's breaker for everyone."""
    erin = add_user(rig.sessions, "erin", "member")
    for i in range(30):  # three times min_calls
        _, bad = await collect(
            rig.gateway,
            rig.request(GPT, stream=i % 2 == 0, fallbacks=(HAIKU,), messages=tuple(NO_URL)),
        )
        assert isinstance(bad.error, InvalidInput)
    assert rig.openai.count() == rig.anthropic.count() == 0
    assert all(s.state == "closed" for s in rig.gateway.breaker_states())
    request = rig.request(GPT, fallbacks=(HAIKU,))
    theirs = type(request)(
        **{**request.__dict__, "caller": Caller(erin.id, "erin", "member", None)}
    )
    text, summary = await collect(rig.gateway, theirs)
    assert (summary.model, summary.error, len(summary.attempts)) == (GPT, None, 1) and text


async def test_the_api_answers_a_request_litellm_cannot_build_with_400_naming_it(
    api: Api,  # noqa: F811
) -> None:
    api.environ["ANTHROPIC_API_KEY"] = ANTHROPIC_KEY
    for body in (
        {"model": "openai/gpt-4o-mini", "messages": NO_URL},
        {
            "model": "anthropic/claude-haiku-4-5",
            "messages": [{"role": "user", "content": "hi"}],
            "logit_bias": {"1": 5},
        },
    ):
        for stream in (False, True):
            r = await api.chat({**body, "stream": stream})
            assert r.status_code == 400, r.text
            err = r.json()["error"]
            assert err["type"] == "invalid_request_error"
            # Caught before the gateway now: the part when the body is parsed, the field
            # at admission against the model's supported fields. Never litellm's advice.
            assert ("image_url` is missing" in err["message"]) or (
                "does not take `logit_bias`" in err["message"]
            )
            assert "litellm" not in err["message"] and "To drop these" not in err["message"]
    assert all(s.state == "closed" and not s.failures for s in api.runtime.gateway.breaker_states())


# --- Stop -------------------------------------------------------------------------------


@pytest.fixture
def sync(rig: Rig) -> Any:
    gateway = SyncGateway(rig.gateway, thread_name="breaker-stop-test")
    yield gateway
    gateway.stop()


def _plan(rig: Rig) -> TurnPlan:
    return TurnPlan(
        caller=rig.caller,
        prompt="Tell me a long story",
        history=(),
        model=MINI,
        picked_model=MINI,
        task="chat",
        settings={},
    )


async def test_stop_in_chat_never_counts_against_the_provider(rig: Rig, sync: SyncGateway) -> None:
    """Chat's Stop button abandons the page's generator; the bridge cancels the request's
    task. Three Stops used to pause the organisation's key for everyone."""
    slow = Reply(tokens=[f"w{i} " for i in range(60)], token_delay=0.05)
    rig.openai.configure("gpt-4o-mini", default=slow)

    def stop_one() -> None:
        turn = ChatTurn(rig.sessions, sync, _plan(rig))
        assert turn.start() is None
        texts = turn.texts()
        next(texts), next(texts)
        texts.close()  # what a Stop click (a rerun) does to st.write_stream's generator
        turn.close()

    for _ in range(12):  # more than min_calls
        await asyncio.to_thread(stop_one)
    assert rig.openai.count("gpt-4o-mini") == 12
    assert _failures(rig, MINI) == (0, 0)
    rows = rig.rows()
    assert [r.status for r in rows] == ["stopped"] * 12
    assert {a["outcome"] for r in rows for a in rig.attempts(r.id)} == {"stopped"}
    rig.openai.configure("gpt-4o-mini", default=Reply())
    text, summary = await collect(rig.gateway, rig.request(MINI, fallbacks=()))
    assert summary.model == MINI and text


async def test_a_caller_leaving_before_the_first_token_never_counts(rig: Rig) -> None:
    rig.openai.configure("gpt-4o", default=Reply(headers_delay=30))
    for n in range(1, 13):
        task = asyncio.create_task(collect(rig.gateway, rig.request(GPT, fallbacks=())))
        while rig.openai.count("gpt-4o") < n:  # wait until the call is with the provider
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert _failures(rig, GPT) == (0, 0)
    # An API client that disconnects closes the stream instead of cancelling: same verdict.
    rig.openai.configure("gpt-4o", default=Reply(tokens=["a "] * 40, token_delay=0.05))
    for _ in range(12):
        stream = rig.gateway.stream(rig.request(GPT, stream=True, fallbacks=()))
        async for event in stream:
            if isinstance(event, TextDelta):
                break
        await stream.aclose()
    assert _failures(rig, GPT) == (0, 0)


# --- partial failure vs full outage ------------------------------------------------------


def _flaky(seed: int, n: int) -> list[Behaviour]:
    """A provider answering one call in four, the rest 503, in a repeatable order."""
    rng = random.Random(seed)
    return [Reply() if rng.random() < 0.25 else Status(503) for _ in range(n)]


async def _direct(rig: Rig, requests: int, retries: int) -> int:
    """Successes of a client calling the fake itself, retrying 5xx the same number of times."""
    ok = 0
    url = f"{rig.openai.base_url}/chat/completions"
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Say hello"}]}
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {OPENAI_KEY}"}) as client:
        for _ in range(requests):
            for _ in range(retries + 1):
                if (await client.post(url, json=body)).status_code == 200:
                    ok += 1
                    break
    return ok


async def test_with_one_call_in_four_succeeding_the_gateway_does_as_well_as_calling_direct(
    rig: Rig,
) -> None:
    """The measured failure: at 25% upstream success, 71% of requests got an instant
    "circuit open" without reaching the provider. Both sides below face the same sequence
    of upstream answers, so any request the breaker costs shows up as a difference."""
    requests, seed = 150, 1919
    rig.openai.script("gpt-4o", *_flaky(seed, 3 * requests))
    ok = 0
    for _ in range(requests):
        _, summary = await collect(rig.gateway, rig.request(GPT, fallbacks=()))
        ok += summary.error is None
        rig.clock.advance(1)  # a request a second: cooldowns can pass
        assert all(s.state == "closed" for s in rig.gateway.breaker_states())
    gateway_calls = rig.openai.count("gpt-4o")

    rig.openai.reset()
    rig.openai.script("gpt-4o", *_flaky(seed, 3 * requests))
    direct_ok = await _direct(rig, requests, retries=2)
    assert rig.openai.count("gpt-4o") == gateway_calls  # the same calls, the same answers
    assert ok >= direct_ok
    assert 0.45 < ok / requests < 0.70  # ~1 - 0.75**3 = 58%: retries were all made


async def test_a_provider_fully_down_is_skipped_after_a_bounded_number_of_calls(rig: Rig) -> None:
    rig.openai.configure("gpt-4o", default=Status(503))
    results = [await collect(rig.gateway, rig.request(GPT, fallbacks=())) for _ in range(40)]
    bound = rig.gateway.settings.breaker.min_calls
    assert rig.openai.count("gpt-4o") == bound  # then no more calls while it is open
    skipped = [s for _, s in results if s.attempts[0].outcome == "skipped-breaker"]
    assert len(skipped) == 40 - -(-bound // 3)  # requests after the one that opened it
    assert all(isinstance(s.error, AllModelsFailed) for s in skipped)
