"""Settings from the environment (``SWITCHBOARD_*``) or ``.streamlit/secrets.toml``.

Environment variables win over the ``[switchboard]`` table of secrets.toml, so a
deployment can keep secrets in its orchestrator and defaults in the file.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from core.errors import ConfigError
from core.keyfiles import read_or_create_key_file

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SECRETS_TOML = Path(".streamlit") / "secrets.toml"

# Values that ship in examples and docs; a deployment using one is misconfigured.
KNOWN_DEFAULT_KEYS = frozenset({"", "some_key", "changeme", "change-me", "secret", "default"})
MIN_KEY_LENGTH = 32


class _SecretsTomlSource(PydanticBaseSettingsSource):
    """Reads the ``[switchboard]`` table of ``.streamlit/secrets.toml`` if present."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        super().__init__(settings_cls)
        self._values: dict[str, Any] = {}
        if path.is_file():
            try:
                table = tomllib.loads(path.read_text(encoding="utf-8")).get("switchboard", {})
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(
                    f"{path} is not valid TOML ({exc.__class__.__name__}). Fix or remove it."
                ) from None
            self._values = {str(k).lower(): v for k, v in table.items()}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._values.items() if k in self.settings_cls.model_fields}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_", extra="ignore")

    mode: Literal["production", "development"] = "production"
    data_dir: Path = PROJECT_ROOT / "data"
    db_url: str | None = None
    cookie_key: SecretStr | None = None
    cookie_name: str = "switchboard_auth"
    cookie_expiry_days: float = 7.0
    secret_key: SecretStr | None = None
    log_level: str = "INFO"
    # Organisation-wide per-user limits per minute; unset means unlimited.
    rate_rpm: int | None = None
    rate_tpm: int | None = None
    # When a provider deployment's circuit breaker opens (core/upstream/breaker.py).
    breaker_failure_rate: float = Field(default=0.95, gt=0, le=1)
    breaker_min_calls: int = Field(default=10, ge=1, le=100)
    breaker_cooldown_s: float = Field(default=15.0, gt=0, le=3600)
    api_max_body_bytes: int = 4 * 1024 * 1024
    # Wrong gateway tokens per client address per minute before /v1 answers 429.
    api_token_failures_per_minute: int = 20
    # A database that hangs must not hold a request: PostgreSQL connect and statement
    # timeouts (SQLite waits its busy_timeout). Requests wait at most their sum for the
    # database, and never past their own total timeout.
    db_connect_timeout_s: float = Field(default=5.0, gt=0, le=300)
    db_statement_timeout_s: float = Field(default=10.0, gt=0, le=300)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = _SecretsTomlSource(settings_cls, PROJECT_ROOT / SECRETS_TOML)
        return (init_settings, env_settings, toml)

    @property
    def database_url(self) -> str:
        if self.db_url:
            return self.db_url
        return f"sqlite:///{self.data_dir / 'switchboard.db'}"

    @property
    def journal_dir(self) -> Path:
        """Where the ledger journal keeps rows the database has not taken yet."""
        return self.data_dir / "journal"

    @property
    def db_wait_s(self) -> float:
        """The longest a request waits on the database before it gets 503."""
        return self.db_connect_timeout_s + self.db_statement_timeout_s

    def engine_options(self) -> dict[str, float]:
        return {
            "connect_timeout_s": self.db_connect_timeout_s,
            "statement_timeout_s": self.db_statement_timeout_s,
        }

    @property
    def development(self) -> bool:
        return self.mode == "development"


def resolve_cookie_key(settings: Settings) -> tuple[str, Path | None]:
    """The sign-in cookie key, and the file it was just generated into (development only).

    Production refuses to start without a strong configured key, because a default
    key lets anyone forge a sign-in cookie.
    """
    configured = settings.cookie_key.get_secret_value() if settings.cookie_key else ""
    if configured.strip().lower() in KNOWN_DEFAULT_KEYS or len(configured) < MIN_KEY_LENGTH:
        if configured or not settings.development:
            raise ConfigError(
                "SWITCHBOARD_COOKIE_KEY is missing, a known default, or shorter than "
                f"{MIN_KEY_LENGTH} characters. Generate one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'` and set it "
                "(or set SWITCHBOARD_MODE=development to generate a local one)."
            )
        path = settings.data_dir / "cookie_key"
        key, created = read_or_create_key_file(path)
        return key, path if created else None
    return configured, None


def generated_cookie_key_message(path: Path) -> str:
    return (
        f"Development mode: generated a sign-in cookie key into {path} (mode 0600). "
        "Set SWITCHBOARD_COOKIE_KEY in production."
    )


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning pydantic's validation errors into one clear ConfigError."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        env = f"SWITCHBOARD_{where.upper()}"
        raise ConfigError(f"{env} is invalid: {first['msg']}. Fix it and start again.") from None
