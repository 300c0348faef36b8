"""A searchable model selector, grouped by provider, with tier, price and capability badges.

Shared by the chat and comparison pages. Streamlit's selectbox filters as you type,
so the options are ordered by provider and labelled "provider · name · tier · prices";
the chosen model's badges show underneath.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import streamlit as st

from core.money.catalog import Catalog, ModelInfo
from core.money.display import price_per_1m

_TIER_COLOURS = {
    "free": "green",
    "low": "green",
    "medium": "orange",
    "high": "red",
    "unpriced": "gray",
}
_CAPABILITIES = (
    ("vision", "vision"),
    ("tools", "tools"),
    ("json_mode", "JSON"),
    ("assistant_prefill", "prefill"),
)


def price_text(value: Decimal | None) -> str:
    """Dollars per 1M tokens: $2.50, $0.60, $0.075; '?' when unknown."""
    return price_per_1m(value)


def option_label(model_id: str, info: ModelInfo | None) -> str:
    if info is None:
        return f"{model_id} · admin endpoint"
    prices = (
        f"{price_text(info.input_price)}/{price_text(info.output_price)} per 1M"
        if info.priced
        else "unpriced"
    )
    return f"{info.provider} · {info.display_name} · {info.cost_tier} · {prices}"


def badges_markdown(info: ModelInfo) -> str:
    """Streamlit badge directives for one model (catalog text only, never model output)."""
    tier = info.cost_tier
    parts = [f":{_TIER_COLOURS.get(tier, 'gray')}-badge[{tier}]"]
    if info.priced:
        parts.append(
            f":blue-badge[in {price_text(info.input_price)} · "
            f"out {price_text(info.output_price)} per 1M]"
        )
    else:
        parts.append(":gray-badge[price unknown]")
    if info.context_window:
        parts.append(f":violet-badge[{info.context_window:,} context]")
    parts += [f":gray-badge[{name}]" for attr, name in _CAPABILITIES if getattr(info, attr)]
    return " ".join(parts)


def _ordered(catalog: Catalog, models: Sequence[str] | None) -> list[str]:
    ids = [m.id for m in catalog.models()] if models is None else list(dict.fromkeys(models))

    def order(model_id: str) -> tuple[str, str]:
        info = catalog.get(model_id)
        if info is None:
            return (model_id.split("/", 1)[0], model_id)
        return (info.provider, info.display_name.lower())

    return sorted(ids, key=order)


def model_picker(
    label: str,
    catalog: Catalog,
    *,
    key: str,
    default: str | None = None,
    models: Sequence[str] | None = None,
    unavailable: Sequence[str] = (),
    show_unavailable: bool = False,
    force: str | None = None,
) -> str:
    """Pick one model id; ``models`` limits the choice (default: the whole catalog).

    ``unavailable`` models (no key for this person) come after the others, labelled
    "no key", and only when ``show_unavailable``; the default and the current choice
    stay listed either way, so a reopened conversation's model is never swapped silently.
    ``default`` is preselected the first time (and whenever the current choice is no
    longer offered); afterwards the widget keeps the user's choice under ``key``.
    ``force`` sets the choice on this draw (a new task's route, a reopened conversation).
    """
    no_key = set(unavailable)
    stored = st.session_state.get(key)
    wanted = force if force is not None else stored
    options = _ordered(catalog, models)
    extra = _ordered(catalog, unavailable) if show_unavailable else []
    options += [m for m in extra if m not in options]
    for keep in (wanted, default):
        if keep and keep not in options and (keep in no_key or keep == default):
            options.insert(0, keep)
    if not options:
        st.warning("No models are available. Ask an admin to add a provider key.")
        st.stop()
    fallback = default if default in options else options[0]
    selected = wanted if wanted in options else fallback
    if force is not None or selected != stored:
        # Written, never deleted: the browser's widget is told, or it keeps showing (and
        # sends back) its old choice. The written value wins over ``index``.
        st.session_state[key] = selected
        index = 0
    else:
        # What a browser meeting this widget anew (after an interrupted run) shows.
        index = options.index(selected)
    labels = {
        m: option_label(m, catalog.get(m)) + (" · no key" if m in no_key else "") for m in options
    }
    chosen = st.selectbox(
        label,
        options,
        index=index,
        key=key,
        format_func=labels.__getitem__,
        help="Type to search by provider or name. Prices are USD per 1M tokens (in/out).",
    )
    picked = str(chosen if chosen is not None else selected)
    info = catalog.get(picked)
    if info is not None:
        st.markdown(badges_markdown(info))
    if picked in no_key:
        st.warning(
            "You have no key for this model's provider: a message skips it, going to your "
            "route's next model if there is one. Add a key on the Providers & keys page, "
            "or ask an admin for a team or organisation key.",
            icon=":material/key_off:",
        )
    return picked
