"""Compare: one prompt to 2-4 models at once, blind voting, saved and shared sessions, batches."""

from __future__ import annotations

import random
from dataclasses import replace

import streamlit as st

from core.accounts import auth
from core.clock import utc_now
from core.compare import comparisons, export
from core.compare.comparisons import SessionView
from core.compare.rounds import (
    MAX_BATCH_PROMPTS,
    MAX_MODELS,
    MIN_MODELS,
    RoundSettings,
    build_requests,
    check_models,
    check_round,
    draw_labels,
    estimate_round,
    prompts_from_csv,
    prompts_from_text,
    run_round,
)
from core.errors import SwitchboardError
from core.request import Caller
from ui import state
from ui.compare_view import draw_round, model_label, stream_round, usd
from ui.resources import services
from ui.session import active_profile, current_user

user = current_user()
svc = services()

st.title("Compare")
st.caption(
    f"Send one prompt to {MIN_MODELS}–{MAX_MODELS} models at once and vote for the best answer. "
    "Votes feed the team leaderboard and cost-optimised routing."
)


def caller() -> Caller:
    with svc.sessions() as s:
        return auth.caller_for(s, user.id)


def notice(message: str) -> None:
    st.session_state[state.COMPARE_NOTICE] = message


def open_session_id(session_id: str | None) -> None:
    if session_id:
        st.session_state[state.COMPARE_SESSION] = session_id
        st.query_params["session"] = session_id
    else:
        st.session_state.pop(state.COMPARE_SESSION, None)
        st.query_params.pop("session", None)


def vote(round_id: int, choice: str, label: str | None, comment: str) -> None:
    try:
        with svc.sessions.begin() as s:
            comparisons.cast_vote(
                s,
                auth.caller_for(s, user.id),
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
    settings: RoundSettings, prompt: str, history: dict[str, list[tuple[str, str]]] | None = None
) -> None:
    if not prompt.strip() or not MIN_MODELS <= len(settings.models) <= MAX_MODELS:
        st.caption("Estimated cost appears once the models and the prompt are set.")
        return
    try:
        requests = build_requests(
            caller(), settings, settings.models, prompt.strip(), history, profile=active_profile()
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
    settings: RoundSettings, prompt: str, *, session_id: str | None, title: str, shared: bool
) -> None:
    """Check, stream every column, then store the round (and the session, if new)."""
    try:
        with svc.sessions() as s:
            who = auth.caller_for(s, user.id)
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


def run_batch(settings: RoundSettings, prompts: list[str], *, title: str, shared: bool) -> None:
    """Each prompt to every model (in parallel), one prompt after another, stored as it ends."""
    settings = replace(settings, blind=False)  # batches show names
    try:
        with svc.sessions() as s:
            who = auth.caller_for(s, user.id)
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


# --- which session is open: the URL wins, so a shared link opens straight away ----------

linked = st.query_params.get("session")
if linked and linked != st.session_state.get(state.COMPARE_SESSION):
    st.session_state[state.COMPARE_SESSION] = linked
active_id = st.session_state.get(state.COMPARE_SESSION)
if flash := st.session_state.pop(state.COMPARE_NOTICE, None):
    st.success(flash)

with svc.sessions() as s:
    me = auth.caller_for(s, user.id)
    listed = comparisons.list_sessions(s, me)
    model_sets = comparisons.list_model_sets(s, me)

view: SessionView | None = None
if active_id:
    try:
        with svc.sessions() as s:
            view = comparisons.open_session(s, active_id, me)
        st.query_params["session"] = active_id
    except SwitchboardError as exc:
        st.error(exc.message)
        open_session_id(None)

with st.expander(f"Saved sessions ({len(listed)})", expanded=False):
    if not listed:
        st.caption("No sessions yet. Your comparisons, and those your team shares, show here.")
    else:
        chosen = st.selectbox(
            "Your sessions and your team's shared ones",
            listed,
            key=state.COMPARE_OPEN,
            format_func=lambda x: (
                f"{x.title} · {x.owner}{'' if x.mine else ' (shared)'} · "
                f"{x.rounds} round{'s' if x.rounds != 1 else ''} · "
                f"{x.created_at:%Y-%m-%d %H:%M} UTC"
            ),
        )
        if st.button("Open", disabled=chosen is None):
            open_session_id(chosen.id if chosen else None)
            st.rerun()

# --- an open session ------------------------------------------------------------------------

if view is not None:
    top = st.columns([4, 1])
    top[0].subheader(view.title)
    if top[1].button("New comparison", width="stretch"):
        open_session_id(None)
        st.rerun()
    names = ", ".join(view.models) if view.all_revealed else f"{len(view.models)} models (hidden)"
    st.caption(
        f"By {view.owner} · task {view.task or '(none)'} · {names} · "
        f"{'blind' if view.blind else 'names shown'} · fallbacks "
        f"{'on' if view.fallbacks else 'off'} · total cost {usd(view.cost_micros)}"
    )
    if view.read_only:
        st.info(
            f"Shared by {view.owner}: read-only. You can add your own votes; "
            "blind names show once you vote on a round."
        )
    else:
        share = st.toggle(
            "Share with my team (read-only, they can vote)",
            value=view.shared,
            key=state.compare_share_key(view.id),
        )
        if share != view.shared:
            with svc.sessions.begin() as s:
                comparisons.set_shared(s, me, view.id, share, now=utc_now())
            st.rerun()
        if view.shared:
            st.caption("Link for your team:")
            st.code(f"{(st.context.url or '').rstrip('/')}?session={view.id}", language=None)

    batch = [r for r in view.rounds if r.kind == "batch"]
    if batch:
        st.markdown("##### Batch results")
        st.dataframe(export.result_rows(view), hide_index=True, width="stretch")
        totals = export.model_totals(view)
        if totals:
            st.markdown("##### Totals per model")
            st.dataframe(totals, hide_index=True, width="stretch")
    for r in view.rounds:
        if r.kind == "batch":
            with st.expander(f"Prompt {r.seq}: {r.prompt[:80]}"):
                draw_round(r, on_vote=vote)
        else:
            st.markdown(f"##### Round {r.seq}")
            draw_round(r, on_vote=vote)

    if not view.read_only and not batch:
        followup = st.text_area(
            "Follow-up (each column continues its own conversation)", key=state.COMPARE_FOLLOWUP
        )
        show_estimate(view.settings, followup)
        if st.button("Send follow-up", type="primary"):
            send_round(
                view.settings, followup, session_id=view.id, title=view.title, shared=view.shared
            )

    st.markdown("##### Export")
    ex = st.columns(3)
    ex[0].download_button(
        "Markdown",
        export.to_markdown(view),
        file_name=f"comparison-{view.id}.md",
        mime="text/markdown",
    )
    ex[1].download_button(
        "CSV", export.to_csv(view), file_name=f"comparison-{view.id}.csv", mime="text/csv"
    )
    ex[2].download_button(
        "JSON",
        export.to_json(view),
        file_name=f"comparison-{view.id}.json",
        mime="application/json",
    )
    if not view.read_only:
        with st.expander("Delete this session"):
            sure = st.checkbox(
                "Yes, delete it with every round, answer and vote", key=state.COMPARE_DELETE_CONFIRM
            )
            if st.button("Delete session", disabled=not sure):
                with svc.sessions.begin() as s:
                    comparisons.delete_session(s, me, view.id, now=utc_now())
                notice("Session deleted.")
                open_session_id(None)
                st.rerun()
    st.stop()

# --- a new comparison ---------------------------------------------------------------------

catalog = svc.catalog
options = sorted(
    {m.id for m in catalog.models()} | set(svc.runtime.gateway.resolver().endpoint_models())
)
if model_sets:
    st.selectbox(
        "Saved model set",
        model_sets,
        index=None,
        key=state.COMPARE_SET,
        format_func=lambda x: f"{x.name}: {', '.join(x.models)}",
        on_change=apply_set,
        placeholder="Pick a saved set, or choose models below",
    )
models = st.multiselect(
    f"Models ({MIN_MODELS}–{MAX_MODELS})",
    options,
    key=state.COMPARE_MODELS,
    format_func=model_label(catalog),
    placeholder="Type to search, e.g. gpt-4o, haiku, low",
)
c1, c2, c3 = st.columns([2, 1, 1])
task = c1.text_input(
    "Task (optional)", key=state.COMPARE_TASK, placeholder="e.g. summarise, code-review"
)
temperature = c2.number_input(
    "Temperature",
    min_value=0.0,
    max_value=2.0,
    value=None,
    step=0.1,
    key=state.COMPARE_TEMPERATURE,
    placeholder="model default",
)
max_tokens = c3.number_input(
    "Max tokens",
    min_value=1,
    value=None,
    step=256,
    key=state.COMPARE_MAX_TOKENS,
    placeholder="model default",
)
system_prompt = st.text_area("System prompt (optional)", key=state.COMPARE_SYSTEM, height=80)
t1, t2, t3 = st.columns(3)
blind = t1.toggle("Blind: hide names until I vote", value=True, key=state.COMPARE_BLIND)
fallbacks = t2.toggle(
    "Allow fallbacks",
    value=False,
    key=state.COMPARE_FALLBACKS,
    help="Off: each column is that model alone, so a failure shows as one.",
)
shared = t3.toggle("Share with my team", value=True, key=state.COMPARE_SHARED)
title = st.text_input("Session title (optional)", key=state.COMPARE_TITLE)
settings = RoundSettings(
    models=tuple(models),
    task=task,
    system_prompt=system_prompt,
    temperature=temperature,
    max_tokens=None if max_tokens is None else int(max_tokens),
    fallbacks=fallbacks,
    blind=blind,
)

with st.popover("Save these models as a set"):
    set_name = st.text_input("Set name", key=state.COMPARE_SET_NAME)
    if st.button("Save set"):
        try:
            with svc.sessions.begin() as s:
                checked = check_models(models, svc.runtime.gateway.resolver())
                comparisons.save_model_set(s, me, set_name, checked, now=utc_now())
            st.success(f"Saved set {set_name.strip()!r}.")
        except SwitchboardError as exc:
            st.error(exc.message)

one, many = st.tabs(["One prompt", "Batch run"])
with one:
    prompt = st.text_area("Prompt", key=state.COMPARE_PROMPT, height=120)
    show_estimate(settings, prompt)
    if st.button("Send to all models", type="primary"):
        send_round(settings, prompt, session_id=None, title=title, shared=shared)
with many:
    st.caption(
        f"Up to {MAX_BATCH_PROMPTS} prompts; each goes to every chosen model. "
        "Batch results show model names."
    )
    pasted = st.text_area("Prompts, one per line", key=state.COMPARE_BATCH_TEXT, height=120)
    upload = st.file_uploader(
        "…or a CSV file with a `prompt` column", type=["csv"], key=state.COMPARE_BATCH_FILE
    )
    if st.button("Run batch", type="primary"):
        try:
            batch_prompts = (
                prompts_from_csv(upload.getvalue())
                if upload is not None
                else prompts_from_text(pasted)
            )
        except SwitchboardError as exc:
            st.error(exc.message)
        else:
            run_batch(settings, batch_prompts, title=title, shared=shared)
