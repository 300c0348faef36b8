"""Route option widgets shared by the route editors (Model preferences, Admin > Routes)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

from core.settings.routes import MAX_RETRIES, MAX_TIMEOUT_S, RouteOptions, Weights

_TIMEOUT_FIELDS = (
    ("connect_timeout_s", "Connect", "t_connect"),
    ("first_token_timeout_s", "First token", "t_first"),
    ("idle_timeout_s", "Stream idle", "t_idle"),
    ("total_timeout_s", "Total", "t_total"),
)


def limit_fields(opts: RouteOptions, prefix: str = "") -> dict[str, Any]:
    """Timeouts, retries and the content-refusal switch, in an expander.

    Returns only the fields edited here, to merge over the saved options so that the
    ones other sections own (provider order, temperature, ...) are kept.
    """
    with st.expander("Timeouts, retries and content refusals"):
        st.caption(
            "Seconds. A timed-out model is not retried; the next one in the chain is "
            "tried while the total time allows."
        )
        edited: dict[str, Any] = {
            name: float(
                col.number_input(
                    label, 0.0, MAX_TIMEOUT_S, float(getattr(opts, name)), 1.0, key=prefix + key
                )
            )
            for col, (name, label, key) in zip(st.columns(4), _TIMEOUT_FIELDS, strict=True)
        }
        r1, r2 = st.columns(2)
        edited["max_retries"] = int(
            r1.number_input(
                f"Retries per model (0-{MAX_RETRIES})",
                0,
                MAX_RETRIES,
                opts.max_retries,
                1,
                key=prefix + "max_retries",
                help="On a transient error (429, 5xx, reset), with backoff.",
            )
        )
        edited["content_refusal_failover"] = r2.toggle(
            "Fail over on a content refusal",
            value=opts.content_refusal_failover,
            key=prefix + "content_failover",
            help="Off: the provider's refusal is returned as the answer.",
        )
        edited["drop_params"] = r2.toggle(
            "Drop fields a model does not take",
            value=opts.drop_params,
            key=prefix + "drop_params",
            help="Off: a request with such a field (e.g. logprobs for Claude) gets a 400. "
            "On: the field is left out and listed in x-switchboard-dropped-params.",
        )
    return edited


def weight_fields(opts: RouteOptions, prefix: str = "") -> Weights:
    """The four cost-optimised score weights, with the formula they make."""
    w1, w2, w3, w4 = st.columns(4)
    w = opts.weights
    weights = Weights(
        price=w1.number_input("Price weight", 0.0, 1.0, w.price, 0.05, key=prefix + "w_price"),
        latency=w2.number_input(
            "Latency weight", 0.0, 1.0, w.latency, 0.05, key=prefix + "w_latency"
        ),
        quality=w3.number_input(
            "Quality weight", 0.0, 1.0, w.quality, 0.05, key=prefix + "w_quality"
        ),
        preference=w4.number_input(
            "Preference weight", 0.0, 1.0, w.preference, 0.05, key=prefix + "w_pref"
        ),
    )
    st.caption(
        f"Score = price × {weights.price:.2f} + latency × {weights.latency:.2f} + "
        f"quality × {weights.quality:.2f} + preference × {weights.preference:.2f}; "
        "each part is 0..1, higher is better."
    )
    return weights


def chain_fields(
    choices: Sequence[str],
    saved: Sequence[str],
    label: Callable[[str], str],
    *,
    prefix: str,
    suffix: str,
    start: str | None = None,
) -> tuple[str | None, list[str]]:
    """The primary model and its fallbacks in order, filled from the ``saved`` chain.

    ``start`` pre-selects a model when nothing is saved (a recommendation). Widget keys
    are ``{prefix}_model_{suffix}`` and ``{prefix}_fallbacks_{suffix}``.
    """
    first = saved[0] if saved else start
    options = list(choices)
    if first is not None and first not in options:
        options.insert(0, first)  # a saved model no longer offered stays visible
    model = st.selectbox(
        "Model",
        options,
        format_func=label,
        key=f"{prefix}_model_{suffix}",
        index=options.index(first) if first in options else None,
        placeholder="choose the primary model",
    )
    fallbacks = st.multiselect(
        "Fallbacks, in order",
        [m for m in options if m != model],
        format_func=label,
        default=[m for m in saved[1:] if m in options and m != model],
        key=f"{prefix}_fallbacks_{suffix}",
    )
    return model, fallbacks
