"""Process-wide resources, built once per process with st.cache_resource.

Nothing per-user (and no secret of a user) is cached here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core import db
from core.catalog import Catalog, load_catalog
from core.config import Settings, load_settings, resolve_cookie_key

log = logging.getLogger("switchboard")


@dataclass(frozen=True)
class Services:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    cookie_key: str


def services() -> Services:
    """The services for the current settings (re-read each run; built once per distinct set)."""
    settings = load_settings()
    return _services_for(settings.model_dump_json())


@st.cache_resource(show_spinner="Opening the database…")
def _services_for(fingerprint: str) -> Services:
    # The fingerprint only keys the cache (secrets in it are masked); read the real values.
    settings = load_settings()
    engine = db.make_engine(settings.database_url)
    db.upgrade_database(engine)
    cookie_key, generated = resolve_cookie_key(settings)
    if generated is not None:
        _announce_generated_key(generated)
    return Services(settings, engine, db.make_session_factory(engine), cookie_key)


def _announce_generated_key(path: Path) -> None:
    message = (
        f"Development mode: generated a sign-in cookie key into {path} (mode 0600). "
        "Set SWITCHBOARD_COOKIE_KEY in production."
    )
    print(message, flush=True)


@st.cache_resource(show_spinner="Loading the model catalog…")
def catalog() -> Catalog:
    return load_catalog()
