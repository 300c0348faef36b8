"""A new comparison: models (or a saved set), settings, then one prompt or a batch."""

from __future__ import annotations

import streamlit as st

from core.clock import utc_now
from core.compare import comparisons
from core.compare.comparisons import ModelSetInfo
from core.compare.rounds import (
    MAX_BATCH_PROMPTS,
    MAX_MODELS,
    MIN_MODELS,
    RoundSettings,
    check_models,
    prompts_from_csv,
    prompts_from_text,
)
from core.errors import SwitchboardError
from core.request import Caller
from ui import compare_actions as actions
from ui import state
from ui.compare_view import model_label
from ui.resources import Services


def new_comparison_form(svc: Services, me: Caller, model_sets: list[ModelSetInfo]) -> None:
    """The form for a new comparison; sending opens the session it creates."""
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
            on_change=actions.apply_set,
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
        actions.show_estimate(svc, me.user_id, settings, prompt)
        if st.button("Send to all models", type="primary"):
            actions.send_round(
                svc, me.user_id, settings, prompt, session_id=None, title=title, shared=shared
            )
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
                actions.run_batch(
                    svc, me.user_id, settings, batch_prompts, title=title, shared=shared
                )
