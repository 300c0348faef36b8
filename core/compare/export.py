"""A comparison session as Markdown, CSV or JSON, exactly as its viewer may see it.

Blind rounds the viewer has not voted on keep their labels ("Model A"), so an export
never reveals what the page hides.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from core.compare.comparisons import AnswerView, RoundView, SessionView
from core.request import micros_to_usd

CSV_COLUMNS = (
    "round",
    "kind",
    "prompt",
    "label",
    "model",
    "status",
    "error",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "latency_ms",
    "ttft_ms",
    "length",
    "my_vote",
    "answer",
)


def _cost(micros: int | None, priced: bool = True) -> str:
    if micros is None or not priced:
        return "unpriced"
    return f"{micros_to_usd(micros):f}"


def _answer_cost(r: RoundView, a: AnswerView) -> str:
    # A price can give a blind answer away, so it stays hidden like the name.
    return _cost(a.cost_micros, a.priced) if r.revealed else "after your vote"


def _vote_text(r: RoundView) -> str:
    vote = r.my_vote
    if vote is None:
        return ""
    if vote.choice == "best":
        label = r.label_of(vote.winner or "")
        return f"best: {vote.winner} ({label})" if label else "best"
    return "tie" if vote.choice == "tie" else "all bad"


def _answer_dict(r: RoundView, a: AnswerView) -> dict[str, Any]:
    return {
        "label": a.label,
        "model": a.model if r.revealed else None,
        "status": a.status,
        "error": a.error,
        "text": a.text,
        "prompt_tokens": a.prompt_tokens,
        "completion_tokens": a.completion_tokens,
        "cost_usd": _answer_cost(r, a),
        "latency_ms": a.latency_ms,
        "ttft_ms": a.ttft_ms,
        "length": a.length,
    }


def to_json(view: SessionView) -> str:
    data = {
        "id": view.id,
        "title": view.title,
        "owner": view.owner,
        "task": view.task,
        "system_prompt": view.system_prompt,
        "models": list(view.models) if view.all_revealed else None,
        "blind": view.blind,
        "fallbacks": view.fallbacks,
        "temperature": view.temperature,
        "max_tokens": view.max_tokens,
        "created_at": view.created_at.isoformat(),
        "cost_usd": _cost(view.cost_micros),
        "rounds": [
            {
                "seq": r.seq,
                "kind": r.kind,
                "prompt": r.prompt,
                "created_at": r.created_at.isoformat(),
                "cost_usd": _cost(r.cost_micros),
                "votes": r.votes,
                "my_vote": _vote_text(r) or None,
                "my_comment": r.my_vote.comment if r.my_vote else None,
                "answers": [_answer_dict(r, a) for a in r.answers],
            }
            for r in view.rounds
        ],
    }
    return json.dumps(data, indent=2, ensure_ascii=False)


def to_csv(view: SessionView) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for r in view.rounds:
        for a in r.answers:
            writer.writerow(
                [
                    r.seq,
                    r.kind,
                    r.prompt,
                    a.label,
                    a.model if r.revealed else "",
                    a.status,
                    a.error or "",
                    a.prompt_tokens,
                    a.completion_tokens,
                    _answer_cost(r, a),
                    a.latency_ms,
                    "" if a.ttft_ms is None else a.ttft_ms,
                    a.length,
                    _vote_text(r),
                    a.text,
                ]
            )
    return out.getvalue()


def to_markdown(view: SessionView) -> str:
    lines = [f"# {view.title}", ""]
    facts = [
        f"owner {view.owner}",
        f"task {view.task or '(none)'}",
        "blind" if view.blind else "names shown",
        f"total cost {_cost(view.cost_micros)}",
    ]
    if view.all_revealed:
        facts.insert(0, "models " + ", ".join(view.models))
    lines += ["- " + " · ".join(facts), ""]
    if view.system_prompt:
        lines += ["**System prompt**", "", _quote(view.system_prompt), ""]
    for r in view.rounds:
        lines += [
            f"## Round {r.seq}" + (" (batch)" if r.kind == "batch" else ""),
            "",
            _quote(r.prompt),
            "",
        ]
        for a in r.answers:
            lines.append(f"### {r.name(a)}")
            lines.append("")
            lines.append(
                f"*{a.prompt_tokens} tokens in, {a.completion_tokens} out · "
                f"cost {_answer_cost(r, a)} · {a.latency_ms} ms*"
            )
            lines.append("")
            lines.append(f"> Error: {a.error}" if a.error else (a.text or "*(empty)*"))
            lines.append("")
        vote = _vote_text(r)
        if vote:
            lines += [
                f"**Your vote:** {vote}"
                + (f" — {r.my_vote.comment}" if r.my_vote and r.my_vote.comment else ""),
                "",
            ]
    return "\n".join(lines).rstrip() + "\n"


def _quote(text: str) -> str:
    return "\n".join("> " + line for line in text.splitlines())


def result_rows(view: SessionView) -> list[dict[str, Any]]:
    """One row per prompt and answer, for the batch results table."""
    return [
        {
            "round": r.seq,
            "prompt": r.prompt,
            "model": r.name(a),
            "status": "error" if a.error else a.status,
            "tokens in": a.prompt_tokens,
            "tokens out": a.completion_tokens,
            "cost $": _answer_cost(r, a),
            "latency ms": a.latency_ms,
            "answer": a.error or a.text,
        }
        for r in view.rounds
        for a in r.answers
    ]


def model_totals(view: SessionView) -> list[dict[str, Any]]:
    """Per model over every round the viewer may see by name: answers, failures, tokens, cost."""
    totals: dict[str, dict[str, Any]] = {}
    for r in view.rounds:
        if not r.revealed:
            continue
        for a in r.answers:
            t = totals.setdefault(
                a.model,
                {
                    "model": a.model,
                    "answers": 0,
                    "failed": 0,
                    "tokens in": 0,
                    "tokens out": 0,
                    "_cost": 0,
                    "_latencies": [],
                },
            )
            t["answers"] += 1
            t["failed"] += 0 if a.ok else 1
            t["tokens in"] += a.prompt_tokens
            t["tokens out"] += a.completion_tokens
            if t["_cost"] is not None:
                t["_cost"] = (
                    None if a.cost_micros is None or not a.priced else (t["_cost"] + a.cost_micros)
                )
            if a.ok:
                t["_latencies"].append(a.latency_ms)
    rows = []
    for t in totals.values():
        latencies = sorted(t.pop("_latencies"))
        t["cost $"] = _cost(t.pop("_cost"))
        t["median latency ms"] = latencies[(len(latencies) - 1) // 2] if latencies else None
        rows.append(t)
    return rows
