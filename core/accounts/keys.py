"""Provider keys owned by a user, a team or the organisation, and which one a request uses.

Resolution order for a caller and provider: their own key, their team's, the
organisation's, then the provider's usual environment variable. Secrets are stored
encrypted (core.accounts.secrets) and leave this module only inside a ``ResolvedKey``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, cast, get_args

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from core.accounts.secrets import Cipher, api_key_aad, mask_secret
from core.errors import InvalidInput, NotFound
from core.money.catalog import PROVIDER_KEY_ENV, PROVIDER_KEY_PREFIX, PROVIDER_KEY_URL
from core.request import Caller
from core.store import audit
from core.store.tables import ORG_OWNER_ID, ApiKey, Team, User

OwnerKind = Literal["user", "team", "org"]
KeySource = Literal["own", "team", "org", "env"]
OWNER_KINDS: tuple[OwnerKind, ...] = get_args(OwnerKind)
MAX_KEY_LENGTH = 4096
# last_used_at is a hint for people, so one write a minute per key is plenty.
USED_GRANULARITY = timedelta(minutes=1)
_SOURCE_OF: Mapping[str, KeySource] = {"user": "own", "team": "team", "org": "org"}
_RANK: Mapping[str, int] = {"user": 0, "team": 1, "org": 2}


@dataclass(frozen=True)
class KeyInfo:
    """A stored key as people see it: masked, never the secret."""

    provider: str
    owner_kind: OwnerKind
    owner_id: int
    masked: str
    created_at: datetime
    updated_at: datetime
    last_used_at: datetime | None
    last_auth_failure_at: datetime | None


@dataclass(frozen=True)
class ResolvedKey:
    """The key a request will use. ``secret`` is excluded from repr, str and comparisons."""

    secret: str = field(repr=False, compare=False)
    source: KeySource
    key_id: int | None  # the ApiKey row, None for an environment variable
    masked: str

    def __repr__(self) -> str:
        return (
            f"ResolvedKey(source={self.source!r}, key_id={self.key_id!r}, masked={self.masked!r})"
        )


@dataclass(frozen=True)
class ProviderKeyStatus:
    """Which source a caller's request to ``provider`` would use, or None if it has no key."""

    provider: str
    source: KeySource | None
    masked: str | None
    env_var: str | None
    key_url: str | None
    last_auth_failure_at: datetime | None = None


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(
        provider=row.provider,
        owner_kind=cast(OwnerKind, row.owner_kind),
        owner_id=row.owner_id,
        masked=row.masked,
        created_at=row.created_at,
        updated_at=row.updated_at,
        last_used_at=row.last_used_at,
        last_auth_failure_at=row.last_auth_failure_at,
    )


def describe_owner(owner_kind: str, owner_id: int) -> str:
    return "the organisation" if owner_kind == "org" else f"{owner_kind} #{owner_id}"


def _check_owner(session: Session, owner_kind: str, owner_id: int) -> None:
    if owner_kind not in OWNER_KINDS:
        raise InvalidInput(
            f"Unknown key owner {owner_kind!r}; use one of {', '.join(OWNER_KINDS)}."
        )
    if owner_kind == "org" and owner_id != ORG_OWNER_ID:
        raise InvalidInput(f"Organisation keys use owner id {ORG_OWNER_ID}, not {owner_id}.")
    table = {"user": User, "team": Team}.get(owner_kind)
    if table is not None and session.get(table, owner_id) is None:
        raise NotFound(
            f"No {owner_kind} #{owner_id}. `switchboard user list` shows users and teams."
        )


def clean_secret(secret: str) -> str:
    """The key as it will be stored; refuses what cannot be a key, never echoing it."""
    text = secret.strip()
    if not text:
        raise InvalidInput("The key is empty. Paste the provider's API key and try again.")
    if any(ch.isspace() for ch in text):
        raise InvalidInput("The key contains spaces or line breaks. Paste it as one line.")
    if len(text) > MAX_KEY_LENGTH or not text.isprintable():
        raise InvalidInput("That does not look like an API key (too long or unprintable).")
    return text


def key_warnings(provider: str, secret: str) -> list[str]:
    """Hints about a key that is probably wrong, though still accepted; never the key."""
    warnings: list[str] = []
    if secret != secret.strip():
        warnings.append("Spaces or line breaks around the key were removed.")
    text = secret.strip()
    # Longest prefix first: "sk-ant-" must not be taken for openai's "sk-".
    by_length = sorted(PROVIDER_KEY_PREFIX.items(), key=lambda kv: len(kv[1]), reverse=True)
    looks_like = next((p for p, prefix in by_length if text.startswith(prefix)), None)
    expected = PROVIDER_KEY_PREFIX.get(provider)
    if looks_like is not None and looks_like != provider:
        warnings.append(
            f"This looks like a key for {looks_like} (it starts with "
            f"{PROVIDER_KEY_PREFIX[looks_like]!r}), but it is being set for {provider}."
        )
    elif expected is not None and not text.startswith(expected):
        warnings.append(
            f"{provider} keys usually start with {expected!r}; this one does not. "
            "Check that you copied the whole key."
        )
    return warnings


def _find(session: Session, owner_kind: str, owner_id: int, provider: str) -> ApiKey | None:
    return session.scalar(
        select(ApiKey).where(
            ApiKey.owner_kind == owner_kind,
            ApiKey.owner_id == owner_id,
            ApiKey.provider == provider,
        )
    )


def set_key(
    session: Session,
    cipher: Cipher,
    *,
    owner_kind: OwnerKind,
    owner_id: int,
    provider: str,
    secret: str,
    actor: str,
    now: datetime,
    known_providers: Collection[str],
) -> KeyInfo:
    """Store (or replace) the owner's key for a catalog provider or an endpoint name."""
    if provider not in known_providers:
        raise InvalidInput(
            f"Unknown provider {provider!r}. `switchboard models` lists catalog providers "
            "and `switchboard provider list` lists endpoints."
        )
    _check_owner(session, owner_kind, owner_id)
    text = clean_secret(secret)
    masked = mask_secret(text)
    blob = cipher.encrypt(text, api_key_aad(owner_kind, owner_id, provider))
    row = _find(session, owner_kind, owner_id, provider)
    replaced = row is not None
    if row is None:
        row = ApiKey(owner_kind=owner_kind, owner_id=owner_id, provider=provider, created_at=now)
        session.add(row)
    row.ciphertext, row.masked, row.updated_at = blob, masked, now
    row.last_auth_failure_at = None  # a new key has not failed yet
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="key.set",
        target=f"{owner_kind}:{owner_id}/{provider}",
        now=now,
        details={"masked": masked, "replaced": replaced},
    )
    return _info(row)


def delete_key(
    session: Session,
    *,
    owner_kind: OwnerKind,
    owner_id: int,
    provider: str,
    actor: str,
    now: datetime,
) -> None:
    row = _find(session, owner_kind, owner_id, provider)
    if row is None:
        raise NotFound(
            f"{describe_owner(owner_kind, owner_id).capitalize()} has no {provider} key. "
            "`switchboard key list` shows the keys."
        )
    session.delete(row)
    audit.record(
        session,
        actor=actor,
        action="key.delete",
        target=f"{owner_kind}:{owner_id}/{provider}",
        now=now,
        details={"masked": row.masked},
    )


def list_keys(session: Session, owner_kind: OwnerKind, owner_id: int) -> list[KeyInfo]:
    query = select(ApiKey).where(ApiKey.owner_kind == owner_kind, ApiKey.owner_id == owner_id)
    return [_info(r) for r in session.scalars(query.order_by(ApiKey.provider))]


def _caller_rows(session: Session, caller: Caller, providers: Iterable[str]) -> list[ApiKey]:
    """The caller's own, team and org keys for the providers, best first, in one query."""
    owners = [and_(ApiKey.owner_kind == "user", ApiKey.owner_id == caller.user_id)]
    if caller.team_id is not None:
        owners.append(and_(ApiKey.owner_kind == "team", ApiKey.owner_id == caller.team_id))
    owners.append(and_(ApiKey.owner_kind == "org", ApiKey.owner_id == ORG_OWNER_ID))
    query = select(ApiKey).where(ApiKey.provider.in_(list(providers)), or_(*owners))
    return sorted(session.scalars(query), key=lambda r: _RANK[r.owner_kind])


def _env_key(provider: str, environ: Mapping[str, str]) -> str | None:
    name = PROVIDER_KEY_ENV.get(provider)
    value = environ.get(name, "").strip() if name else ""
    return value or None


ALL_SOURCES: tuple[KeySource, ...] = ("own", "team", "org", "env")


def resolve_key(
    session: Session,
    cipher: Cipher,
    caller: Caller,
    provider: str,
    environ: Mapping[str, str],
    sources: Sequence[str] = ALL_SOURCES,
) -> ResolvedKey | None:
    """The key a request by ``caller`` to ``provider`` uses: own > team > org > env, or None.

    ``sources`` narrows and orders where to look (a profile's keys choice, or a key test).
    A stored key that no longer decrypts raises rather than silently falling back to a
    key someone else pays for.
    """
    rows = _caller_rows(session, caller, (provider,))
    by_source = {_SOURCE_OF[r.owner_kind]: r for r in reversed(rows)}  # best row per source
    for source in sources:
        if source == "env":
            env = _env_key(provider, environ)
            if env:
                return ResolvedKey(env, "env", None, mask_secret(env))
            continue
        best = by_source.get(cast(KeySource, source))
        if best is not None:
            secret = cipher.decrypt(
                best.ciphertext, api_key_aad(best.owner_kind, best.owner_id, best.provider)
            )
            return ResolvedKey(secret, _SOURCE_OF[best.owner_kind], best.id, best.masked)
    return None


def mark_key_used(session: Session, key_id: int, now: datetime) -> None:
    session.execute(
        update(ApiKey)
        .where(
            ApiKey.id == key_id,
            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < now - USED_GRANULARITY),
        )
        .values(last_used_at=now)
    )


def mark_key_auth_failed(session: Session, key_id: int, now: datetime) -> None:
    session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_auth_failure_at=now))


def key_status(
    session: Session,
    caller: Caller,
    providers: Iterable[str],
    environ: Mapping[str, str],
    sources: Sequence[str] = ALL_SOURCES,
) -> list[ProviderKeyStatus]:
    """For each provider, which key source the caller would use (no decryption needed)."""
    wanted = list(dict.fromkeys(providers))
    allowed_rows = {k for k, v in _SOURCE_OF.items() if v in sources}
    rank = {s: i for i, s in enumerate(sources)}
    best: dict[str, ApiKey] = {}
    rows = [r for r in _caller_rows(session, caller, wanted) if r.owner_kind in allowed_rows]
    for found in sorted(rows, key=lambda r: rank[_SOURCE_OF[r.owner_kind]]):
        best.setdefault(found.provider, found)  # best first, in the order asked for
    result = []
    for provider in wanted:
        row = best.get(provider)
        env = _env_key(provider, environ) if "env" in sources else None
        if row is not None and env and rank["env"] < rank[_SOURCE_OF[row.owner_kind]]:
            row = None  # the environment comes first in this order
        source: KeySource | None = _SOURCE_OF[row.owner_kind] if row else ("env" if env else None)
        result.append(
            ProviderKeyStatus(
                provider=provider,
                source=source,
                masked=row.masked if row else (mask_secret(env) if env else None),
                env_var=PROVIDER_KEY_ENV.get(provider),
                key_url=PROVIDER_KEY_URL.get(provider),
                last_auth_failure_at=row.last_auth_failure_at if row else None,
            )
        )
    return result
