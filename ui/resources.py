"""Process-wide resources, built once per process with st.cache_resource.

Nothing per-user (and no secret of a user) is cached here.
"""

from __future__ import annotations

import atexit
import logging
from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.api import heap
from core.config import Settings, generated_cookie_key_message, load_settings, resolve_cookie_key
from core.gateway.runtime import Runtime, build_runtime
from core.gateway.sync_bridge import SyncGateway
from core.money.catalog import Catalog

log = logging.getLogger("switchboard")


@dataclass(frozen=True)
class Services:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    cookie_key: str
    runtime: Runtime
    gateway: SyncGateway  # the process's one gateway, driven from page scripts

    @property
    def catalog(self) -> Catalog:
        return self.runtime.catalog

    def close(self) -> None:
        """Write the ledger rows still queued, then release the database."""
        self.gateway.close()
        self.engine.dispose()


def services() -> Services:
    """The services for the current settings (re-read each run; built once per distinct set)."""
    settings = load_settings()
    return _services_for(settings.model_dump_json())


@st.cache_resource(show_spinner="Opening the database…")
def _services_for(fingerprint: str) -> Services:
    # The fingerprint only keys the cache (secrets in it are masked); read the real values.
    settings = load_settings()
    runtime = build_runtime(settings)
    heap.freeze_startup_heap()  # once per process: full GC passes skip the start-up heap
    cookie_key, generated = resolve_cookie_key(settings)
    if generated is not None:
        _announce_generated_key(generated)
    built = Services(
        settings,
        runtime.engine,
        runtime.sessions,
        cookie_key,
        runtime,
        SyncGateway(runtime.gateway),
    )
    # Streamlit ends on SIGTERM or Ctrl+C with a normal interpreter exit, which runs
    # this: rows queued from the chat and compare pages are written, not dropped with
    # the writer's daemon thread.
    atexit.register(built.close)
    return built


def _announce_generated_key(path: Path) -> None:
    print(generated_cookie_key_message(path), flush=True)


def catalog() -> Catalog:
    return services().catalog
