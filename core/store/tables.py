"""Typed tables. Schema changes go through Alembic migrations in core/store/migrations.

Money columns hold integer micro-dollars (``BigInteger``), never floats.
Timestamps are stored as naive UTC and read back as aware UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from core.store.histogram import LATENCY_COLUMNS, TTFT_COLUMNS

ROLES = ("admin", "manager", "member")

# Alembic-friendly constraint names, so migrations can alter them on every engine.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC; refuses naive input so local time never leaks in."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # libSQL hands back text
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    users: Mapped[list[User]] = relationship(back_populates="team")


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('admin', 'manager', 'member')", name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128))
    email: Mapped[str | None] = mapped_column(String(254))
    password_hash: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Sign-in sessions issued at or before this time are void (core/accounts/sessions.py).
    sessions_valid_after: Mapped[datetime | None] = mapped_column(UTCDateTime())

    team: Mapped[Team | None] = relationship(back_populates="users")


class LoginFailure(Base):
    """One row per failed sign-in; lockout counts them in a window (works across replicas)."""

    __tablename__ = "login_failures"
    __table_args__ = (
        Index("ix_login_failures_username_at", "username", "at"),
        Index("ix_login_failures_address_at", "address", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The client address tried from (None: the CLI, or rows from before 0008).
    address: Mapped[str | None] = mapped_column(String(64))


class AuditEntry(Base):
    """Who changed what, when. ``details`` never holds secret values."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(256))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


# Owner of a key, route or budget: "org" rows use owner_id 0 so unique constraints hold
# (NULLs never collide in UNIQUE on SQLite or PostgreSQL).
ORG_OWNER_ID = 0


class ApiKey(Base):
    """A provider key, AES-GCM encrypted; only the masked tail is kept in clear."""

    __tablename__ = "api_keys"
    __table_args__ = (
        UniqueConstraint("owner_kind", "owner_id", "provider", name="owner_provider"),
        CheckConstraint("owner_kind IN ('user', 'team', 'org')", name="owner_kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_kind: Mapped[str] = mapped_column(String(8))
    owner_id: Mapped[int] = mapped_column(Integer)
    provider: Mapped[str] = mapped_column(String(64))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    masked: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_auth_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Endpoint(Base):
    """An admin-defined OpenAI-compatible endpoint, or a base-URL override of a provider."""

    __tablename__ = "endpoints"
    __table_args__ = (CheckConstraint("kind IN ('openai-compatible', 'override')", name="kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(24))
    api_base: Mapped[str] = mapped_column(String(512))
    models: Mapped[list[str]] = mapped_column(JSON, default=list)
    supports_prefill: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RouteRow(Base):
    """An ordered chain of models for a scope (user, team or org) and optionally a task."""

    __tablename__ = "routes"
    __table_args__ = (
        UniqueConstraint("scope", "scope_id", "task", name="scope_task"),
        CheckConstraint("scope IN ('user', 'team', 'org')", name="scope"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(8))
    scope_id: Mapped[int] = mapped_column(Integer)
    task: Mapped[str] = mapped_column(String(64), default="")  # "" is the default route
    models: Mapped[list[str]] = mapped_column(JSON)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(64))


class Budget(Base):
    """A monthly limit; spend and open reservations are counters updated atomically."""

    __tablename__ = "budgets"
    __table_args__ = (
        UniqueConstraint("scope", "scope_key", name="scope_key"),
        CheckConstraint("scope IN ('user', 'team', 'provider')", name="scope"),
        CheckConstraint("limit_micros >= 0", name="limit_nonnegative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(8))
    scope_key: Mapped[str] = mapped_column(String(64))
    limit_micros: Mapped[int] = mapped_column(BigInteger)
    hard: Mapped[bool] = mapped_column(Boolean, default=True)
    period: Mapped[str] = mapped_column(String(7))  # "YYYY-MM", UTC
    spent_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    reserved_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Reservation(Base):
    """A worst-case hold against a budget until the request settles or the hold expires."""

    __tablename__ = "reservations"
    __table_args__ = (Index("ix_reservations_expires_at", "expires_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[str] = mapped_column(String(32), index=True)
    budget_id: Mapped[int] = mapped_column(ForeignKey("budgets.id", ondelete="CASCADE"))
    period: Mapped[str] = mapped_column(String(7))
    amount_micros: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Added in 0009. What an expired hold was charged as spend while its request's outcome
    # was unknown (an `interrupted` ledger row); a late settle refunds it for the real cost.
    charged_micros: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    # Who and what the hold is for (user, team, source, model), so an orphaned hold can
    # become a ledger row; NULL on holds made before 0009.
    trace: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))


class RateLimit(Base):
    """Per-user request and token limits per minute (NULL: no limit)."""

    __tablename__ = "rate_limits"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    requests_per_minute: Mapped[int | None] = mapped_column(Integer)
    tokens_per_minute: Mapped[int | None] = mapped_column(Integer)


class RateWindow(Base):
    """Counters for one user in one UTC minute; old windows are pruned."""

    __tablename__ = "rate_windows"

    user_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    window: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # epoch minute
    requests: Mapped[int] = mapped_column(Integer, default=0)
    tokens: Mapped[int] = mapped_column(BigInteger, default=0)


class TokenFailureWindow(Base):
    """Wrong gateway tokens from one client address in one UTC minute, shared by replicas."""

    __tablename__ = "token_failure_windows"

    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    window: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # epoch minute
    failures: Mapped[int] = mapped_column(Integer, default=0)


class PriceOverride(Base):
    """A negotiated price from a date onwards, in micro-dollars per 1M tokens."""

    __tablename__ = "price_overrides"
    __table_args__ = (UniqueConstraint("model_id", "effective_from", name="model_from"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[str] = mapped_column(String(200))
    effective_from: Mapped[datetime] = mapped_column(UTCDateTime())
    input_micros_per_mtok: Mapped[int] = mapped_column(BigInteger)
    output_micros_per_mtok: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(64))


class GatewayToken(Base):
    """A bearer token for the /v1 API; only its SHA-256 is stored."""

    __tablename__ = "gateway_tokens"
    __table_args__ = (UniqueConstraint("user_id", "name", name="user_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RequestRow(Base):
    """One row per caller request: what was asked, what answered, what it cost."""

    __tablename__ = "requests"
    __table_args__ = (
        Index("ix_requests_at", "at"),
        Index("ix_requests_user_at", "user_id", "at"),
        Index("ix_requests_team_at", "team_id", "at"),
        Index("ix_requests_served_model_at", "served_model", "at"),
        Index("ix_requests_status_at", "status", "at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    user_id: Mapped[int | None] = mapped_column(Integer)
    username: Mapped[str] = mapped_column(String(64))
    team_id: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16))
    task: Mapped[str] = mapped_column(String(64), default="")
    profile: Mapped[str | None] = mapped_column(String(64))
    conversation_id: Mapped[str | None] = mapped_column(String(64))
    token_name: Mapped[str | None] = mapped_column(String(64))
    requested_model: Mapped[str] = mapped_column(String(200))
    served_model: Mapped[str | None] = mapped_column(String(200))
    provider: Mapped[str | None] = mapped_column(String(64))
    route_source: Mapped[str] = mapped_column(String(32))
    chain: Mapped[list[str]] = mapped_column(JSON)
    order_reason: Mapped[str | None] = mapped_column(Text)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cached_tokens: Mapped[int] = mapped_column(Integer, default=0)
    reasoning_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_micros: Mapped[int | None] = mapped_column(BigInteger)  # NULL when unpriced
    priced: Mapped[bool] = mapped_column(Boolean, default=True)
    price_version: Mapped[str | None] = mapped_column(String(64))
    latency_ms: Mapped[int] = mapped_column(Integer, default=0)
    ttft_ms: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32))
    fallback_used: Mapped[bool] = mapped_column(Boolean, default=False)
    finish_reason: Mapped[str | None] = mapped_column(String(32))
    error_class: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    # The /v1 caller's `metadata` object (validated small and flat); NULL when none was
    # sent. Named so because `metadata` is reserved on declarative models.
    request_metadata: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    # Added in 0009: the cost is an estimate (an `interrupted` request's held worst case),
    # not a provider's figures; a journal replay replaces the row with the real one.
    estimated: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # Fields left out for a model that does not take them, when the caller or the route
    # asked (`drop_params`); NULL when none were (0010).
    dropped_params: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True))


class AttemptRow(Base):
    """One row per upstream attempt (each retry is its own attempt)."""

    __tablename__ = "attempts"
    __table_args__ = (Index("ix_attempts_model_at", "model", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    request_id: Mapped[str] = mapped_column(
        ForeignKey("requests.id", ondelete="CASCADE"), index=True
    )
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    model: Mapped[str] = mapped_column(String(200))
    provider: Mapped[str] = mapped_column(String(64))
    key_source: Mapped[str | None] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(32))
    status_code: Mapped[int | None] = mapped_column(Integer)
    error_class: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    latency_ms: Mapped[int] = mapped_column(Integer, default=0)
    ttft_ms: Mapped[int | None] = mapped_column(Integer)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_micros: Mapped[int | None] = mapped_column(BigInteger)
    priced: Mapped[bool] = mapped_column(Boolean, default=True)
    # Added in 0007 to a populated table: the server default gives old rows 0.
    cached_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    reasoning_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    price_version: Mapped[str | None] = mapped_column(String(64))  # NULL when unpriced


class Alert(Base):
    """Something a manager should see (budget thresholds, unpriced models, …), raised once."""

    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("kind", "subject", "period", name="once"),
        Index("ix_alerts_at", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(200))
    period: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


# ----------------------------------------------------------------------------------
# Profiles, user preferences and settings (migration 0003).


class PreferenceRefusal(Base):
    """A refused choice of preferred provider (no usable key); analytics raises alerts on these."""

    __tablename__ = "preference_refusals"
    __table_args__ = (Index("ix_preference_refusals_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    user_id: Mapped[int | None] = mapped_column(Integer)
    username: Mapped[str] = mapped_column(String(64))
    provider: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)


KEY_CHOICES = ("auto", "own", "shared")


class Profile(Base):
    """A named set of preferences (e.g. Personal, Work): its routes and which keys it uses."""

    __tablename__ = "profiles"
    __table_args__ = (
        UniqueConstraint("user_id", "name", name="profile_user_name"),
        CheckConstraint("keys_choice IN ('auto', 'own', 'shared')", name="keys_choice"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    keys_choice: Mapped[str] = mapped_column(String(16), default="auto")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ProfileRoute(Base):
    """A profile's chain for a task ("" is its default route); wins over the user's routes."""

    __tablename__ = "profile_routes"
    __table_args__ = (UniqueConstraint("profile_id", "task", name="profile_task"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    profile_id: Mapped[int] = mapped_column(ForeignKey("profiles.id", ondelete="CASCADE"))
    task: Mapped[str] = mapped_column(String(64), default="")
    models: Mapped[list[str]] = mapped_column(JSON)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(64))


# (end of 0003 tables)


# ----------------------------------------------------------------------------------
# Chat conversations and messages (migration 0004).

MESSAGE_STATUSES = ("complete", "incomplete", "stopped")


class Conversation(Base):
    """One chat thread of one user; remembers the model, task and settings it last used."""

    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_user_updated", "user_id", "updated_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    model: Mapped[str] = mapped_column(String(200))  # last model used; "auto" is the route
    task: Mapped[str] = mapped_column(String(64), default="")
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ChatMessage(Base):
    """One turn of a conversation. Assistant turns name their ledger request (no FK: the
    ledger is written by a background batch writer, possibly after this row)."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("conversation_id", "seq", name="conversation_seq"),
        CheckConstraint("role IN ('system', 'user', 'assistant')", name="role"),
        CheckConstraint("status IN ('complete', 'incomplete', 'stopped')", name="status"),
        Index("ix_messages_request_id", "request_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="complete")
    request_id: Mapped[str | None] = mapped_column(String(32))
    model: Mapped[str | None] = mapped_column(String(200))  # the model that answered
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # usage, cost, attempts
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ChatSettings(Base):
    """Per-user chat settings: above this estimated cost, a message needs confirming."""

    __tablename__ = "chat_settings"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    confirm_above_micros: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


# (end of 0004 tables)


# ----------------------------------------------------------------------------------
# Comparison sessions, rounds, answers and votes (migration 0005).


class CompareSession(Base):
    """One comparison: a fixed set of 2-4 models, its rounds, and everyone's votes.

    ``shared``: the owner's team (``team_id``, taken when the session is created) may
    open it read-only and vote. Nobody else may, whatever the URL says.
    """

    __tablename__ = "compare_sessions"
    __table_args__ = (Index("ix_compare_sessions_owner_created", "owner_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # random: links don't enumerate
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    team_id: Mapped[int | None] = mapped_column(Integer, index=True)
    title: Mapped[str] = mapped_column(String(200))
    task: Mapped[str] = mapped_column(String(64), default="")
    system_prompt: Mapped[str] = mapped_column(Text, default="")
    models: Mapped[list[str]] = mapped_column(JSON)
    blind: Mapped[bool] = mapped_column(Boolean, default=True)
    fallbacks: Mapped[bool] = mapped_column(Boolean, default=False)
    shared: Mapped[bool] = mapped_column(Boolean, default=True)
    temperature: Mapped[float | None] = mapped_column(Float)
    max_tokens: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CompareRound(Base):
    """One prompt sent to every model of a session. ``labels`` maps "A".. to model ids."""

    __tablename__ = "compare_rounds"
    __table_args__ = (
        UniqueConstraint("session_id", "seq", name="session_seq"),
        CheckConstraint("kind IN ('turn', 'batch')", name="kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[str] = mapped_column(
        ForeignKey("compare_sessions.id", ondelete="CASCADE"), index=True
    )
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(8))  # turn: continues the columns; batch: alone
    prompt: Mapped[str] = mapped_column(Text)
    labels: Mapped[dict[str, str]] = mapped_column(JSON)
    label_seed: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CompareAnswer(Base):
    """One model's answer in a round, with the facts the gateway reported for it."""

    __tablename__ = "compare_answers"
    __table_args__ = (
        UniqueConstraint("round_id", "model", name="round_model"),
        Index("ix_compare_answers_model_at", "model", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("compare_rounds.id", ondelete="CASCADE"))
    model: Mapped[str] = mapped_column(String(200))
    label: Mapped[str] = mapped_column(String(1))
    text: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(String(32))
    served_model: Mapped[str | None] = mapped_column(String(200))
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_micros: Mapped[int | None] = mapped_column(BigInteger)  # NULL when unpriced
    priced: Mapped[bool] = mapped_column(Boolean, default=True)
    latency_ms: Mapped[int] = mapped_column(Integer, default=0)
    ttft_ms: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CompareVote(Base):
    """A user's verdict on a round; one per user per round, a new vote replaces it."""

    __tablename__ = "compare_votes"
    __table_args__ = (
        UniqueConstraint("round_id", "user_id", name="round_user"),
        CheckConstraint("choice IN ('best', 'tie', 'all_bad')", name="choice"),
        Index("ix_compare_votes_team_at", "team_id", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("compare_rounds.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    team_id: Mapped[int | None] = mapped_column(Integer)  # the voter's team when voting
    choice: Mapped[str] = mapped_column(String(8))
    winner: Mapped[str | None] = mapped_column(String(200))  # the best model, for "best"
    comment: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class CompareModelSet(Base):
    """A user's named set of models to compare again."""

    __tablename__ = "compare_model_sets"
    __table_args__ = (UniqueConstraint("owner_id", "name", name="owner_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    models: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


# (end of 0005 tables)


# ----------------------------------------------------------------------------------
# Daily usage rollups and analytics settings (migration 0006).

# One row per UTC day and combination of the analytics filters; core/store/rollups.py keeps it
# current in the same transaction as the ledger rows. NULL dimensions are stored as 0 or
# "" so the unique key matches them (NULLs never collide in UNIQUE). The latency and TTFT
# histograms (core/store/histogram.py) are one integer column per bucket, so a filter's
# percentiles are one SUM per column.
USAGE_DAILY_DIMENSIONS = (
    "day",
    "user_id",
    "team_id",
    "provider",
    "model",
    "task",
    "source",
    "status",
)
USAGE_DAILY_MEASURES = (
    "requests",
    "fallbacks",
    "prompt_tokens",
    "completion_tokens",
    "cost_micros",
    "priced_requests",
    "priced_tokens",
    "unpriced_requests",
    "latency_sum_ms",
    "latency_n",
    "ttft_sum_ms",
    "ttft_n",
)

usage_daily = Table(
    "usage_daily",
    Base.metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("day", Date(), nullable=False),
    Column("user_id", Integer(), nullable=False),
    Column("team_id", Integer(), nullable=False),
    Column("provider", String(64), nullable=False),
    Column("model", String(200), nullable=False),
    Column("task", String(64), nullable=False),
    Column("source", String(16), nullable=False),
    Column("status", String(32), nullable=False),
    Column("username", String(64), nullable=False),
    *(Column(name, BigInteger(), nullable=False) for name in USAGE_DAILY_MEASURES),
    Column("max_prompt_tokens", Integer(), nullable=False),
    *(Column(name, Integer(), nullable=False) for name in LATENCY_COLUMNS + TTFT_COLUMNS),
    UniqueConstraint(*USAGE_DAILY_DIMENSIONS, name="usage_daily_key"),
    Index("ix_usage_daily_user_day", "user_id", "day"),
    Index("ix_usage_daily_team_day", "team_id", "day"),
)


class AnalyticsSetting(Base):
    """Admin-set analytics options (e.g. the alert webhook URL), one row per key."""

    __tablename__ = "analytics_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(64))


class AlertDelivery(Base):
    """An alert sent to the webhook; the unique alert_id makes each alert go out once."""

    __tablename__ = "alert_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), unique=True)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status_code: Mapped[int] = mapped_column(Integer)


# (end of 0006 tables)
