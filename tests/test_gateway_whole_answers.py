"""Non-streamed requests under the stream timers: the upstream call streams, the caller
gets the whole answer, and a hung or stalled provider fails over invisibly."""

from __future__ import annotations

import time

from core.request import STATUS_FALLBACK, STATUS_SUCCESS
from tests.fakes import Hang, Reply
from tests.gateway_support import GPT, HAIKU

WORDS = [f"w{i} " for i in range(8)]
# A total timeout far beyond the test's patience: only the short timers can end an attempt.
TIMERS = {"first_token_timeout_s": 1.0, "idle_timeout_s": 1.0, "total_timeout_s": 120.0}


async def test_whole_answer_is_streamed_upstream_and_reports_time_to_first_token(rig):
    rig.openai.configure("gpt-4o", tokens=WORDS)
    rig.openai.script("gpt-4o", Reply(first_token_delay=0.2, token_delay=0.1))
    done = await rig.gateway.complete(rig.request(GPT))
    assert done.text == "".join(WORDS)
    s = done.summary
    assert (s.status, s.finish_reason, s.usage.completion_tokens) == (STATUS_SUCCESS, "stop", 8)
    [call] = rig.openai.requests("gpt-4o")
    assert call.stream and call.body["stream_options"] == {"include_usage": True}
    [row] = rig.rows()
    # The first token came ~0.2 s in, the last ~0.7 s after it: ttft is not the latency.
    assert row.ttft_ms is not None and row.ttft_ms >= 150
    assert row.latency_ms - row.ttft_ms >= 500
    [attempt] = rig.attempts(row.id)
    assert attempt["ttft_ms"] is not None and attempt["ttft_ms"] <= row.ttft_ms
    assert row.estimated is False


async def test_hung_provider_fails_over_within_the_first_token_timeout(rig):
    rig.set_route([GPT, HAIKU], **TIMERS)
    rig.openai.script("gpt-4o", Hang())
    rig.anthropic.configure("claude-3-haiku-20240307", tokens=WORDS)
    started = time.monotonic()
    done = await rig.gateway.complete(rig.request("auto"))
    assert done.text == "".join(WORDS)
    s = done.summary
    assert (s.model, s.status) == (HAIKU, STATUS_FALLBACK)
    first = s.attempts[0]
    assert (first.outcome, first.error_class) == ("timeout", "FirstTokenTimeout")
    assert rig.openai.count("gpt-4o") == 1  # a timed-out attempt is never retried
    assert time.monotonic() - started < 60  # the first-token timer, not the 120 s total


async def test_headers_then_silence_fails_over_within_the_first_token_timeout(rig):
    rig.set_route([GPT, HAIKU], **TIMERS)
    rig.openai.script("gpt-4o", Hang(after_headers=True))
    done = await rig.gateway.complete(rig.request("auto"))
    assert done.summary.model == HAIKU
    assert done.summary.attempts[0].error_class == "FirstTokenTimeout"
    [call] = rig.openai.requests("gpt-4o")
    assert call.outcome == "hang:headers"


async def test_stalled_answer_fails_over_whole_and_bills_the_partial_as_estimated(rig):
    rig.set_route([GPT, HAIKU], **TIMERS)
    rig.openai.configure("gpt-4o", tokens=WORDS)
    rig.anthropic.configure("claude-3-haiku-20240307", tokens=["all ", "new"])
    rig.openai.script("gpt-4o", Reply(stall_after=3, token_delay=0.02))
    done = await rig.gateway.complete(rig.request("auto"))
    # Nothing had reached the caller: the next model answers from the start, no splice.
    assert done.text == "all new"
    assert [a.outcome for a in done.summary.attempts] == ["timeout", "ok"]
    assert done.summary.attempts[0].error_class == "StreamStalled"
    assert rig.anthropic.requests()[0].prefill is None
    [row] = rig.rows()
    stalled, answered = rig.attempts(row.id)
    # The provider bills the three tokens it sent; they are counted here, and marked so.
    assert stalled["completion_tokens"] >= 1 and stalled["estimated"] is True
    assert answered["estimated"] is False
    assert row.estimated is True


async def test_a_cut_whole_answer_fails_over_without_a_partial(rig):
    rig.set_route([GPT, HAIKU], **TIMERS)
    rig.openai.configure("gpt-4o", tokens=WORDS)
    rig.openai.script("gpt-4o", Reply(cut_after=4))
    rig.anthropic.configure("claude-3-haiku-20240307", tokens=WORDS)
    done = await rig.gateway.complete(rig.request("auto"))
    assert done.text == "".join(WORDS)
    assert (done.summary.status, done.summary.model) == (STATUS_FALLBACK, HAIKU)
    assert done.summary.attempts[0].outcome == "cut"


async def test_usage_the_provider_never_sent_is_marked_estimated(rig):
    rig.openai.script("gpt-4o", Reply(usage=False))
    done = await rig.gateway.complete(rig.request(GPT))
    assert done.summary.usage.estimated
    assert done.summary.usage.prompt_tokens > 0 and done.summary.cost_micros
    [row] = rig.rows()
    assert row.estimated is True
    [attempt] = rig.attempts(row.id)
    assert attempt["estimated"] is True


async def test_streamed_usage_the_provider_never_sent_is_marked_estimated_too(rig):
    rig.openai.script("gpt-4o", Reply(usage=False))
    async for _ in rig.gateway.stream(rig.request(GPT, stream=True)):
        pass
    [row] = rig.rows()
    assert row.estimated is True and row.prompt_tokens > 0
