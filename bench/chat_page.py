"""The chat page: first render with 200 stored conversations, and first-token latency.

Render: AppTest renders the page right after sign-in, against a database holding 200
conversations (two messages each) for the user. The baseline is the Home page rendered
the same way in the same run, so the ratio is the chat page's own cost.

First token: the fake provider waits a fixed delay, then sends the first token; we
time from that moment (the fake's receive time + the delay) until the chat turn hands
the token to st.write_stream, which draws it at once. The baseline is litellm
streaming straight from the same fake, measured the same way.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import timedelta

from bench.common import Stats, print_table, scratch_env, stats

CONVERSATIONS = 200
FIRST_TOKEN_DELAY_S = 0.2
MINI = "openai/gpt-4o-mini"
KEY = "sk-bench-000000000000"


def _seed(runtime: object, base_url: str) -> None:
    from core.accounts.auth import create_user
    from core.chat import conversations
    from core.clock import utc_now
    from core.gateway.runtime import Runtime
    from core.settings import endpoints

    assert isinstance(runtime, Runtime)
    now = utc_now()
    with runtime.sessions.begin() as s:
        user = create_user(
            s,
            username="bench",
            password="not-guessable-123",
            role="member",
            actor="bench",
            now=now,
            rounds=4,
        )
        endpoints.add_endpoint(
            s,
            name="openai",
            kind="override",
            api_base=base_url,
            actor="bench",
            now=now,
            builtin_providers=runtime.catalog.providers(),
        )
        for i in range(CONVERSATIONS):
            at = now - timedelta(minutes=i)
            conv = conversations.create(
                s,
                user_id=user.id,
                title=f"Conversation {i}",
                model=MINI,
                task="chat",
                settings={},
                now=at,
            )
            conversations.add_message(
                s,
                user.id,
                conv.id,
                role="user",
                content=f"Question {i} about the quarterly plan",
                now=at,
            )
            conversations.add_message(
                s,
                user.id,
                conv.id,
                role="assistant",
                content="An answer " * 40,
                now=at,
                details={
                    "model": MINI,
                    "prompt_tokens": 20,
                    "completion_tokens": 80,
                    "cost_micros": 60,
                    "latency_ms": 900,
                    "ttft_ms": 200,
                    "attempts": [],
                },
            )


def _render_times(rounds: int) -> tuple[list[float], list[float]]:
    from tests.support.pages import signed_in

    home: list[float] = []
    chat: list[float] = []
    signed_in("bench", "app_pages/chat.py")  # warm: imports, the process's gateway, the catalog
    for _ in range(rounds):
        for page, samples in (("app_pages/home.py", home), ("app_pages/chat.py", chat)):
            at = signed_in("bench")
            t0 = time.perf_counter()
            at.switch_page(page).run()
            samples.append(time.perf_counter() - t0)
            assert not at.exception, at.exception
    return home, chat


def _first_token_times(
    fake: object, runtime: object, rounds: int
) -> tuple[list[float], list[float]]:
    import litellm

    from core.accounts.auth import caller_for
    from core.chat.turns import ChatTurn, TurnPlan
    from core.gateway.runtime import Runtime
    from core.gateway.sync_bridge import SyncGateway
    from tests.fakes import FakeOpenAI, Reply

    assert isinstance(fake, FakeOpenAI) and isinstance(runtime, Runtime)
    fake.configure(
        "gpt-4o-mini", default=Reply(first_token_delay=FIRST_TOKEN_DELAY_S, tokens=["Hi", " there"])
    )
    sync = SyncGateway(runtime.gateway, thread_name="bench-chat")
    with runtime.sessions() as s:
        from core.accounts.auth import get_user

        caller = caller_for(s, get_user(s, "bench").id)

    def sent_at() -> float:
        return fake.requests("gpt-4o-mini")[-1].received_at + FIRST_TOKEN_DELAY_S

    def through_page_path() -> float:
        plan = TurnPlan(
            caller=caller,
            prompt="Say hello",
            history=(),
            model=MINI,
            picked_model=MINI,
            task="chat",
            settings={},
        )
        turn = ChatTurn(runtime.sessions, sync, plan)
        turn.start()
        texts = turn.texts()
        next(texts)
        shown = time.monotonic()
        "".join(texts)
        return shown - sent_at()

    async def direct_once() -> float:
        stream = await litellm.acompletion(
            model=MINI,
            messages=[{"role": "user", "content": "Say hello"}],
            api_base=fake.base_url,
            api_key=KEY,
            stream=True,
            max_retries=0,
        )
        first = None
        async for chunk in stream:
            if first is None and chunk.choices and chunk.choices[0].delta.content:
                first = time.monotonic()
        assert first is not None
        return first - sent_at()

    through_page_path()
    asyncio.run(direct_once())
    direct: list[float] = []
    page: list[float] = []
    for _ in range(rounds):
        direct.append(asyncio.run(direct_once()))
        page.append(through_page_path())
    runtime.gateway.flush(10)
    return direct, page


def run(rounds: int = 15) -> tuple[Stats, Stats, Stats, Stats]:
    from core.gateway.runtime import build_runtime
    from tests.fakes import FakeOpenAI

    with scratch_env(), FakeOpenAI() as fake:
        saved_key = os.environ.get("OPENAI_API_KEY")
        os.environ["OPENAI_API_KEY"] = KEY
        try:
            runtime = build_runtime()
            _seed(runtime, fake.base_url)
            home, chat = _render_times(rounds)
            direct, page = _first_token_times(fake, runtime, rounds)
        finally:
            if saved_key is None:
                os.environ.pop("OPENAI_API_KEY", None)
            else:
                os.environ["OPENAI_API_KEY"] = saved_key
    h, c, d, p = stats(home), stats(chat), stats(direct), stats(page)
    print_table(
        f"Chat page (AppTest, {CONVERSATIONS} stored conversations, {rounds} rounds)",
        ["what", "baseline p50", "chat p50", "chat p95", "ratio"],
        [
            [
                "first render after sign-in (baseline: Home page)",
                f"{h.p50_ms:.0f} ms",
                f"{c.p50_ms:.0f} ms",
                f"{c.p95_ms:.0f} ms",
                f"{c.p50_ms / h.p50_ms:.2f}×",
            ],
            [
                "first token, fake sent -> st.write_stream (baseline: direct litellm)",
                f"{d.p50_ms:.1f} ms",
                f"{p.p50_ms:.1f} ms",
                f"{p.p95_ms:.1f} ms",
                f"+{p.p50_ms - d.p50_ms:.1f} ms",
            ],
        ],
    )
    print(
        f"  targets: render <= 1000 ms ({'met' if c.p95_ms <= 1000 else 'NOT met'} at p95); "
        f"first token <= 100 ms after the fake sends it "
        f"({'met' if p.p95_ms <= 100 else 'NOT met'} at p95)"
    )
    return h, c, d, p


if __name__ == "__main__":
    run()
