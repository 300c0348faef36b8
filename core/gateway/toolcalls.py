"""Tool calls assembled from streamed fragments, and held until the model has finished
(with the signed thinking blocks a caller must hand back beside them).

Providers stream a call as its id and name, then its arguments in pieces. The gateway
does not pass those pieces on as they come: it keeps them here and hands the caller
every call of the turn whole, once the upstream has finished its answer. Why:

* a client cannot act on half a call's arguments anyway (it parses the JSON first);
* a stream cut mid-arguments then leaves nothing of the calls with the caller, so the
  next model in the chain can answer instead, invisibly if no text went out before;
* a turn's parallel calls are one unit: an agent runs them together, and a turn with
  some of its calls is as wrong as a call with half its arguments.

The price is that a streaming client sees the calls at the end of the turn rather than
argument by argument.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.request import ToolCall
from core.upstream.calls import ToolCallDelta


@dataclass
class _Building:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class ToolCallAssembler:
    """Collects one upstream answer's tool-call fragments into whole calls."""

    def __init__(self) -> None:
        self._calls: dict[int, _Building] = {}

    def __bool__(self) -> bool:
        return bool(self._calls)

    def feed(self, deltas: tuple[ToolCallDelta, ...]) -> None:
        for delta in deltas:
            building = self._calls.setdefault(delta.index, _Building())
            if delta.id:
                building.id = delta.id
            if delta.name and not building.name:
                building.name = delta.name
            if delta.arguments:
                building.arguments.append(delta.arguments)

    @property
    def chars(self) -> int:
        """How much the model generated for the calls so far (for a usage estimate)."""
        return sum(len(b.name) + sum(map(len, b.arguments)) for b in self._calls.values())

    def calls(self) -> tuple[ToolCall, ...]:
        """The calls in the order the model made them, numbered from 0 for the caller."""
        ordered = [self._calls[i] for i in sorted(self._calls)]
        return tuple(
            ToolCall(n, b.id or f"call_{n}", b.name, "".join(b.arguments))
            for n, b in enumerate(ordered)
        )


def joined_thinking(pieces: list[Mapping[str, Any]]) -> tuple[dict[str, Any], ...]:
    """Streamed thinking-block pieces as whole blocks: text joined, the signature kept.

    litellm streams Anthropic's thinking as blocks holding a piece of the text each,
    then one holding only the signature that closes the block.
    """
    blocks: list[dict[str, Any]] = []
    for piece in pieces:
        last = blocks[-1] if blocks else None
        open_block = last is not None and last.get("type") == "thinking"
        if piece.get("type") == "thinking" and open_block and last and not last.get("signature"):
            last["thinking"] = str(last.get("thinking") or "") + str(piece.get("thinking") or "")
            if piece.get("signature"):
                last["signature"] = piece["signature"]  # the block is whole now
        else:
            blocks.append(dict(piece))
    return tuple(blocks)
