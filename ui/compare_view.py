"""Drawing comparison rounds: live columns while answers stream, stored rounds, vote forms."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import streamlit as st

from core.compare.comparisons import AnswerView, RoundView
from core.compare.rounds import AnswerData, Column, RoundCollector
from core.gateway.sync_bridge import SyncGateway
from core.money.catalog import Catalog
from core.money.display import price_per_1m
from core.money.display import usd_or_unpriced as usd
from core.request import ChatRequest
from ui import state

UPDATE_EVERY_S = 0.05  # per column: often enough to look live, rare enough to stay cheap
CHOICE_TIE = "Tie"
CHOICE_ALL_BAD = "All bad"


def model_label(catalog: Catalog) -> Callable[[str], str]:
    """A search-friendly label: id, cost tier and prices per 1M tokens."""

    def label(model_id: str) -> str:
        info = catalog.get(model_id)
        if info is None:
            return f"{model_id} · endpoint"
        if not info.priced:
            return f"{model_id} · unpriced"
        return (
            f"{model_id} · {info.cost_tier} · {price_per_1m(info.input_price)} in / "
            f"{price_per_1m(info.output_price)} out per 1M"
        )

    return label


def _facts(
    tokens_in: int,
    tokens_out: int,
    cost: str | None,
    latency_ms: int,
    ttft_ms: int | None,
    length: int,
) -> str:
    parts = [f"{tokens_in} in / {tokens_out} out tokens"]
    if cost is not None:
        parts.append(cost)
    parts.append(f"{latency_ms / 1000:.2f} s")
    parts.append("TTFT " + ("–" if ttft_ms is None else f"{ttft_ms} ms"))
    parts.append(f"{length:,} chars")
    return " · ".join(parts)


def stream_round(
    gateway: SyncGateway,
    requests: Sequence[ChatRequest],
    headings: Sequence[str],
    *,
    blind: bool,
) -> list[AnswerData]:
    """Stream every request at once into its own column; returns the answers in order."""
    slots = []
    for place, heading in zip(st.columns(len(requests)), headings, strict=True):
        with place:
            st.markdown(f"#### {heading}")
            slots.append((st.empty(), st.empty()))
    collector = RoundCollector([r.model for r in requests])
    shown = [0.0] * len(requests)
    for index, event in gateway.stream_many(requests):
        column = collector.add(index, event)
        now = time.monotonic()
        if column.done or now - shown[index] >= UPDATE_EVERY_S:
            shown[index] = now
            _draw_live(column, *slots[index], heading=headings[index] if blind else None)
    for filled, (body, foot), heading in zip(collector.columns, slots, headings, strict=True):
        _draw_live(filled, body, foot, heading=heading if blind else None)
    return collector.answers()


def _draw_live(
    column: Column,
    body: st.delta_generator.DeltaGenerator,
    foot: st.delta_generator.DeltaGenerator,
    *,
    heading: str | None,
) -> None:
    """Draw one column; with ``heading`` (blind) its error names the label, not the model."""
    if not column.done:
        body.markdown(column.text + " ▌")
        return
    answer = column.answer()
    if answer.error:
        with body.container():
            if answer.text:
                st.markdown(answer.text)
            st.error(
                answer.error if heading is None else answer.error.replace(column.model, heading)
            )
    else:
        body.markdown(answer.text or "*(empty answer)*")
    foot.caption(
        _facts(
            answer.prompt_tokens,
            answer.completion_tokens,
            None,
            answer.latency_ms,
            answer.ttft_ms,
            len(answer.text),
        )
    )


def _heading(r: RoundView, a: AnswerView) -> str:
    if not r.revealed:
        return f"Model {a.label}"
    return f"{a.label} · {a.model}" if len(r.answers) > 1 else a.model


def draw_round(r: RoundView, *, on_vote: Callable[[int, str, str | None, str], None]) -> None:
    """A stored round: the prompt, its answers side by side, and the viewer's vote form."""
    st.markdown(f"**You asked:** {r.prompt}" if r.kind == "turn" else f"**Prompt:** {r.prompt}")
    for place, a in zip(st.columns(len(r.answers)), r.answers, strict=True):
        with place:
            st.markdown(f"#### {_heading(r, a)}")
            if a.text:
                st.markdown(a.text)
            if a.error:
                st.error(a.error if r.revealed else a.error.replace(a.model, r.name(a)))
            elif not a.text:
                st.markdown("*(empty answer)*")
            cost = usd(a.cost_micros, a.priced) if r.revealed else None
            st.caption(
                _facts(
                    a.prompt_tokens, a.completion_tokens, cost, a.latency_ms, a.ttft_ms, a.length
                )
            )
            if r.revealed and a.served_model and a.served_model != a.model:
                st.caption(f"Answered by fallback {a.served_model}")
    total = r.cost_micros
    note = "" if r.revealed else " · per-answer costs show after you vote"
    st.caption(f"Round cost {usd(total)}{note}")
    _vote_form(r, on_vote)


def _vote_form(r: RoundView, on_vote: Callable[[int, str, str | None, str], None]) -> None:
    options = [f"{a.label} is best" for a in r.answers] + [CHOICE_TIE, CHOICE_ALL_BAD]
    current = None
    if r.my_vote is not None:
        if r.my_vote.choice == "best":
            label = r.label_of(r.my_vote.winner or "")
            current = options.index(f"{label} is best") if label else None
        else:
            current = options.index(CHOICE_TIE if r.my_vote.choice == "tie" else CHOICE_ALL_BAD)
    with st.form(f"vote-form-{r.id}", border=True):
        verb = "Change your vote" if r.my_vote else "Your vote"
        choice = st.radio(
            verb, options, index=current, horizontal=True, key=state.compare_vote_key(r.id)
        )
        comment = st.text_input(
            "Comment (optional)",
            key=state.compare_comment_key(r.id),
            value=r.my_vote.comment if r.my_vote else "",
        )
        submitted = st.form_submit_button("Vote" if r.my_vote is None else "Replace my vote")
    if submitted:
        if choice is None:
            st.error("Pick the best answer, Tie, or All bad, then vote.")
        elif choice == CHOICE_TIE:
            on_vote(r.id, "tie", None, comment)
        elif choice == CHOICE_ALL_BAD:
            on_vote(r.id, "all_bad", None, comment)
        else:
            on_vote(r.id, "best", choice.split(" ", 1)[0], comment)
    if r.revealed and r.votes:
        tally = ", ".join(
            f"{_tally_name(k)} {n}" for k, n in sorted(r.tally.items(), key=lambda kv: -kv[1])
        )
        st.caption(f"{r.votes} vote{'s' if r.votes != 1 else ''} so far: {tally}")
    elif r.votes:
        st.caption(
            f"{r.votes} vote{'s' if r.votes != 1 else ''} so far; vote to see them "
            "and the model names."
        )


def _tally_name(key: str) -> str:
    return {"tie": "tie", "all_bad": "all bad"}.get(key, key)
