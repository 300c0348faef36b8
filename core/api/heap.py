"""Garbage-collector set-up for a long-running gateway process.

A full (generation 2) collection walks every tracked object. After start-up that is
litellm's, pydantic's, SQLAlchemy's and Streamlit's million-object module graph,
which never becomes garbage; under load each full pass stalled the event loop for up
to ~250 ms (measured by ``make bench``). Freezing it once, after start-up, moves it
out of the collector's reach; everything created later is collected as usual.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Collect what start-up left behind, then exempt the survivors from later passes.

    Once per process: a second freeze would also pin whatever later work left alive.
    """
    if gc.get_freeze_count():
        return
    gc.collect()
    gc.freeze()
