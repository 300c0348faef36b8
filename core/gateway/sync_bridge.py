"""Drive the async Gateway from synchronous code (Streamlit scripts) on one background loop.

Streamlit runs each page script on its own thread without an event loop. The gateway
is async, so one loop on a daemon thread serves every session of the process: slow
providers never block one another, and several streams (a comparison round) run at once.
A consumer that stops iterating cancels its streams; the gateway then records each
unfinished request as stopped, with the usage that had arrived.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
from collections.abc import Iterator, Sequence
from contextlib import aclosing
from typing import Final

from core.errors import SwitchboardError
from core.gateway.gateway import Gateway, SummarySink
from core.request import ChatRequest, Completion, Done, StreamEvent, TextDelta

log = logging.getLogger("switchboard.gateway")

_END: Final = object()
_POLL_S = 0.5
_CANCEL_WAIT_S = 5.0


class GatewayCrashed(SwitchboardError):
    """A bug below the gateway's own error handling; the message hides the details."""

    code = "gateway_error"


class SyncGateway:
    def __init__(self, gateway: Gateway, *, thread_name: str = "switchboard-gateway") -> None:
        self.gateway = gateway
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=thread_name, daemon=True
        )
        self._thread.start()

    def complete(self, request: ChatRequest, timeout_s: float | None = None) -> Completion:
        """The whole answer; raises SwitchboardError when no model answered fully."""
        future = asyncio.run_coroutine_threadsafe(self.gateway.complete(request), self._loop)
        try:
            return future.result(timeout_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise
        except SwitchboardError:
            raise
        except Exception as exc:
            log.exception("gateway call failed")
            raise GatewayCrashed("The gateway hit an internal error; see the server log.") from exc

    def stream(
        self, request: ChatRequest, on_summary: SummarySink | None = None
    ) -> Iterator[StreamEvent]:
        """Events of one request; a refusal before any work raises SwitchboardError.

        ``on_summary`` (see ``Gateway.stream``) is called on the gateway's loop, also for a
        request stopped by closing this iterator, before that close returns.
        """
        sinks = None if on_summary is None else [on_summary]
        for _, item in self.stream_many([request], sinks):
            if isinstance(item, SwitchboardError):
                raise item
            yield item

    def stream_many(
        self,
        requests: Sequence[ChatRequest],
        on_summary: Sequence[SummarySink] | None = None,
    ) -> Iterator[tuple[int, StreamEvent | SwitchboardError]]:
        """Events of several requests run at once, tagged with the request's index.

        A request refused before any work yields its SwitchboardError instead of
        events; the others carry on. Each request ends with its own Done event.
        ``on_summary``, one per request, as for ``stream``.
        """
        events: queue.Queue[tuple[int, object]] = queue.Queue()

        async def pump(index: int, request: ChatRequest) -> None:
            try:
                sink = on_summary[index] if on_summary is not None else None
                async with aclosing(self.gateway.stream(request, sink)) as stream:
                    async for event in stream:
                        events.put((index, event))
            except SwitchboardError as exc:
                events.put((index, exc))
            except Exception:
                log.exception("gateway stream failed")
                events.put(
                    (index, GatewayCrashed("The gateway hit an internal error; see the log."))
                )
            finally:
                events.put((index, _END))

        finished = threading.Event()

        async def run_all() -> None:
            try:
                await asyncio.gather(*(pump(i, r) for i, r in enumerate(requests)))
            finally:
                finished.set()

        future = asyncio.run_coroutine_threadsafe(run_all(), self._loop)
        remaining = len(requests)
        try:
            while remaining:
                try:
                    index, item = events.get(timeout=_POLL_S)
                except queue.Empty:
                    if future.done() and events.empty():
                        break  # the loop died under us; nothing more will come
                    continue
                if item is _END:
                    remaining -= 1
                    continue
                assert isinstance(item, (SwitchboardError, TextDelta, Done))
                yield index, item
        finally:
            if not future.done():
                # The consumer left (a Stop button, a rerun): cancel, and wait briefly so
                # the gateway has recorded the partial usage before the page moves on.
                # (future.result would return at once: the proxy future cancels eagerly.)
                future.cancel()
                finished.wait(_CANCEL_WAIT_S)

    def stop(self) -> None:
        """Close the upstream clients made on this loop, then stop the loop."""
        closing = asyncio.run_coroutine_threadsafe(self.gateway.aclose(), self._loop)
        try:
            closing.result(5)
        except Exception:
            log.debug("closing upstream clients failed", exc_info=True)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def close(self) -> None:
        """Stop, then flush the ledger and close the gateway."""
        self.stop()
        self.gateway.close()
