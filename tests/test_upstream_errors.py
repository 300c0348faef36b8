"""What a provider's error says reaches the caller and the ledger safely: parsed, redacted."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.errors import ContentRefused
from core.store.tables import AttemptRow, RequestRow
from tests.fakes import Status
from tests.gateway_support import GPT, OPENAI_KEY


@pytest.mark.parametrize("header", ["soon", "Sat, 21 Nov 2026 11:00:00", "  "])
async def test_an_unreadable_retry_after_falls_back_to_normal_backoff(rig, header):
    rig.openai.script("gpt-4o", Status(429, headers={"Retry-After": header}))
    done = await rig.gateway.complete(rig.request(GPT, fallbacks=()))
    assert done.text and rig.openai.count("gpt-4o") == 2
    [delay] = rig.sleeps.delays
    # The zone-less date is read as GMT (long past here), the others are ignored: either
    # way the wait stays within the jittered backoff, never the 10 s cap.
    assert 0 <= delay <= 0.5


async def test_a_provider_error_that_echoes_the_key_is_redacted_everywhere(rig):
    echo = f"content_filter: request with key {OPENAI_KEY} was flagged by the safety system"
    rig.openai.script("gpt-4o", Status(400, message=echo, error_code="content_filter"))
    with pytest.raises(ContentRefused) as refused:
        await rig.gateway.complete(rig.request(GPT, fallbacks=()))
    assert "flagged" in str(refused.value)  # the provider's reason still reaches the caller
    assert OPENAI_KEY not in str(refused.value)
    rig.rows()  # flushes the ledger
    with rig.sessions() as s:
        stored = [r.error_message for r in s.scalars(select(RequestRow))]
        stored += [a.error_message for a in s.scalars(select(AttemptRow))]
    assert stored and all(m and OPENAI_KEY not in m for m in stored)
    assert any(OPENAI_KEY[-4:] in m for m in stored if m)  # masked, so still identifiable
