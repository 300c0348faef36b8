"""The sync bridge pages use: streams from a background loop, parallel streams, cancellation."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from core.errors import NotFound
from core.gateway.sync_bridge import SyncGateway
from core.request import STATUS_STOPPED, STATUS_SUCCESS, Done, TextDelta
from tests.fakes import Reply, Status
from tests.gateway_support import GPT, HAIKU, MINI, Rig

WORDS = [f"w{i} " for i in range(6)]


@pytest.fixture
def bridge(rig: Rig) -> Iterator[SyncGateway]:
    sync = SyncGateway(rig.gateway)
    yield sync
    sync.close()


def test_stream_yields_text_then_done(rig, bridge):
    rig.openai.configure("gpt-4o", tokens=WORDS)
    events = list(bridge.stream(rig.request(GPT, stream=True)))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "".join(WORDS)
    assert isinstance(events[-1], Done) and events[-1].summary.status == STATUS_SUCCESS


def test_refusal_before_work_raises(rig, bridge):
    with pytest.raises(NotFound, match="Unknown model"):
        list(bridge.stream(rig.request("nosuch/model-x", stream=True)))


def test_stream_many_runs_in_parallel_and_isolates_failures(rig, bridge):
    rig.openai.configure("gpt-4o", tokens=WORDS)
    rig.openai.script("gpt-4o", Reply(first_token_delay=2.0))
    rig.openai.script("gpt-4o-mini", Status(400))
    rig.anthropic.script("claude-3-haiku-20240307", Reply(first_token_delay=2.0))
    requests = [rig.request(m, stream=True, fallbacks=()) for m in (GPT, MINI, HAIKU)]
    started = time.monotonic()
    done = {i: e.summary for i, e in bridge.stream_many(requests) if isinstance(e, Done)}
    elapsed = time.monotonic() - started
    # Two 2 s answers ran at once (2 s), not one after the other (4 s); the wide gap
    # leaves room for a busy CI host.
    assert elapsed < 3.5
    assert done[0].status == STATUS_SUCCESS and done[2].status == STATUS_SUCCESS
    assert done[1].error is not None


def test_leaving_a_stream_records_it_as_stopped(rig, bridge):
    rig.openai.script("gpt-4o", Reply(tokens=WORDS, token_delay=0.2))
    stream = bridge.stream(rig.request(GPT, stream=True))
    first = next(stream)
    assert isinstance(first, TextDelta)
    stream.close()  # what a Stop button or a rerun does to the page's generator
    rows = rig.rows()
    assert len(rows) == 1 and rows[0].status == STATUS_STOPPED
