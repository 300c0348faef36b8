"""The per-route option flags of `route set`: adding them, reading them, showing them.

Every flag defaults to "not given", so `route set` changes only the options it is
told to and keeps the rest of the saved route's options. Values are read here and
range-checked by ``routes.check_options`` when the route is saved.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Collection
from dataclasses import fields, replace
from typing import Any, Final

from core.errors import InvalidInput
from core.settings.routes import MAX_RETRIES, MAX_TIMEOUT_S, RouteOptions, Weights

DEFAULT_WORD: Final = "default"  # clears temperature, max tokens or provider order

# (flag dest, RouteOptions field, help) for the on/off options.
SWITCHES: Final = (
    (
        "auto_fallback",
        "auto_fallback",
        "try the fallbacks when a model fails (--no-auto-fallback: only the first model)",
    ),
    (
        "cost_optimised",
        "cost_optimised",
        "order the chain by price, latency, quality and preference",
    ),
    (
        "content_failover",
        "content_refusal_failover",
        "on a content refusal try the next model (default: return the refusal)",
    ),
    (
        "drop_params",
        "drop_params",
        "leave out request fields a model does not take (default: refuse the request)",
    ),
)
# (flag dest, RouteOptions field, help) for the timeouts, all in seconds.
TIMEOUTS: Final = (
    ("connect_timeout", "connect_timeout_s", "seconds to open a connection (default 5)"),
    (
        "first_token_timeout",
        "first_token_timeout_s",
        "seconds to wait for the first token (default 10)",
    ),
    ("idle_timeout", "idle_timeout_s", "seconds a stream may pause between tokens (default 10)"),
    (
        "total_timeout",
        "total_timeout_s",
        "seconds for the whole request, fallbacks included (default 300)",
    ),
)
WEIGHT_NAMES: Final = tuple(f.name for f in fields(Weights))


def flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def add_option_flags(p: argparse.ArgumentParser) -> None:
    """The option flags; none given means every saved option stays as it is."""
    group = p.add_argument_group(
        "route options",
        "each one changes only that option; options not given keep their "
        "saved values (or the defaults for a new route)",
    )
    for dest, _, text in SWITCHES:
        group.add_argument(
            flag(dest), action=argparse.BooleanOptionalAction, default=None, help=text
        )
    for dest, _, text in TIMEOUTS:
        group.add_argument(flag(dest), metavar="S", help=f"{text}; up to {MAX_TIMEOUT_S:g}")
    group.add_argument(
        "--retries",
        metavar="N",
        help=f"retries per model on a transient error, 0 to {MAX_RETRIES} (default 2)",
    )
    group.add_argument(
        "--weights",
        metavar="NAME=W,…",
        help="cost-optimised score weights, e.g. price=0.5,latency=0.3 (names: "
        + ", ".join(WEIGHT_NAMES)
        + "; names not given keep their value)",
    )
    group.add_argument(
        "--temperature", metavar="T", help=f"0 to 2, or '{DEFAULT_WORD}' for the model's own"
    )
    group.add_argument(
        "--max-tokens",
        metavar="N",
        help=f"output token cap, or '{DEFAULT_WORD}' for the model's maximum",
    )
    group.add_argument(
        "--provider-order",
        metavar="P1,P2",
        help="preferred providers, best first (the preference part of the "
        f"cost-optimised score), or '{DEFAULT_WORD}' for none",
    )
    group.add_argument(
        "--reset-options",
        action="store_true",
        help="start from the default options instead of the saved ones",
    )


def option_changes(
    args: argparse.Namespace, base: RouteOptions, known_providers: Collection[str]
) -> dict[str, Any]:
    """The RouteOptions fields the flags set, by name; empty when no option flag was given."""
    changes: dict[str, Any] = {}
    for dest, name, _ in SWITCHES:
        if getattr(args, dest) is not None:
            changes[name] = getattr(args, dest)
    for dest, name, _ in TIMEOUTS:
        if getattr(args, dest) is not None:
            changes[name] = _number(getattr(args, dest), flag(dest), "seconds, e.g. 30 or 0.5")
    if args.retries is not None:
        changes["max_retries"] = _whole(args.retries, "--retries", f"0 to {MAX_RETRIES}")
    if args.weights is not None:
        changes["weights"] = _weights(args.weights, base.weights)
    if args.temperature is not None:
        changes["temperature"] = (
            None
            if _is_default(args.temperature)
            else _number(args.temperature, "--temperature", "0 to 2")
        )
    if args.max_tokens is not None:
        changes["max_tokens"] = (
            None
            if _is_default(args.max_tokens)
            else _whole(args.max_tokens, "--max-tokens", "e.g. 4096")
        )
    if args.provider_order is not None:
        changes["provider_order"] = _providers(args.provider_order, known_providers)
    return changes


def describe(options: RouteOptions) -> str:
    """The non-default options, written as the flags that would set them ("" if none)."""
    changed = options.changed()
    parts: list[str] = []
    for dest, name, _ in SWITCHES:
        if name in changed:
            parts.append(flag(dest if changed[name] else f"no_{dest}"))
    for dest, name, _ in TIMEOUTS:
        if name in changed:
            parts.append(f"{flag(dest)} {changed[name]:g}")
    if "max_retries" in changed:
        parts.append(f"--retries {options.max_retries}")
    if "weights" in changed:
        parts.append(
            "--weights " + ",".join(f"{n}={getattr(options.weights, n):g}" for n in WEIGHT_NAMES)
        )
    if "temperature" in changed:
        parts.append(f"--temperature {options.temperature:g}")
    if "max_tokens" in changed:
        parts.append(f"--max-tokens {options.max_tokens}")
    if "provider_order" in changed:
        parts.append("--provider-order " + ",".join(options.provider_order))
    return " ".join(parts)


def _is_default(raw: str) -> bool:
    return raw.strip().lower() == DEFAULT_WORD


def _number(raw: str, name: str, hint: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(f"{name} {raw!r} is not a number; use {hint}.") from None
    if not math.isfinite(value):
        raise InvalidInput(f"{name} {raw!r} is not a finite number; use {hint}.")
    return value


def _whole(raw: str, name: str, hint: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(f"{name} {raw!r} is not a whole number; use {hint}.") from None


def _weights(raw: str, current: Weights) -> Weights:
    """``price=0.5,latency=0.3``: the named weights change, the others keep their value."""
    changed: dict[str, float] = {}
    for pair in (p.strip() for p in raw.split(",") if p.strip()):
        name, sep, value = pair.partition("=")
        name = name.strip().lower()
        if not sep or name not in WEIGHT_NAMES:
            raise InvalidInput(
                f"--weights {pair!r} is not NAME=WEIGHT; use e.g. price=0.5,latency=0.3 "
                f"with names from {', '.join(WEIGHT_NAMES)}."
            )
        changed[name] = _number(value.strip(), f"--weights {name}", "a weight such as 0.25")
    if not changed:
        raise InvalidInput("--weights is empty; use e.g. price=0.5,latency=0.3.")
    return replace(current, **changed)


def _providers(raw: str, known: Collection[str]) -> tuple[str, ...]:
    if _is_default(raw):
        return ()
    order = tuple(dict.fromkeys(p.strip().lower() for p in raw.split(",") if p.strip()))
    unknown = [p for p in order if p not in known]
    if unknown:
        raise InvalidInput(
            f"--provider-order: unknown provider {unknown[0]!r}. Use names from "
            f"`switchboard provider list` or `switchboard models`, or '{DEFAULT_WORD}'."
        )
    if not order:
        raise InvalidInput(f"--provider-order is empty; name providers, or use '{DEFAULT_WORD}'.")
    return order
