"""Everything one process needs, built once: engine, sessions, catalog, cipher, gateway.

The dashboard caches one Runtime with st.cache_resource; the API and CLI build one
at start. Nothing here is global: callers hold the object and close it on exit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.accounts.secrets import Cipher, load_cipher, quiet_litellm
from core.config import Settings, load_settings
from core.gateway.gateway import Gateway, GatewaySettings
from core.money.catalog import Catalog, load_catalog
from core.store import db
from core.store.journal import Journal
from core.upstream.breaker import BreakerPolicy
from core.upstream.litellm_calls import CompletionFn


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    catalog: Catalog
    cipher: Cipher
    gateway: Gateway

    def close(self) -> None:
        """Flush the ledger, then release database connections."""
        self.gateway.close()
        self.engine.dispose()


def gateway_settings_from(settings: Settings) -> GatewaySettings:
    breaker = BreakerPolicy(
        failure_rate=settings.breaker_failure_rate,
        min_calls=settings.breaker_min_calls,
        cooldown_s=settings.breaker_cooldown_s,
    )
    return GatewaySettings(
        default_rpm=settings.rate_rpm,
        default_tpm=settings.rate_tpm,
        breaker=breaker,
        db_wait_s=settings.db_wait_s,
    )


def build_runtime(
    settings: Settings | None = None,
    *,
    completion: CompletionFn | None = None,
    gateway_settings: GatewaySettings | None = None,
    environ: Mapping[str, str] | None = None,
    upgrade: bool = True,
) -> Runtime:
    """``environ``: where provider keys are looked up last (default: the process's)."""
    settings = settings or load_settings()
    engine = db.make_engine(settings.database_url, **settings.engine_options())
    if upgrade:
        db.upgrade_database(engine)
    else:
        db.check_connection(engine)
    sessions = db.make_session_factory(engine)
    catalog = load_catalog()
    cipher = load_cipher(settings)
    quiet_litellm()
    gateway = Gateway(
        sessions=sessions,
        catalog=catalog,
        cipher=cipher,
        completion=completion,
        environ=environ,
        settings=gateway_settings or gateway_settings_from(settings),
        journal=Journal(settings.journal_dir),
    )
    return Runtime(settings, engine, sessions, catalog, cipher, gateway)
