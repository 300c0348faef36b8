"""What the Compare page does: open a session, vote, estimate, send a round or a batch.

Each takes the page's services and the signed-in user's id; pages and forms call these
and draw nothing of their own state.
"""

from __future__ import annotations

import random
from dataclasses import replace

import streamlit as st

from core.accounts import auth
from core.clock import utc_now
from core.compare import comparisons
from core.compare.rounds import (
    MAX_MODELS,
    MIN_MODELS,
    RoundSettings,
    build_requests,
    check_round,
    draw_labels,
    estimate_round,
    run_round,
)
from core.errors import SwitchboardError
from core.money.display import usd_or_unpriced as usd
from core.request import Caller
from ui import state
from ui.compare_view import stream_round
from ui.resources import Services
from ui.session import active_profile


def caller(svc: Services, user_id: int) -> Caller:
    with svc.sessions() as s:
        return auth.caller_for(s, user_id)


def notice(message: str) -> None:
    st.session_state[state.COMPARE_NOTICE] = message


def open_session_id(session_id: str | None) -> None:
    if session_id:
        st.session_state[state.COMPARE_SESSION] = session_id
        st.query_params["session"] = session_id
    else:
        st.session_state.pop(state.COMPARE_SESSION, None)
        st.query_params.pop("session", None)


def vote(
    svc: Services, user_id: int, round_id: int, choice: str, label: str | None, comment: str
) -> None:
    try:
        with svc.sessions.begin() as s:
            comparisons.cast_vote(
                s,
                auth.caller_for(s, user_id),
                round_id,
                choice=choice,
                winner_label=label,
                comment=comment,
                now=utc_now(),
            )
    except SwitchboardError as exc:
        st.error(exc.message)
        return
    notice("Vote saved.")
    st.rerun()


def show_estimate(
    svc: Services,
    user_id: int,
    settings: RoundSettings,
    prompt: str,
    history: dict[str, list[tuple[str, str]]] | None = None,
) -> None:
    if not prompt.strip() or not MIN_MODELS <= len(settings.models) <= MAX_MODELS:
        st.caption("Estimated cost appears once the models and the prompt are set.")
        return
    try:
        requests = build_requests(
            caller(svc, user_id),
            settings,
            settings.models,
            prompt.strip(),
            history,
            profile=active_profile(),
        )
        found = estimate_round(svc.runtime.gateway.estimate, requests)
    except SwitchboardError:
        st.caption("No estimate: check the models first.")
        return
    text = (
        "unpriced"
        if found.low_micros is None
        else f"{usd(found.low_micros)} – {usd(found.high_micros)}"
    )
    extra = f" · unpriced: {', '.join(found.unpriced_models)}" if found.unpriced_models else ""
    st.caption(f"Estimated cost of this round: {text}{extra}")


def send_round(
    svc: Services,
    user_id: int,
    settings: RoundSettings,
    prompt: str,
    *,
    session_id: str | None,
    title: str,
    shared: bool,
) -> None:
    """Check, stream every column, then store the round (and the session, if new)."""
    try:
        with svc.sessions() as s:
            who = auth.caller_for(s, user_id)
            models, (text,) = check_round(
                s,
                who,
                settings,
                [prompt],
                resolver=svc.runtime.gateway.resolver(),
                environ=svc.runtime.gateway.environ,
            )
            history = comparisons.histories(s, session_id) if session_id else {}
    except SwitchboardError as exc:
        st.error(exc.message)
        return
    labels, seed = draw_labels(models, random.Random())
    order = list(labels.values())  # columns in label order: A, B, ...
    requests = build_requests(who, settings, order, text, history, profile=active_profile())
    headings = [f"Model {lbl}" if settings.blind else f"{lbl} · {m}" for lbl, m in labels.items()]
    answers = stream_round(svc.gateway, requests, headings, blind=settings.blind)
    try:
        with svc.sessions.begin() as s:
            if session_id is None:
                session_id = comparisons.create_session(
                    s, who, settings, title=title or text[:60], now=utc_now(), shared=shared
                )
            comparisons.add_round(
                s,
                who,
                session_id,
                prompt=text,
                kind="turn",
                labels=labels,
                label_seed=seed,
                answers=answers,
                now=utc_now(),
            )
    except SwitchboardError as exc:
        st.error(exc.message)
        return
    open_session_id(session_id)
    st.rerun()


def run_batch(
    svc: Services,
    user_id: int,
    settings: RoundSettings,
    prompts: list[str],
    *,
    title: str,
    shared: bool,
) -> None:
    """Each prompt to every model (in parallel), one prompt after another, stored as it ends."""
    settings = replace(settings, blind=False)  # batches show names
    try:
        with svc.sessions() as s:
            who = auth.caller_for(s, user_id)
            models, cleaned = check_round(
                s,
                who,
                settings,
                prompts,
                resolver=svc.runtime.gateway.resolver(),
                environ=svc.runtime.gateway.environ,
            )
    except SwitchboardError as exc:
        st.error(exc.message)
        return
    rng = random.Random()
    progress = st.progress(0.0, text=f"0 of {len(cleaned)} prompts")
    session_id: str | None = None
    for i, text in enumerate(cleaned, start=1):
        labels, seed = draw_labels(models, rng)
        answers = run_round(
            svc.gateway,
            build_requests(who, settings, list(labels.values()), text, profile=active_profile()),
        )
        with svc.sessions.begin() as s:
            if session_id is None:
                session_id = comparisons.create_session(
                    s,
                    who,
                    settings,
                    title=title or f"Batch of {len(cleaned)} prompts",
                    now=utc_now(),
                    shared=shared,
                )
            comparisons.add_round(
                s,
                who,
                session_id,
                prompt=text,
                kind="batch",
                labels=labels,
                label_seed=seed,
                answers=answers,
                now=utc_now(),
            )
        progress.progress(i / len(cleaned), text=f"{i} of {len(cleaned)} prompts")
    notice(f"Batch finished: {len(cleaned)} prompts × {len(models)} models.")
    open_session_id(session_id)
    st.rerun()


def apply_set() -> None:
    chosen = st.session_state.get(state.COMPARE_SET)
    if isinstance(chosen, comparisons.ModelSetInfo):
        st.session_state[state.COMPARE_MODELS] = list(chosen.models)
