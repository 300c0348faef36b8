"""One chat turn: send the whole conversation through the gateway and keep its rows in step.

The page calls :meth:`ChatTurn.start` (which waits for the first event, so a refusal
or an answer-less failure is known before anything is saved), then hands
:meth:`ChatTurn.texts` to ``st.write_stream``. The answer is saved as it grows and
finished in a ``finally``: a Stop click or any rerun that abandons the generator leaves
the partial answer stored as ``stopped``; an answer that ends in an error is stored as
``incomplete``. Nothing here imports streamlit.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.chat import conversations
from core.chat.conversations import STATUS_COMPLETE, STATUS_INCOMPLETE, STATUS_STOPPED, MessageInfo
from core.chat.view import details_of
from core.clock import utc_now
from core.errors import InvalidInput, SwitchboardError
from core.gateway.sync_bridge import SyncGateway
from core.money.catalog import Catalog
from core.money.pricing import estimate_prompt_tokens
from core.request import Caller, ChatRequest, Done, Message, StreamEvent, Summary, TextDelta
from core.settings import routes
from core.store.tables import RouteRow

TASKS: Final = ("chat", "outline", "chapter", "refine", "code")
# Picked when no route exists, in this order: common, cheap, good at chat.
FALLBACK_DEFAULTS: Final = (
    "openai/gpt-4o-mini",
    "anthropic/claude-3-5-haiku-20241022",
    "anthropic/claude-3-haiku-20240307",
    "openai/gpt-4o",
)
SAVE_EVERY_S: Final = 1.0


def known_tasks(session: Session) -> list[str]:
    """The usual tasks, plus any task an admin has given a route."""
    routed = session.scalars(select(RouteRow.task).where(RouteRow.task != "").distinct())
    return list(dict.fromkeys([*TASKS, *sorted(routed)]))


@dataclass(frozen=True, slots=True)
class DefaultModel:
    model: str
    chain: tuple[str, ...]
    note: str | None  # says why, when there is no route and a catalog default was chosen
    cost_optimised: bool = False  # the route reorders its chain per request


def default_model(
    session: Session,
    caller: Caller,
    task: str,
    catalog: Catalog,
    profile: str | None = None,
    usable: Sequence[str] | None = None,
) -> DefaultModel:
    """The first model of the caller's route for ``task`` (in ``profile``), or a catalog model.

    Without a route the pick is a common default the caller can use (``usable``, when
    given), so a fresh picker never starts at a model that has no key.
    """
    try:
        route = routes.resolve(
            session, caller, model="auto", fallbacks=None, task=task, profile=profile
        )
        return DefaultModel(route.chain[0], route.chain, None, route.options.cost_optimised)
    except InvalidInput:
        pass
    known = [m for m in FALLBACK_DEFAULTS if catalog.get(m) is not None]
    allowed = set(usable or ())
    pick = next((m for m in known if m in allowed), None)
    if pick is None:
        # Something usable; with nothing usable, the common default (it then says "no key").
        pick = usable[0] if usable else (known[0] if known else catalog.models()[0].id)
    return DefaultModel(
        pick,
        (pick,),
        f"No route is set for you or the task “{task}”, so the model starts at {pick} with "
        "no fallback. An admin can set a route with `switchboard route set`.",
    )


def history_messages(items: Sequence[MessageInfo], system_prompt: str = "") -> list[Message]:
    """The stored conversation as OpenAI messages; what the user saw is what models see."""
    out: list[Message] = []
    if system_prompt.strip():
        out.append({"role": "system", "content": system_prompt.strip()})
    out += [
        {"role": m.role, "content": m.content}
        for m in items
        if m.role in ("user", "assistant") and m.content
    ]
    return out


def tokens_so_far(items: Sequence[MessageInfo], system_prompt: str = "") -> int:
    """Prompt tokens the conversation already brings to the next message; 0 when empty."""
    messages = history_messages(items, system_prompt)
    return estimate_prompt_tokens(messages) if messages else 0


@dataclass(frozen=True, slots=True)
class TurnPlan:
    """Everything one send needs, decided by the page before the gateway is called."""

    caller: Caller
    prompt: str
    history: tuple[MessageInfo, ...]
    model: str  # "auto" when the route's own choice stands
    picked_model: str  # what the picker showed; remembered by the conversation
    task: str
    settings: Mapping[str, Any]  # temperature, max_tokens, system_prompt
    profile: str | None = None
    conversation_id: str | None = None

    def request(self, request_id: str, conversation_id: str | None) -> ChatRequest:
        system = str(self.settings.get("system_prompt") or "")
        messages = [
            *history_messages(self.history, system),
            {"role": "user", "content": self.prompt},
        ]
        temperature = self.settings.get("temperature")
        max_tokens = self.settings.get("max_tokens")
        return ChatRequest(
            caller=self.caller,
            messages=tuple(messages),
            model=self.model,
            task=self.task,
            source="chat",
            stream=True,
            temperature=float(temperature) if temperature is not None else None,
            max_tokens=int(max_tokens) if max_tokens else None,
            conversation_id=conversation_id,
            profile=self.profile,
            request_id=request_id,
        )


class ChatTurn:
    """Streams one answer; see the module docstring for how it is saved."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        gateway: SyncGateway,
        plan: TurnPlan,
        *,
        clock: Callable[[], datetime] = utc_now,
        save_every_s: float = SAVE_EVERY_S,
    ) -> None:
        if not plan.prompt.strip():
            raise InvalidInput("Type a message first.")
        self._sessions = sessions
        self._gateway = gateway
        self.plan = plan
        self._clock = clock
        self._save_every_s = save_every_s
        self.request_id = uuid.uuid4().hex
        # A new conversation gets its id now, so the ledger row can name it.
        self.conversation_id = plan.conversation_id or uuid.uuid4().hex
        self._new = plan.conversation_id is None
        self._events: Iterator[StreamEvent] | None = None
        self._first: StreamEvent | None = None
        self.text = ""
        self.summary: Summary | None = None  # from the Done event: the answer ran to its end
        # Every admitted request's summary, from the gateway, a stopped one's included.
        self._reported: Summary | None = None
        self.message_id: int | None = None
        self.status: str | None = None  # the answer's message status once finished
        # Set once the answer's final state is committed. Streamlit's fast reruns start the
        # next run while this one unwinds, so the next run waits on it before reading.
        self.saved = threading.Event()

    # --- the page's calls -----------------------------------------------------------

    def start(self) -> SwitchboardError | None:
        """Wait for the first event. Returns the error when no answer came at all.

        A refusal before any work (rate limit, bad input) or a run that ended without a
        word (every model failed, budget refused, no key) saves nothing: the user's
        message stays with the page, to be sent again.
        """
        request = self.plan.request(self.request_id, self.conversation_id)
        self._events = iter(self._gateway.stream(request, self._report))
        first = next(self._events)  # SwitchboardError propagates: refused before any work
        if isinstance(first, Done):
            self.summary = first.summary
            if first.summary.error is not None:
                return first.summary.error
        self._first = first
        return None

    def texts(self) -> Generator[str, None, None]:
        """The answer's text for st.write_stream; saves as it goes and when abandoned."""
        assert self._events is not None, "call start() first"
        last_save = time.monotonic()
        try:
            if isinstance(self._first, TextDelta):
                self.text += self._first.text
                yield self._first.text
            self._save_start()  # after the first token is on screen, not before
            if self.summary is None:
                for event in self._events:
                    if isinstance(event, TextDelta):
                        self.text += event.text
                        yield event.text
                        if time.monotonic() - last_save >= self._save_every_s:
                            self._save_progress()
                            last_save = time.monotonic()
                    else:
                        self.summary = event.summary
        finally:
            self._finish()

    @property
    def final_summary(self) -> Summary | None:
        """How the request ended: its Done summary, or the gateway's report of a stop."""
        return self.summary or self._reported

    def run_to_end(self) -> str:
        """Consume the whole answer without a page (the CLI, tests, benchmarks)."""
        return "".join(self.texts())

    # --- saving -----------------------------------------------------------------------

    def _save_start(self) -> None:
        now = self._clock()
        plan = self.plan
        with self._sessions.begin() as s:
            if self._new:
                conversations.create(
                    s,
                    user_id=plan.caller.user_id,
                    title=conversations.auto_title(plan.prompt),
                    model=plan.picked_model,
                    task=plan.task,
                    settings=plan.settings,
                    now=now,
                    conversation_id=self.conversation_id,
                )
                self._new = False
            else:
                conversations.remember(
                    s,
                    plan.caller.user_id,
                    self.conversation_id,
                    model=plan.picked_model,
                    task=plan.task,
                    settings=plan.settings,
                    now=now,
                )
            conversations.add_message(
                s,
                plan.caller.user_id,
                self.conversation_id,
                role="user",
                content=plan.prompt,
                now=now,
            )
            self.message_id = conversations.add_message(
                s,
                plan.caller.user_id,
                self.conversation_id,
                role="assistant",
                content=self.text,
                now=now,
                status=STATUS_INCOMPLETE,
                request_id=self.request_id,
            )

    def _save_progress(self) -> None:
        if self.message_id is None:
            return
        with self._sessions.begin() as s:
            conversations.update_message(
                s,
                self.plan.caller.user_id,
                self.message_id,
                content=self.text,
                status=STATUS_INCOMPLETE,
            )

    def _report(self, summary: Summary) -> None:
        self._reported = summary  # on the gateway's loop; read after the stream is closed

    def _close_events(self) -> None:
        # Leaving the gateway's stream records an unfinished request as stopped; the close
        # returns once the gateway has reported that request's summary.
        close = getattr(self._events, "close", None)
        if callable(close):
            close()

    def _finish(self) -> None:
        try:
            details = self._final_details()
            if self.message_id is None:
                if not self.text and self.summary is None:
                    return  # stopped before the first token: nothing to keep
                self._save_start()  # stopped or ended before the first save
            assert self.message_id is not None
            with self._sessions.begin() as s:
                conversations.update_message(
                    s,
                    self.plan.caller.user_id,
                    self.message_id,
                    content=self.text,
                    status=self.status or STATUS_STOPPED,
                    model=details.get("model"),
                    details=details,
                )
        finally:
            self.saved.set()
            self._close_events()

    def _final_details(self) -> dict[str, Any]:
        """The answer's status and badge details; a stopped one keeps model, tokens and cost."""
        summary = self.summary
        if summary is None:
            # Stopped: end the request first, so the gateway reports what it used.
            self._close_events()
            self.status = STATUS_STOPPED
            details: dict[str, Any] = {"status": "stopped"}
            if self._reported is not None:
                details = details_of(self._reported) | {"status": "stopped"}
        else:
            self.status = STATUS_INCOMPLETE if summary.error is not None else STATUS_COMPLETE
            details = details_of(summary)
        # The model the picker showed, so the page can say when another one answered.
        details["picked_model"] = self.plan.picked_model
        return details

    def close(self) -> None:
        """Finish a turn whose texts() never ran (interrupted before streaming began)."""
        if self.status is not None or self._events is None:
            self.saved.set()
            return
        if self._first is None:  # no answer began: nothing to keep
            self.saved.set()
            self._close_events()
            return
        if isinstance(self._first, TextDelta) and not self.text:
            self.text = self._first.text
        self._finish()
