"""Provider-key encryption under a master key ring, masking, rotation and redaction.

Blob layout: ``version (1) | key id (4) | nonce (12) | AES-GCM ciphertext+tag``. The key id
is a fingerprint of the master key, so a ring of several keys (current first, then previous
ones) knows which key to try; the header and the caller's associated data (owner and
provider) are both authenticated, so a blob copied to another row does not decrypt.

The ring comes from ``SWITCHBOARD_SECRET_KEY`` (comma-separated base64url keys) or else from
``<data_dir>/secret_key`` (one key per line, generated once with 0600 permissions).

Rotating with the env var: generate a key, set ``SWITCHBOARD_SECRET_KEY="NEW,OLD"``, run
``switchboard secret rotate``, then set it to ``NEW`` alone and restart the app. With the
key file, ``switchboard secret rotate`` does all of that itself; restart the app afterwards.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.config import Settings
from core.errors import ConfigError
from core.keyfiles import read_or_create_key_file
from core.store import audit
from core.store.tables import ApiKey

_log = logging.getLogger(__name__)

ENV_VAR = "SWITCHBOARD_SECRET_KEY"
KEY_FILE_NAME = "secret_key"
BLOB_VERSION = 1
KEY_BYTES = 32
KEY_ID_BYTES = 4
NONCE_BYTES = 12
_HEADER_BYTES = 1 + KEY_ID_BYTES
GENERATE_HINT = (
    'Generate one with `python -c "import base64, os; '
    'print(base64.urlsafe_b64encode(os.urandom(32)).decode())"`'
)
# Longest first: "sk-" also starts anthropic, openrouter and openai project keys.
KNOWN_KEY_PREFIXES = ("sk-proj-", "sk-ant-", "sk-or-", "gsk_", "xai-", "sk-")
LITELLM_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy")

_TOKEN_CHARS = r"[A-Za-z0-9._~+/=*-]"
_BEARER_RE = re.compile(rf"(?i)(\bbearer\s+)({_TOKEN_CHARS}{{8,}})")
_ASSIGNED_RE = re.compile(
    rf"(?i)(\b(?:x-api-key|x-goog-api-key|api[_-]?key|key|access[_-]?token|secret)"
    rf"[\"']?\s*[:=]\s*[\"']?)({_TOKEN_CHARS}{{8,}})"
)
# Key shapes worth hiding even when we were not told the key: OpenAI-style, Groq, xAI, Google.
_KEY_SHAPE_RE = re.compile(r"\b(?:sk|gsk|xai)[-_][A-Za-z0-9_*-]{16,}|\bAIza[0-9A-Za-z_-]{30,}")


class UndecryptableSecret(ConfigError):
    """A stored key did not decrypt: its master key is not in the ring, or it was altered."""


def key_id(key: bytes) -> bytes:
    """Short public fingerprint of a master key (domain-separated, reveals nothing useful)."""
    return hashlib.sha256(b"switchboard-master-key-id|" + key).digest()[:KEY_ID_BYTES]


def api_key_aad(owner_kind: str, owner_id: int, provider: str) -> bytes:
    """Associated data binding a provider key blob to its row's owner and provider."""
    return f"api_key|{owner_kind}|{owner_id}|{provider}".encode()


def generate_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode().rstrip("=")


def parse_key(text: str, where: str) -> bytes:
    """One base64url master key (padding optional); the message never echoes the value."""
    raw = text.strip()
    try:
        key = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES or not re.fullmatch(r"[A-Za-z0-9_-]+=*", raw):
        raise ConfigError(
            f"{where} holds a key that is not base64url of {KEY_BYTES} random bytes. "
            f"{GENERATE_HINT}."
        )
    return key


class Cipher:
    """AES-GCM over a ring of master keys: the first encrypts, any of them decrypts."""

    __slots__ = ("_keys",)

    def __init__(self, keys: Sequence[bytes]) -> None:
        unique = tuple(dict.fromkeys(keys))  # keep order, drop repeats
        if not unique or any(len(k) != KEY_BYTES for k in unique):
            raise ConfigError(f"The master key ring is empty or malformed. {GENERATE_HINT}.")
        self._keys = unique

    def __repr__(self) -> str:
        return f"Cipher(key_ids={[k.hex() for k in self.key_ids]})"

    @property
    def key_ids(self) -> tuple[bytes, ...]:
        return tuple(key_id(k) for k in self._keys)

    @property
    def keys(self) -> tuple[bytes, ...]:
        return self._keys

    def encrypt(self, plaintext: str, aad: bytes) -> bytes:
        key = self._keys[0]
        header = bytes([BLOB_VERSION]) + key_id(key)
        nonce = os.urandom(NONCE_BYTES)  # fresh per record: GCM must never reuse one
        return header + nonce + AESGCM(key).encrypt(nonce, plaintext.encode(), header + aad)

    def decrypt(self, blob: bytes, aad: bytes) -> str:
        header, rest = bytes(blob[:_HEADER_BYTES]), bytes(blob[_HEADER_BYTES:])
        if len(blob) < _HEADER_BYTES + NONCE_BYTES + 16 or header[0] != BLOB_VERSION:
            raise UndecryptableSecret("A stored key is corrupt (unknown format).")
        wanted = header[1:]
        for key in self._keys:
            if key_id(key) != wanted:
                continue
            try:
                plain = AESGCM(key).decrypt(rest[:NONCE_BYTES], rest[NONCE_BYTES:], header + aad)
            except InvalidTag:
                break
            return plain.decode()
        raise UndecryptableSecret(
            "A stored key could not be decrypted: it was altered, moved to another row, or "
            f"encrypted with a master key that is not in the ring ({ENV_VAR} or "
            f"data/{KEY_FILE_NAME}). Restore the previous master key, or set the key again."
        )


def key_file(settings: Settings) -> Path:
    return settings.data_dir / KEY_FILE_NAME


def _ring_from_env(settings: Settings) -> list[bytes] | None:
    if settings.secret_key is None:
        return None
    parts = [p for p in settings.secret_key.get_secret_value().split(",") if p.strip()]
    if not parts:
        raise ConfigError(f"{ENV_VAR} is set but empty. {GENERATE_HINT}.")
    return [parse_key(p, ENV_VAR) for p in parts]


def _ring_from_file(path: Path) -> list[bytes]:
    # token_urlsafe(32), which the helper writes on first use, is base64url of 32 bytes.
    text, created = read_or_create_key_file(path, KEY_BYTES)
    if created:
        # Said once, loudly: losing this file makes every stored key unreadable.
        _log.warning(
            "Generated a master encryption key into %s (mode 0600). Back it up with the "
            "database, or set %s.",
            path,
            ENV_VAR,
        )
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return [parse_key(ln, str(path)) for ln in lines]


def load_cipher(settings: Settings) -> Cipher:
    """The process's cipher: the env key ring if set, else the key file (created once)."""
    ring = _ring_from_env(settings)
    return Cipher(ring if ring is not None else _ring_from_file(key_file(settings)))


def _encode(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode().rstrip("=")


def write_ring(path: Path, keys: Sequence[bytes]) -> None:
    """Replace the key file atomically (temp file, fsync, rename), keeping 0600."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except PermissionError:
        raise ConfigError(f"Cannot write {path}: make the data folder writable.") from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("".join(_encode(k) + "\n" for k in keys))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)


@dataclass(frozen=True)
class RotationResult:
    reencrypted: int
    key_id: str  # hex fingerprint of the new current key, safe to print
    source: Literal["env", "file"]
    dropped_keys: int  # old keys removed from the file (always 0 for the env var)


def reencrypt_all(session: Session, old: Cipher, new: Cipher) -> int:
    """Re-encrypt every ApiKey row under ``new``'s current key, in the caller's transaction.

    Every row is decrypted first, so an undecryptable one aborts before anything changes.
    """
    rows = list(session.scalars(select(ApiKey).order_by(ApiKey.id)))
    aads = [api_key_aad(r.owner_kind, r.owner_id, r.provider) for r in rows]
    plains = [old.decrypt(r.ciphertext, aad) for r, aad in zip(rows, aads, strict=True)]
    for row, aad, plain in zip(rows, aads, plains, strict=True):
        row.ciphertext = new.encrypt(plain, aad)
    session.flush()
    return len(rows)


def rotate(
    sessions: sessionmaker[Session], settings: Settings, *, actor: str, now: datetime
) -> RotationResult:
    """Put a new master key first and re-encrypt every stored key under it.

    Key file: the ring ``new + old`` is written before the re-encryption commits and the old
    keys are dropped only after it, so a crash at any point leaves every row decryptable.
    Env var: the admin supplies ``NEW,OLD``; we re-encrypt under NEW and they drop OLD.
    """
    env_ring = _ring_from_env(settings)
    if env_ring is not None:
        if len(env_ring) < 2:
            raise ConfigError(
                f"{ENV_VAR} holds one key, so there is nothing to rotate to. {GENERATE_HINT}, "
                f'set {ENV_VAR}="NEW,OLD", run `switchboard secret rotate`, then set it to NEW.'
            )
        cipher = Cipher(env_ring)
        with sessions.begin() as session:
            count = reencrypt_all(session, cipher, cipher)
            _audit(session, actor, now, count, cipher, "env")
        return RotationResult(count, cipher.key_ids[0].hex(), "env", 0)

    path = key_file(settings)
    old = Cipher(_ring_from_file(path))
    new = Cipher([parse_key(generate_key(), "generated key"), *old.keys])
    write_ring(path, new.keys)  # from here on both the old and the new key decrypt
    try:
        with sessions.begin() as session:
            count = reencrypt_all(session, old, new)
            _audit(session, actor, now, count, new, "file")
    except UndecryptableSecret:
        write_ring(path, old.keys)  # nothing changed; don't let failed tries grow the ring
        raise
    write_ring(path, new.keys[:1])  # committed: the old keys are no longer needed
    return RotationResult(count, new.key_ids[0].hex(), "file", len(old.keys))


def _audit(session: Session, actor: str, now: datetime, count: int, c: Cipher, src: str) -> None:
    audit.record(
        session,
        actor=actor,
        action="secret.rotate",
        target="master_key",
        now=now,
        details={"reencrypted": count, "key_id": c.key_ids[0].hex(), "source": src},
    )


def mask_secret(secret: str) -> str:
    """``sk-…abcd``: a known prefix plus the last 4; shorter secrets show less or nothing."""
    text = secret.strip()
    prefix = next((p for p in KNOWN_KEY_PREFIXES if text.startswith(p)), "")
    if len(text) - len(prefix) >= 12:
        return f"{prefix}…{text[-4:]}"
    if len(text) >= 8:
        return f"…{text[-2:]}"
    return "****"


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace given secrets, bearer/``api_key=`` values and key-shaped tokens by masks."""
    for secret in sorted({s.strip() for s in secrets if s and s.strip()}, key=len, reverse=True):
        text = text.replace(secret, mask_secret(secret))
    text = _BEARER_RE.sub(lambda m: m.group(1) + mask_secret(m.group(2)), text)
    text = _ASSIGNED_RE.sub(lambda m: m.group(1) + mask_secret(m.group(2)), text)
    return _KEY_SHAPE_RE.sub(lambda m: mask_secret(m.group(0)), text)


def _no_secrets() -> Iterable[str]:
    return ()


class RedactingFilter(logging.Filter):
    """Scrubs a record's message and traceback; ``get_secrets`` is asked on every record."""

    def __init__(self, get_secrets: Callable[[], Iterable[str]] = _no_secrets) -> None:
        super().__init__()
        self._get_secrets = get_secrets

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = list(self._get_secrets())
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # bad %-args: scrub the template alone
            message = str(record.msg)
        record.msg, record.args = redact(message, secrets), None
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, secrets)
        return True


def quiet_litellm(get_secrets: Callable[[], Iterable[str]] = _no_secrets) -> None:
    """Silence litellm's debug output, scrub what it still logs, keep it off the network.

    Idempotent. Without the tokenizer switch, litellm fetches a Llama tokenizer from
    huggingface.co on the event loop the first time a llama-2/3 model streams: ~20 s of
    retries offline, for every request in the process.
    """
    import litellm  # lazily: importing litellm takes seconds

    litellm.disable_hf_tokenizer_download = True
    litellm.suppress_debug_info = True
    litellm.set_verbose = False  # type: ignore[attr-defined]  # re-exported, untyped
    redacting = RedactingFilter(get_secrets)
    for name in LITELLM_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.WARNING)
        # Handlers too: a logger's own filters skip records propagated from its children.
        for target in (logger, *logger.handlers):
            for old in [f for f in target.filters if isinstance(f, RedactingFilter)]:
                target.removeFilter(old)
            target.addFilter(redacting)
