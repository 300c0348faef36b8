"""Comparison sessions: their rounds, answers and votes, who may see them, saved model sets.

Sharing rule: a session belongs to its owner. When ``shared`` is on (the default),
members of the owner's team (the team the owner was in when the session was created)
may open it by link, read-only, and add their own votes. Nobody else may open it:
not other teams, not users without a team, and not by guessing ids (which are random).
Only the owner sends rounds, changes sharing or deletes it.

Blind rounds show labels "A".."D" until the viewer has voted on that round; each
viewer reveals the names for themselves by voting.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.compare.rounds import AnswerData, RoundSettings
from core.errors import InvalidInput, NotFound, PermissionDenied
from core.request import Caller
from core.store import audit
from core.store.tables import (
    CompareAnswer,
    CompareModelSet,
    CompareRound,
    CompareSession,
    CompareVote,
    User,
)

CHOICES = ("best", "tie", "all_bad")
MAX_COMMENT = 2000
MAX_TITLE = 200
MAX_SET_NAME = 64


# --- views (what a viewer may see) -------------------------------------------------------


@dataclass(frozen=True)
class AnswerView:
    label: str
    model: str
    text: str
    status: str
    error: str | None
    served_model: str | None
    prompt_tokens: int
    completion_tokens: int
    cost_micros: int | None
    priced: bool
    latency_ms: int
    ttft_ms: int | None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status.startswith("success")

    @property
    def length(self) -> int:
        return len(self.text)


@dataclass(frozen=True)
class VoteView:
    choice: str
    winner: str | None  # model id for "best"
    comment: str
    at: datetime


@dataclass(frozen=True)
class RoundView:
    id: int
    seq: int
    kind: str
    prompt: str
    answers: tuple[AnswerView, ...]  # in label order
    my_vote: VoteView | None
    votes: int
    tally: Mapping[str, int]  # model id, "tie" or "all_bad" -> count
    revealed: bool  # the viewer may see model names
    created_at: datetime

    @property
    def cost_micros(self) -> int | None:
        """Total cost of the round; None when any answer is unpriced."""
        if any(a.cost_micros is None or not a.priced for a in self.answers):
            return None
        return sum(a.cost_micros or 0 for a in self.answers)

    def name(self, answer: AnswerView) -> str:
        """What the viewer may call this answer: the model, or its blind label."""
        return answer.model if self.revealed else f"Model {answer.label}"

    def label_of(self, model: str) -> str | None:
        return next((a.label for a in self.answers if a.model == model), None)


@dataclass(frozen=True)
class SessionView:
    id: str
    title: str
    owner_id: int
    owner: str
    task: str
    system_prompt: str
    models: tuple[str, ...]
    blind: bool
    fallbacks: bool
    shared: bool
    temperature: float | None
    max_tokens: int | None
    created_at: datetime
    read_only: bool  # the viewer is not the owner
    rounds: tuple[RoundView, ...]

    @property
    def settings(self) -> RoundSettings:
        return RoundSettings(
            models=self.models,
            task=self.task,
            system_prompt=self.system_prompt,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            fallbacks=self.fallbacks,
            blind=self.blind,
        )

    @property
    def all_revealed(self) -> bool:
        return all(r.revealed for r in self.rounds)

    @property
    def cost_micros(self) -> int | None:
        costs = [r.cost_micros for r in self.rounds]
        return None if any(c is None for c in costs) else sum(c or 0 for c in costs)


@dataclass(frozen=True)
class SessionSummary:
    id: str
    title: str
    owner: str
    task: str
    models: tuple[str, ...]
    rounds: int
    mine: bool
    created_at: datetime


# --- access --------------------------------------------------------------------------------


def can_view(row: CompareSession, caller: Caller) -> bool:
    if row.owner_id == caller.user_id:
        return True
    return row.shared and row.team_id is not None and row.team_id == caller.team_id


def _get_visible(session: Session, session_id: str, caller: Caller) -> CompareSession:
    row = session.get(CompareSession, session_id.strip()) if session_id.strip() else None
    if row is None:
        raise NotFound("No comparison session has this link. It may have been deleted.")
    if not can_view(row, caller):
        raise PermissionDenied(
            "This comparison is not shared with you. Only its owner and, when shared, "
            "the owner's team can open it."
        )
    return row


def _get_owned(session: Session, session_id: str, caller: Caller) -> CompareSession:
    row = _get_visible(session, session_id, caller)
    if row.owner_id != caller.user_id:
        raise PermissionDenied("Only the session's owner can change it; you can vote on it.")
    return row


# --- sessions and rounds -------------------------------------------------------------------


def create_session(
    session: Session,
    caller: Caller,
    settings: RoundSettings,
    *,
    title: str,
    now: datetime,
    shared: bool = True,
) -> str:
    """A new session for ``settings`` (already checked); returns its random id."""
    session_id = uuid.uuid4().hex
    session.add(
        CompareSession(
            id=session_id,
            owner_id=caller.user_id,
            team_id=caller.team_id,
            title=(title.strip() or "Comparison")[:MAX_TITLE],
            task=settings.task.strip().lower(),
            system_prompt=settings.system_prompt,
            models=list(settings.models),
            blind=settings.blind,
            fallbacks=settings.fallbacks,
            shared=shared,
            temperature=settings.temperature,
            max_tokens=settings.max_tokens,
            created_at=now,
            updated_at=now,
        )
    )
    audit.record(
        session,
        actor=caller.username,
        action="compare.session.create",
        target=session_id,
        now=now,
        details={"models": list(settings.models), "task": settings.task, "blind": settings.blind},
    )
    return session_id


def add_round(
    session: Session,
    caller: Caller,
    session_id: str,
    *,
    prompt: str,
    kind: str,
    labels: Mapping[str, str],
    label_seed: int,
    answers: Sequence[AnswerData],
    now: datetime,
) -> int:
    """Store a finished round with every answer; returns the round id."""
    row = _get_owned(session, session_id, caller)
    if kind not in ("turn", "batch"):
        raise InvalidInput("A round is a turn or part of a batch.")
    label_of = {model: label for label, model in labels.items()}
    if set(label_of) != {a.model for a in answers} or set(label_of) != set(row.models):
        raise InvalidInput("Every model of the session needs exactly one answer and label.")
    seq = (
        session.scalar(select(func.max(CompareRound.seq)).where(CompareRound.session_id == row.id))
        or 0
    ) + 1
    round_row = CompareRound(
        session_id=row.id,
        seq=seq,
        kind=kind,
        prompt=prompt,
        labels=dict(labels),
        label_seed=label_seed,
        created_at=now,
    )
    session.add(round_row)
    session.flush()
    for a in answers:
        session.add(
            CompareAnswer(
                round_id=round_row.id,
                model=a.model,
                label=label_of[a.model],
                text=a.text,
                status=a.status,
                error=a.error,
                request_id=a.request_id,
                served_model=a.served_model,
                prompt_tokens=a.prompt_tokens,
                completion_tokens=a.completion_tokens,
                cost_micros=a.cost_micros,
                priced=a.priced,
                latency_ms=a.latency_ms,
                ttft_ms=a.ttft_ms,
                created_at=now,
            )
        )
    row.updated_at = now
    return round_row.id


def histories(session: Session, session_id: str) -> dict[str, list[tuple[str, str]]]:
    """Each model's own conversation so far: (prompt, its answer) over the session's turns.

    A turn a model failed with no text is left out of its history, so its next request
    is still a well-formed conversation.
    """
    rows = session.execute(
        select(CompareRound.prompt, CompareAnswer.model, CompareAnswer.text)
        .join(CompareAnswer, CompareAnswer.round_id == CompareRound.id)
        .where(CompareRound.session_id == session_id, CompareRound.kind == "turn")
        .order_by(CompareRound.seq)
    ).all()
    found: dict[str, list[tuple[str, str]]] = {}
    for prompt, model, text in rows:
        if text:
            found.setdefault(model, []).append((prompt, text))
    return found


def open_session(session: Session, session_id: str, caller: Caller) -> SessionView:
    """Everything the caller may see of a session, or NotFound / PermissionDenied."""
    row = _get_visible(session, session_id, caller)
    owner = session.get(User, row.owner_id)
    rounds = session.scalars(
        select(CompareRound).where(CompareRound.session_id == row.id).order_by(CompareRound.seq)
    ).all()
    round_ids = [r.id for r in rounds]
    answers: dict[int, list[CompareAnswer]] = {}
    votes: dict[int, list[CompareVote]] = {}
    if round_ids:
        for a in session.scalars(
            select(CompareAnswer)
            .where(CompareAnswer.round_id.in_(round_ids))
            .order_by(CompareAnswer.label)
        ):
            answers.setdefault(a.round_id, []).append(a)
        for v in session.scalars(select(CompareVote).where(CompareVote.round_id.in_(round_ids))):
            votes.setdefault(v.round_id, []).append(v)
    views = []
    for r in rounds:
        round_votes = votes.get(r.id, [])
        mine = next((v for v in round_votes if v.user_id == caller.user_id), None)
        tally = Counter(
            v.winner if v.choice == "best" and v.winner else v.choice for v in round_votes
        )
        views.append(
            RoundView(
                id=r.id,
                seq=r.seq,
                kind=r.kind,
                prompt=r.prompt,
                answers=tuple(_answer_view(a) for a in answers.get(r.id, [])),
                my_vote=None
                if mine is None
                else VoteView(mine.choice, mine.winner, mine.comment, mine.at),
                votes=len(round_votes),
                tally=dict(tally),
                revealed=not row.blind or mine is not None,
                created_at=r.created_at,
            )
        )
    return SessionView(
        id=row.id,
        title=row.title,
        owner_id=row.owner_id,
        owner=owner.username if owner else "(deleted user)",
        task=row.task,
        system_prompt=row.system_prompt,
        models=tuple(row.models),
        blind=row.blind,
        fallbacks=row.fallbacks,
        shared=row.shared,
        temperature=row.temperature,
        max_tokens=row.max_tokens,
        created_at=row.created_at,
        read_only=row.owner_id != caller.user_id,
        rounds=tuple(views),
    )


def _answer_view(a: CompareAnswer) -> AnswerView:
    return AnswerView(
        label=a.label,
        model=a.model,
        text=a.text,
        status=a.status,
        error=a.error,
        served_model=a.served_model,
        prompt_tokens=a.prompt_tokens,
        completion_tokens=a.completion_tokens,
        cost_micros=a.cost_micros,
        priced=a.priced,
        latency_ms=a.latency_ms,
        ttft_ms=a.ttft_ms,
    )


def list_sessions(session: Session, caller: Caller, *, limit: int = 100) -> list[SessionSummary]:
    """The caller's own sessions and those shared with their team, newest first."""
    visible = [CompareSession.owner_id == caller.user_id]
    if caller.team_id is not None:
        visible.append(CompareSession.shared.is_(True) & (CompareSession.team_id == caller.team_id))
    counts = (
        select(CompareRound.session_id, func.count().label("n"))
        .group_by(CompareRound.session_id)
        .subquery()
    )
    rows = session.execute(
        select(CompareSession, User.username, func.coalesce(counts.c.n, 0))
        .join(User, User.id == CompareSession.owner_id)
        .outerjoin(counts, counts.c.session_id == CompareSession.id)
        .where(or_(*visible))
        .order_by(CompareSession.updated_at.desc())
        .limit(limit)
    ).all()
    return [
        SessionSummary(
            s.id,
            s.title,
            username,
            s.task,
            tuple(s.models),
            int(n),
            s.owner_id == caller.user_id,
            s.created_at,
        )
        for s, username, n in rows
    ]


def set_shared(
    session: Session, caller: Caller, session_id: str, shared: bool, *, now: datetime
) -> None:
    row = _get_owned(session, session_id, caller)
    row.shared, row.updated_at = shared, now
    audit.record(
        session,
        actor=caller.username,
        action="compare.session.share",
        target=row.id,
        now=now,
        details={"shared": shared},
    )


def delete_session(session: Session, caller: Caller, session_id: str, *, now: datetime) -> None:
    """Delete a session with its rounds, answers and votes (the owner only)."""
    row = _get_owned(session, session_id, caller)
    round_ids = select(CompareRound.id).where(CompareRound.session_id == row.id)
    # Explicit deletes, so no engine depends on ON DELETE CASCADE being enforced.
    session.execute(delete(CompareVote).where(CompareVote.round_id.in_(round_ids)))
    session.execute(delete(CompareAnswer).where(CompareAnswer.round_id.in_(round_ids)))
    session.execute(delete(CompareRound).where(CompareRound.session_id == row.id))
    session.delete(row)
    audit.record(
        session,
        actor=caller.username,
        action="compare.session.delete",
        target=session_id,
        now=now,
        details={"title": row.title},
    )


# --- votes ---------------------------------------------------------------------------------


def cast_vote(
    session: Session,
    caller: Caller,
    round_id: int,
    *,
    choice: str,
    winner_label: str | None = None,
    comment: str = "",
    now: datetime,
) -> None:
    """Store the caller's vote on a round, replacing an earlier one (one per user per round)."""
    if choice not in CHOICES:
        raise InvalidInput("Vote for the best answer, a tie, or all bad.")
    comment = comment.strip()
    if len(comment) > MAX_COMMENT:
        raise InvalidInput(f"A comment can be at most {MAX_COMMENT} characters.")
    round_row = session.get(CompareRound, round_id)
    if round_row is None:
        raise NotFound("This round no longer exists.")
    _get_visible(session, round_row.session_id, caller)
    winner: str | None = None
    if choice == "best":
        labels: Mapping[str, str] = round_row.labels
        if winner_label is None or winner_label not in labels:
            raise InvalidInput("Pick which answer was best.")
        winner = labels[winner_label]
    values = {
        "team_id": caller.team_id,
        "choice": choice,
        "winner": winner,
        "comment": comment,
        "at": now,
    }
    existing = session.scalar(
        select(CompareVote).where(
            CompareVote.round_id == round_id, CompareVote.user_id == caller.user_id
        )
    )
    if existing is None:
        try:
            with session.begin_nested():
                session.add(CompareVote(round_id=round_id, user_id=caller.user_id, **values))
        except IntegrityError:
            # Two tabs voted at once: the unique constraint kept one row; update it.
            existing = session.scalar(
                select(CompareVote).where(
                    CompareVote.round_id == round_id, CompareVote.user_id == caller.user_id
                )
            )
            assert existing is not None
    if existing is not None:
        for key, value in values.items():
            setattr(existing, key, value)


# --- saved model sets ----------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSetInfo:
    id: int
    name: str
    models: tuple[str, ...]


def list_model_sets(session: Session, caller: Caller) -> list[ModelSetInfo]:
    rows = session.scalars(
        select(CompareModelSet)
        .where(CompareModelSet.owner_id == caller.user_id)
        .order_by(CompareModelSet.name)
    )
    return [ModelSetInfo(r.id, r.name, tuple(r.models)) for r in rows]


def save_model_set(
    session: Session, caller: Caller, name: str, models: Sequence[str], *, now: datetime
) -> None:
    """Create or replace the caller's set called ``name`` (models already checked)."""
    name = name.strip()
    if not name:
        raise InvalidInput("Give the model set a name.")
    if len(name) > MAX_SET_NAME:
        raise InvalidInput(f"A set name can be at most {MAX_SET_NAME} characters.")
    row = session.scalar(
        select(CompareModelSet).where(
            CompareModelSet.owner_id == caller.user_id, CompareModelSet.name == name
        )
    )
    if row is None:
        session.add(
            CompareModelSet(owner_id=caller.user_id, name=name, models=list(models), created_at=now)
        )
    else:
        row.models = list(models)


def delete_model_set(session: Session, caller: Caller, set_id: int) -> None:
    row = session.get(CompareModelSet, set_id)
    if row is None or row.owner_id != caller.user_id:
        raise NotFound("That model set no longer exists.")
    session.delete(row)
