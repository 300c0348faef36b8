"""Streaming through the gateway: invisible failover, mid-stream continuation, timeouts."""

from __future__ import annotations

import asyncio
import time

import pytest

from core.errors import AllModelsFailed, UpstreamTimeout
from core.request import STATUS_FALLBACK, STATUS_PARTIAL, STATUS_SUCCESS, Done, TextDelta
from tests.fakes import Hang, Reply, Status
from tests.gateway_support import GPT, HAIKU, MINI, collect

WORDS = [f"w{i} " for i in range(8)]
FAST = {"first_token_timeout_s": 0.5, "idle_timeout_s": 0.5, "total_timeout_s": 10.0}


async def test_stream_success_has_usage_and_finish(rig):
    rig.openai.configure("gpt-4o", tokens=WORDS)
    text, s = await collect(rig.gateway, rig.request(GPT, stream=True))
    assert text == "".join(WORDS)
    assert (s.status, s.finish_reason, s.usage.completion_tokens) == (STATUS_SUCCESS, "stop", 8)
    assert s.ttft_ms is not None and s.cost_micros and s.cost_micros > 0


async def test_failover_before_first_token_is_invisible(rig):
    rig.set_route([GPT, HAIKU], **FAST)
    rig.openai.script("gpt-4o", Reply(first_token_delay=3))
    rig.anthropic.configure("claude-3-haiku-20240307", tokens=WORDS)
    started = time.monotonic()
    text, s = await collect(rig.gateway, rig.request("auto", stream=True))
    assert text == "".join(WORDS)
    assert (s.model, s.status) == (HAIKU, STATUS_FALLBACK)
    assert s.attempts[0].outcome == "timeout" and "first token" in s.attempts[0].error_message
    assert rig.openai.count("gpt-4o") == 1  # a timed-out attempt is never retried
    assert time.monotonic() - started < 3


async def test_stall_mid_stream_continues_with_prefill_without_repeating(rig):
    rig.set_route([GPT, HAIKU], **FAST)
    rig.openai.configure("gpt-4o", tokens=WORDS)
    rig.anthropic.configure("claude-3-haiku-20240307", tokens=WORDS)
    rig.openai.script("gpt-4o", Reply(stall_after=3, token_delay=0.02))
    text, s = await collect(rig.gateway, rig.request("auto", stream=True))
    assert text == "".join(WORDS)  # one coherent answer, nothing repeated
    assert (s.model, s.status) == (HAIKU, STATUS_FALLBACK) and s.finish_reason == "stop"
    [haiku_call] = rig.anthropic.requests()
    assert haiku_call.prefill  # the partial answer went over as an assistant prefix
    assert [a.outcome for a in s.attempts] == ["timeout", "ok"]


async def test_cut_continues_by_reasking_when_prefill_is_unsupported(rig):
    rig.set_route([GPT, MINI], **FAST)
    for model in ("gpt-4o", "gpt-4o-mini"):
        rig.openai.configure(model, tokens=WORDS)
    rig.openai.script("gpt-4o", Reply(cut_after=3, token_delay=0.02))
    text, s = await collect(rig.gateway, rig.request("auto", stream=True))
    assert text == "".join(WORDS)
    [mini_call] = rig.openai.requests("gpt-4o-mini")
    assert not mini_call.prefill
    assert [a.outcome for a in s.attempts] == ["cut", "ok"] and s.model == MINI


async def test_each_answering_model_is_announced_once_on_its_first_delta(rig):
    # A failover before text, then a cut mid-stream continued by the next model.
    rig.set_route([HAIKU, GPT, MINI], **FAST)
    rig.anthropic.configure("claude-3-haiku-20240307", default=Status(400))
    for model in ("gpt-4o", "gpt-4o-mini"):
        rig.openai.configure(model, tokens=WORDS)
    rig.openai.script("gpt-4o", Reply(cut_after=3, token_delay=0.02))
    deltas = [
        e
        async for e in rig.gateway.stream(rig.request("auto", stream=True))
        if isinstance(e, TextDelta)
    ]
    announced = [(i, d.serving) for i, d in enumerate(deltas) if d.serving is not None]
    assert [(i, s.model, s.fallback) for i, s in announced] == [(0, GPT, True), (3, MINI, True)]
    first, second = announced[0][1], announced[1][1]
    assert [a.outcome for a in first.attempts] == ["error"]  # haiku's, before any text
    assert [a.outcome for a in second.attempts] == ["error", "cut"]
    assert first.provider == "openai" and first.latency_ms >= 0
    assert "".join(d.text for d in deltas) == "".join(WORDS)


async def test_diverging_continuation_ends_with_an_error_naming_the_cut(rig):
    rig.set_route([GPT, MINI], **FAST)
    rig.openai.configure("gpt-4o", tokens=WORDS)
    rig.openai.configure("gpt-4o-mini", tokens=["something ", "else ", "entirely "])
    rig.openai.script("gpt-4o", Reply(cut_after=3, token_delay=0.02))
    text, s = await collect(rig.gateway, rig.request("auto", stream=True))
    assert text == "".join(WORDS[:3])  # the partial answer is kept, nothing invented
    assert s.status == STATUS_PARTIAL and s.finish_reason is None
    assert isinstance(s.error, AllModelsFailed)
    assert "cut off" in s.error.message and "ended before the model finished" in s.error.message


async def test_refused_prefix_is_asked_again_without_it(rig):
    rig.set_route([GPT, HAIKU], **FAST)
    rig.openai.configure("gpt-4o", tokens=WORDS)
    rig.anthropic.configure("claude-3-haiku-20240307", tokens=WORDS, prefill=False)
    rig.openai.script("gpt-4o", Reply(cut_after=2, token_delay=0.02))
    text, s = await collect(rig.gateway, rig.request("auto", stream=True))
    assert text == "".join(WORDS) and s.model == HAIKU
    calls = rig.anthropic.requests()
    assert [bool(c.prefill) for c in calls] == [True, False]


async def test_cut_with_nowhere_to_continue_is_never_complete(rig):
    rig.openai.configure("gpt-4o", tokens=WORDS)
    rig.openai.script("gpt-4o", Reply(cut_after=4, token_delay=0.02))
    text, s = await collect(rig.gateway, rig.request(GPT, stream=True, fallbacks=()))
    assert text == "".join(WORDS[:4])
    assert s.status == STATUS_PARTIAL and s.finish_reason is None and s.error is not None


async def test_missing_done_is_finalised_promptly_with_usage(rig):
    rig.openai.configure("gpt-4o", tokens=WORDS)
    rig.openai.script("gpt-4o", Reply(omit_done=True))
    started = time.monotonic()
    text, s = await collect(rig.gateway, rig.request(GPT, stream=True, fallbacks=()))
    assert text == "".join(WORDS) and s.status == STATUS_SUCCESS
    assert s.usage.completion_tokens == 8
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    ("model", "fake_name", "openai_path"),
    [(GPT, "openai", "litellm-http"), (GPT, "openai", "sdk"), (HAIKU, "anthropic", "litellm-http")],
)
async def test_one_malformed_event_is_skipped_on_the_same_model(
    rig, monkeypatch, model, fake_name, openai_path
):
    from core.upstream.litellm_calls import OWN_HTTP_ENV

    # Both of litellm's OpenAI paths: its own handler (our default) and the SDK (opt-out).
    monkeypatch.setenv(OWN_HTTP_ENV, "true" if openai_path == "litellm-http" else "false")
    fake = getattr(rig, fake_name)
    name = model.split("/", 1)[1]
    fake.configure(name, tokens=WORDS)
    fake.script(name, Reply(malformed_after=3, token_delay=0.02))
    text, s = await collect(rig.gateway, rig.request(model, stream=True, fallbacks=()))
    assert text == "".join(WORDS)  # nothing lost, nothing repeated
    assert (s.status, s.model, s.finish_reason) == (STATUS_SUCCESS, model, "stop")
    assert [a.outcome for a in s.attempts] == ["ok"] and fake.count(name) == 1


async def test_hung_upstream_never_hangs_the_request(rig):
    rig.set_route([GPT, HAIKU], **FAST)
    rig.openai.script("gpt-4o", Hang())
    started = time.monotonic()
    text, s = await collect(rig.gateway, rig.request("auto", stream=True))
    assert s.model == HAIKU and text
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("stream", [False, True])
async def test_connect_timeout_fails_over_without_waiting_for_other_timers(rig, stream):
    import litellm  # noqa: F401  (a first import takes seconds: keep it out of the timing)

    from tests.fakes import unanswered_url

    # First-token and total timers are far away: only the connect timeout can end it.
    rig.set_route(
        [GPT, HAIKU], connect_timeout_s=0.5, first_token_timeout_s=30.0, total_timeout_s=60.0
    )
    with unanswered_url() as silent:
        rig.point_openai_at(silent)
        started = time.monotonic()
        if stream:
            text, s = await collect(rig.gateway, rig.request("auto", stream=True))
        else:
            done = await rig.gateway.complete(rig.request("auto"))
            text, s = done.text, done.summary
    elapsed = time.monotonic() - started
    assert s.model == HAIKU and text
    first = s.attempts[0]
    assert (first.model, first.outcome, first.error_class) == (GPT, "timeout", "Timeout")
    assert len(s.attempts) == 2  # a timed-out attempt is not retried on the same model
    assert elapsed < 2.5, elapsed  # the 0.5 s connect timeout, never the 30 s timers
    assert rig.openai.count() == 0  # the connection never reached any server


async def test_non_streaming_total_timeout(rig):
    rig.set_route([GPT, HAIKU], total_timeout_s=1.0)
    rig.openai.script("gpt-4o", Hang())
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout, match="no response within 1s"):
        await rig.gateway.complete(rig.request("auto"))
    assert time.monotonic() - started < 4
    assert rig.anthropic.count() == 0  # the request's own deadline had passed


async def test_stopping_the_stream_records_partial_usage(rig):
    rig.openai.configure("gpt-4o", tokens=WORDS)
    rig.openai.script("gpt-4o", Reply(token_delay=0.05))
    got = []
    stream = rig.gateway.stream(rig.request(GPT, stream=True))
    async for event in stream:
        if isinstance(event, TextDelta):
            got.append(event.text)
            if len(got) == 2:
                break
    await stream.aclose()
    [row] = rig.rows()
    assert row.status == "stopped" and row.completion_tokens >= 1
    assert not isinstance(event, Done)


async def _open_gpt_breaker(rig) -> int:
    """Fail gpt-4o until its breaker opens; returns the calls it took."""
    rig.openai.configure("gpt-4o", default=Status(500))
    for _ in range(10):
        await collect(rig.gateway, rig.request(GPT, fallbacks=(HAIKU,)))
        if [b for b in rig.gateway.breaker_states() if b.state == "open"]:
            return rig.openai.count("gpt-4o")
    raise AssertionError("the breaker never opened")


async def test_breaker_opens_then_probes_after_cooldown(rig):
    # 1 call + 2 retries a request: the 10th failed call (min_calls, all failed) opens it.
    assert await _open_gpt_breaker(rig) == 10
    calls = rig.openai.count("gpt-4o")
    _, s = await collect(rig.gateway, rig.request(GPT, fallbacks=(HAIKU,)))
    assert rig.openai.count("gpt-4o") == calls  # skipped at once while open
    assert s.attempts[0].outcome == "skipped-breaker" and s.model == HAIKU
    [state] = [b for b in rig.gateway.breaker_states() if b.deployment.startswith(GPT)]
    assert (state.state, state.calls, state.failures) == ("open", 10, 10)
    rig.clock.advance(16)  # past the 15 s cooldown: probes go through
    rig.openai.configure("gpt-4o", default=Reply())
    _, s = await collect(rig.gateway, rig.request(GPT, fallbacks=(HAIKU,)))
    assert s.model == GPT and s.status == STATUS_SUCCESS
    states = [b for b in rig.gateway.breaker_states() if b.deployment.startswith(GPT)]
    assert [(b.state, b.calls, b.failures) for b in states] == [("closed", 1, 0)]


async def test_ledger_matches_upstream_under_concurrency(rig):
    rig.openai.configure("gpt-4o", default=Reply(token_delay=0.001))
    n = 48
    await asyncio.gather(
        *(collect(rig.gateway, rig.request(GPT, stream=i % 2 == 0)) for i in range(n))
    )
    rows = rig.rows()
    assert len(rows) == n == rig.openai.count("gpt-4o")
    assert len(rig.attempt_rows()) == n


GARBAGE_RUN = b"data: {not json\n\n" * 6  # a run of unparsable events, then the stream ends


def _break_stream(rig, how: str, fake_name: str, model: str) -> None:
    """Make `model` send 3 words, then break for good: an in-stream error or a garbage run."""
    fake = getattr(rig, fake_name)
    if how == "garbage":
        # The fakes' in-stream error slot ends the stream; fill it with garbage instead.
        setattr(fake, "stream_error", lambda turn: GARBAGE_RUN)  # noqa: B010
    fake.script(model, Reply(error_after=3, token_delay=0.02))


@pytest.mark.parametrize("how", ["error", "garbage"])
@pytest.mark.parametrize(
    ("broken", "fake_name", "rescuer"),
    [
        (GPT, "openai", HAIKU),  # continued with the partial answer as a prefill
        (GPT, "openai", MINI),  # continued by asking again, passing on only what is new
        (HAIKU, "anthropic", GPT),
    ],
)
async def test_stream_broken_after_text_continues_on_the_next_model(
    rig, how, broken, fake_name, rescuer
):
    rig.set_route([broken, rescuer], **FAST)
    for fake in (rig.openai, rig.anthropic):
        for name in ("gpt-4o", "gpt-4o-mini", "claude-3-haiku-20240307"):
            fake.configure(name, tokens=WORDS)
    broken_name = broken.split("/", 1)[1]
    _break_stream(rig, how, fake_name, broken_name)
    text, s = await collect(rig.gateway, rig.request("auto", stream=True))
    assert text == "".join(WORDS)  # one coherent answer, nothing repeated or lost
    assert (s.model, s.status, s.fallback_used) == (rescuer, STATUS_FALLBACK, True)
    assert s.finish_reason == "stop" and s.error is None
    first, second = s.attempts
    assert first.model == broken and first.outcome in ("cut", "error")
    assert (second.model, second.outcome) == (rescuer, "ok")
    assert getattr(rig, fake_name).count(broken_name) == 1  # text was out: never retried
    rescuer_fake = rig.anthropic if rescuer == HAIKU else rig.openai
    [rescue_call] = rescuer_fake.requests(rescuer.split("/", 1)[1])
    if rescuer == HAIKU:  # the text already sent went over as the assistant's prefix
        assert rescue_call.prefill == "".join(WORDS[:3]).rstrip()
    else:
        assert rescue_call.prefill is None
    [row] = rig.rows()
    assert (row.status, row.served_model, row.fallback_used, row.finish_reason) == (
        STATUS_FALLBACK,
        rescuer,
        True,
        "stop",
    )
    assert [a["outcome"] for a in rig.attempts(row.id)] == [first.outcome, "ok"]


@pytest.mark.parametrize("how", ["error", "garbage"])
async def test_stream_broken_after_text_with_nowhere_to_go_is_partial_not_stop(rig, how):
    rig.openai.configure("gpt-4o", tokens=WORDS)
    _break_stream(rig, how, "openai", "gpt-4o")
    text, s = await collect(rig.gateway, rig.request(GPT, stream=True, fallbacks=()))
    assert text == "".join(WORDS[:3])
    assert s.status == STATUS_PARTIAL and s.finish_reason is None
    assert isinstance(s.error, AllModelsFailed) and "cut off" in s.error.message
    assert rig.openai.count("gpt-4o") == 1
    [row] = rig.rows()
    assert (row.status, row.finish_reason) == (STATUS_PARTIAL, None)


@pytest.mark.parametrize("probe_succeeds", [True, False])
async def test_after_cooldown_a_burst_sends_a_few_probes(rig, probe_succeeds):
    opened = await _open_gpt_breaker(rig)
    [state] = [b for b in rig.gateway.breaker_states() if b.deployment.startswith(GPT)]
    assert state.state == "open"

    rig.clock.advance(16)  # past the 15 s cooldown
    # The probes are slow, so the whole burst arrives while they are still in flight.
    probe = Reply(headers_delay=0.5) if probe_succeeds else Status(500, delay=0.5)
    rig.openai.configure("gpt-4o", default=probe)
    burst = await asyncio.gather(
        *(
            collect(rig.gateway, rig.request(GPT, stream=i % 2 == 0, fallbacks=(HAIKU,)))
            for i in range(12)
        )
    )
    probes = rig.gateway.settings.breaker.probes
    assert rig.openai.count("gpt-4o") == opened + probes  # a few probes, no retries
    probe_runs = [s for _, s in burst if s.attempts[0].outcome != "skipped-breaker"]
    assert len(probe_runs) == probes
    for text, s in burst:
        if s not in probe_runs:  # the rest skip the deployment at once, not queue behind it
            assert s.model == HAIKU and text and len(s.attempts) == 2

    after = rig.openai.count("gpt-4o")
    rig.openai.configure("gpt-4o", default=Reply())
    _, s = await collect(rig.gateway, rig.request(GPT, fallbacks=(HAIKU,)))
    if probe_succeeds:
        assert all((p.model, p.status) == (GPT, STATUS_SUCCESS) for p in probe_runs)
        # Closed again: traffic goes back to the primary at once.
        assert (s.model, s.status) == (GPT, STATUS_SUCCESS)
        assert rig.openai.count("gpt-4o") == after + 1
        assert not [
            b
            for b in rig.gateway.breaker_states()
            if b.deployment.startswith(GPT) and b.state != "closed"
        ]
    else:
        assert all(p.model == HAIKU and p.attempts[0].outcome == "error" for p in probe_runs)
        # The failed probes re-opened it for another cooldown: GPT is skipped again.
        assert s.model == HAIKU and s.attempts[0].outcome == "skipped-breaker"
        assert rig.openai.count("gpt-4o") == after


@pytest.mark.parametrize("slow_requests", [1, 12])
async def test_a_slow_model_never_blocks_requests_to_other_models(rig, slow_requests):
    import litellm  # noqa: F401  (a first import takes seconds: keep it out of the timing)

    rig.openai.configure("gpt-4o", default=Hang())  # answers nothing until the caller leaves
    slow = [
        asyncio.create_task(collect(rig.gateway, rig.request(GPT, stream=i % 2 == 0, fallbacks=())))
        for i in range(slow_requests)
    ]
    deadline = time.monotonic() + 5
    while rig.openai.count("gpt-4o") < slow_requests:  # every slow call is upstream, waiting
        assert time.monotonic() < deadline, rig.openai.count("gpt-4o")
        await asyncio.sleep(0.01)

    async def served(model: str, stream: bool) -> tuple[str, str | None]:
        text, s = await collect(rig.gateway, rig.request(model, stream=stream, fallbacks=()))
        return text, s.model

    # Another model on the same provider (same HTTP clients) and one on another provider.
    # A request queued behind the hanging model would never finish, so the proof is that
    # every one finishes while the slow calls still wait; the timeout only stops a hang.
    # No tighter time bound: a busy CI host stalls everything alike by a second or more.
    wanted = [(model, stream) for model in (MINI, HAIKU) * 4 for stream in (False, True)]
    try:
        async with asyncio.timeout(20):
            fast = await asyncio.gather(*(served(model, stream) for model, stream in wanted))
        assert [m for _, m in fast] == [model for model, _ in wanted]
        assert all(text for text, _ in fast)
        assert not any(task.done() for task in slow)  # still waiting on the slow model
    finally:
        for task in slow:  # the callers give up on the slow model
            task.cancel()
        await asyncio.gather(*slow, return_exceptions=True)
    statuses = sorted(r.status for r in rig.rows())
    assert statuses == sorted(["success"] * len(wanted) + ["stopped"] * slow_requests)


async def test_a_cancelled_stream_is_a_caller_stop_not_a_provider_failure(rig):
    """Stop in Chat cancels the request's task; three of them must not open the breaker."""
    rig.set_route([GPT, HAIKU])
    rig.openai.configure("gpt-4o", tokens=WORDS, default=Reply(token_delay=0.2))
    summaries = []

    async def read_until_cancelled(two_words: asyncio.Event) -> None:
        got = 0
        async for event in rig.gateway.stream(rig.request("auto", stream=True), summaries.append):
            got += isinstance(event, TextDelta)
            if got == 2:
                two_words.set()

    for _ in range(3):
        two_words = asyncio.Event()
        task = asyncio.create_task(read_until_cancelled(two_words))
        await asyncio.wait_for(two_words.wait(), 30)
        task.cancel()  # what the sync bridge does when the page leaves the stream
        with pytest.raises(asyncio.CancelledError):
            await task
    assert [s.status for s in summaries] == ["stopped"] * 3
    # The model whose text the caller was reading served it, and its cost is known.
    assert all(s.model == GPT and s.cost_micros for s in summaries)  # reported to the caller
    assert all(b.state == "closed" for b in rig.gateway.breaker_states())
    rows = rig.rows()
    assert [r.status for r in rows] == ["stopped"] * 3
    assert all(r.served_model == GPT and r.priced and r.cost_micros for r in rows)
    assert {a["outcome"] for r in rows for a in rig.attempts(r.id)} == {"stopped"}
    # The next request goes to the route's first model, not around an open breaker.
    rig.openai.configure("gpt-4o", default=Reply(token_delay=0))
    _, s = await collect(rig.gateway, rig.request("auto", stream=True))
    assert (s.model, s.status) == (GPT, STATUS_SUCCESS) and rig.anthropic.count() == 0
