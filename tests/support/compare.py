"""Building comparison sessions, rounds and votes directly in the database, for tests."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from core.accounts import auth
from core.clock import utc_now
from core.compare import comparisons
from core.compare.rounds import AnswerData, RoundSettings, draw_labels
from core.request import Caller
from core.store.tables import CompareRound


def caller(sessions: sessionmaker[Session], user_id: int) -> Caller:
    with sessions() as s:
        return auth.caller_for(s, user_id)


def answer(
    model: str,
    *,
    text: str | None = None,
    cost: int | None = 100,
    latency: int = 500,
    status: str = "success",
    error: str | None = None,
) -> AnswerData:
    return AnswerData(
        model=model,
        text=f"answer from {model}" if text is None else text,
        status=status,
        error=error,
        prompt_tokens=10,
        completion_tokens=20,
        cost_micros=cost,
        priced=cost is not None,
        latency_ms=latency,
        ttft_ms=50,
    )


def new_session(
    sessions: sessionmaker[Session],
    owner: Caller,
    models: Sequence[str],
    *,
    task: str = "",
    blind: bool = True,
    shared: bool = True,
    now: datetime | None = None,
) -> str:
    settings = RoundSettings(models=tuple(models), task=task, blind=blind)
    with sessions.begin() as s:
        return comparisons.create_session(
            s, owner, settings, title="test session", now=now or utc_now(), shared=shared
        )


def add_round(
    sessions: sessionmaker[Session],
    owner: Caller,
    session_id: str,
    answers: Sequence[AnswerData],
    *,
    prompt: str = "Say hello",
    seed: int = 7,
    kind: str = "turn",
    now: datetime | None = None,
) -> int:
    labels, label_seed = draw_labels([a.model for a in answers], random.Random(seed))
    with sessions.begin() as s:
        return comparisons.add_round(
            s,
            owner,
            session_id,
            prompt=prompt,
            kind=kind,
            labels=labels,
            label_seed=label_seed,
            answers=answers,
            now=now or utc_now(),
        )


def vote(
    sessions: sessionmaker[Session],
    voter: Caller,
    round_id: int,
    choice: str,
    winner: str | None = None,
    *,
    comment: str = "",
    now: datetime | None = None,
) -> None:
    """Vote for ``winner`` by model id (looked up to its label)."""
    label = None
    if winner is not None:
        with sessions() as s:
            labels = s.get(CompareRound, round_id).labels  # type: ignore[union-attr]
            label = next(k for k, v in labels.items() if v == winner)
    with sessions.begin() as s:
        comparisons.cast_vote(
            s,
            voter,
            round_id,
            choice=choice,
            winner_label=label,
            comment=comment,
            now=now or utc_now(),
        )


def voted_rounds(
    sessions: sessionmaker[Session],
    owner: Caller,
    verdicts: Sequence[tuple[Sequence[str], str, str | None]],
    *,
    task: str = "",
    voter: Caller | None = None,
    costs: dict[str, int | None] | None = None,
    latencies: dict[str, int] | None = None,
    now: datetime | None = None,
) -> None:
    """One session per verdict (models, choice, winner), each with one round and one vote."""
    for models, choice, winner in verdicts:
        sid = new_session(sessions, owner, models, task=task, now=now)
        rid = add_round(
            sessions,
            owner,
            sid,
            [
                answer(m, cost=(costs or {}).get(m, 100), latency=(latencies or {}).get(m, 500))
                for m in models
            ],
            now=now,
        )
        vote(sessions, voter or owner, rid, choice, winner, now=now)
