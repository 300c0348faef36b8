"""core.accounts.secrets: AES-GCM blobs, the master key ring, rotation, masking and redaction."""

from __future__ import annotations

import base64
import logging
import stat
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from core.accounts import keys, secrets
from core.accounts.secrets import Cipher, UndecryptableSecret, api_key_aad, mask_secret, redact
from core.config import load_settings
from core.errors import ConfigError, SwitchboardError
from core.store.tables import ORG_OWNER_ID, ApiKey, AuditEntry
from tests.conftest import add_user
from tests.fakes import Status

# Registers the fake_openai fixture (a loopback server speaking OpenAI's wire format).
pytest_plugins = ["tests.fakes.fixtures"]

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
SECRET = "sk-proj-Zx81aQ7vLmN0pRt5uVw2yB4cD6eF8gH0iJ2kL4mN6oP8qR0sT2uV4wX6yZ8a"
PROVIDERS = ("openai", "anthropic", "groq")
AAD = api_key_aad("user", 42, "openai")


def raw_key(seed: int) -> bytes:
    return bytes([seed]) * 32


def b64(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode().rstrip("=")


def test_round_trip_and_fresh_nonce():
    cipher = Cipher([raw_key(1)])
    one, two = cipher.encrypt(SECRET, AAD), cipher.encrypt(SECRET, AAD)
    assert one != two and one[5:17] != two[5:17]  # a new nonce every time
    assert cipher.decrypt(one, AAD) == cipher.decrypt(two, AAD) == SECRET
    assert SECRET.encode() not in one
    assert one[0] == secrets.BLOB_VERSION and one[1:5] == secrets.key_id(raw_key(1))


@pytest.mark.parametrize(
    "other_aad",
    [
        api_key_aad("user", 43, "openai"),
        api_key_aad("team", 42, "openai"),
        api_key_aad("user", 42, "anthropic"),
        b"",
    ],
)
def test_blob_is_bound_to_owner_and_provider(other_aad):
    cipher = Cipher([raw_key(1)])
    blob = cipher.encrypt(SECRET, AAD)
    with pytest.raises(UndecryptableSecret) as info:
        cipher.decrypt(blob, other_aad)
    assert isinstance(info.value, SwitchboardError)
    assert SECRET not in str(info.value) and b64(raw_key(1)) not in str(info.value)


@pytest.mark.parametrize("position", [0, 1, 6, 20, -1])
def test_tampered_or_truncated_blobs_fail(position):
    cipher = Cipher([raw_key(1)])
    blob = bytearray(cipher.encrypt(SECRET, AAD))
    blob[position] ^= 0x01
    with pytest.raises(UndecryptableSecret):
        cipher.decrypt(bytes(blob), AAD)
    with pytest.raises(UndecryptableSecret):
        cipher.decrypt(bytes(blob[:20]), AAD)


def test_wrong_key_fails_and_ring_decrypts_with_previous_keys():
    old, new = Cipher([raw_key(1)]), Cipher([raw_key(2)])
    blob = old.encrypt(SECRET, AAD)
    with pytest.raises(UndecryptableSecret):
        new.decrypt(blob, AAD)
    ring = Cipher([raw_key(2), raw_key(1)])
    assert ring.decrypt(blob, AAD) == SECRET
    assert ring.encrypt(SECRET, AAD)[1:5] == secrets.key_id(raw_key(2))
    assert "0101" not in repr(ring) and repr(ring).startswith("Cipher(key_ids=")


def test_key_file_is_created_once_with_0600_and_reused(isolated_env):
    first = secrets.load_cipher(load_settings())
    path = isolated_env / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = secrets.load_cipher(load_settings())
    assert first.key_ids == second.key_ids and len(first.key_ids) == 1
    assert second.decrypt(first.encrypt(SECRET, AAD), AAD) == SECRET


def test_env_key_ring_wins_and_writes_no_file(isolated_env, monkeypatch):
    monkeypatch.setenv("SWITCHBOARD_SECRET_KEY", f"{b64(raw_key(2))}, {b64(raw_key(1))}=")
    cipher = secrets.load_cipher(load_settings())
    assert cipher.key_ids == (secrets.key_id(raw_key(2)), secrets.key_id(raw_key(1)))
    assert cipher.decrypt(Cipher([raw_key(1)]).encrypt(SECRET, AAD), AAD) == SECRET
    assert not (isolated_env / "secret_key").exists()


@pytest.mark.parametrize(
    "value", ["short", b64(b"x" * 16), b64(raw_key(1)) + ",not base64!", "a b", ","]
)
def test_bad_env_key_explains_how_to_generate_one(monkeypatch, value):
    monkeypatch.setenv("SWITCHBOARD_SECRET_KEY", value)
    with pytest.raises(ConfigError, match="Generate one with") as info:
        secrets.load_cipher(load_settings())
    assert value.strip(",") == "" or value not in str(info.value)


def test_bad_key_file_is_a_config_error(isolated_env):
    (isolated_env / "secret_key").write_text("not-a-key\n")
    with pytest.raises(ConfigError, match="secret_key holds a key that is not base64url"):
        secrets.load_cipher(load_settings())


def store_keys(sessions, cipher) -> dict[tuple[str, int, str], str]:
    """Three org keys and one user key; returns (kind, owner, provider) -> secret."""
    user = add_user(sessions, "alice")
    stored = {}
    with sessions.begin() as s:
        for i, provider in enumerate(PROVIDERS):
            secret = f"{SECRET}{i}"
            keys.set_key(
                s,
                cipher,
                owner_kind="org",
                owner_id=ORG_OWNER_ID,
                provider=provider,
                secret=secret,
                actor="t",
                now=T0,
                known_providers=PROVIDERS,
            )
            stored[("org", ORG_OWNER_ID, provider)] = secret
        keys.set_key(
            s,
            cipher,
            owner_kind="user",
            owner_id=user.id,
            provider="openai",
            secret=SECRET,
            actor="t",
            now=T0,
            known_providers=PROVIDERS,
        )
        stored[("user", user.id, "openai")] = SECRET
    return stored


def blobs(sessions) -> dict[tuple[str, int, str], bytes]:
    with sessions() as s:
        return {
            (r.owner_kind, r.owner_id, r.provider): r.ciphertext for r in s.scalars(select(ApiKey))
        }


def assert_all_decrypt(cipher, sessions, stored):
    for (kind, owner, provider), blob in blobs(sessions).items():
        assert (
            cipher.decrypt(blob, api_key_aad(kind, owner, provider))
            == stored[(kind, owner, provider)]
        )


def test_rotation_reencrypts_every_row_and_drops_the_old_key(isolated_env, sessions):
    settings = load_settings()
    old = secrets.load_cipher(settings)
    stored = store_keys(sessions, old)
    before = blobs(sessions)
    result = secrets.rotate(sessions, settings, actor="cli", now=T0)
    assert (result.reencrypted, result.source, result.dropped_keys) == (4, "file", 1)
    new = secrets.load_cipher(settings)
    assert len(new.key_ids) == 1 and new.key_ids[0] != old.key_ids[0]
    assert result.key_id == new.key_ids[0].hex()
    assert stat.S_IMODE((isolated_env / "secret_key").stat().st_mode) == 0o600
    assert_all_decrypt(new, sessions, stored)
    for (kind, owner, provider), blob in before.items():  # old blobs need the dropped key
        with pytest.raises(UndecryptableSecret):
            new.decrypt(blob, api_key_aad(kind, owner, provider))
    with pytest.raises(UndecryptableSecret):
        assert_all_decrypt(old, sessions, stored)
    with sessions() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "secret.rotate"))
        assert entry is not None and entry.details["reencrypted"] == 4
        assert SECRET not in repr(entry.details)
        assert b64(old.keys[0]) not in repr(entry.details)


def test_crash_before_commit_leaves_everything_decryptable(isolated_env, sessions, monkeypatch):
    settings = load_settings()
    old = secrets.load_cipher(settings)
    stored = store_keys(sessions, old)
    before = blobs(sessions)
    real = secrets.reencrypt_all

    def crash_after_reencrypting(session, old_cipher, new_cipher):
        real(session, old_cipher, new_cipher)  # rows flushed under the new key, not committed
        raise RuntimeError("power cut")

    monkeypatch.setattr(secrets, "reencrypt_all", crash_after_reencrypting)
    with pytest.raises(RuntimeError, match="power cut"):
        secrets.rotate(sessions, settings, actor="cli", now=T0)
    ring = secrets.load_cipher(settings)  # a restarted process reads new + old
    assert len(ring.key_ids) == 2 and ring.key_ids[1] == old.key_ids[0]
    assert blobs(sessions) == before
    assert_all_decrypt(ring, sessions, stored)

    monkeypatch.setattr(secrets, "reencrypt_all", real)  # the retry completes the rotation
    assert secrets.rotate(sessions, settings, actor="cli", now=T0).dropped_keys == 2
    assert_all_decrypt(secrets.load_cipher(settings), sessions, stored)


def test_rotation_refuses_undecryptable_rows_and_keeps_the_ring(isolated_env, sessions):
    settings = load_settings()
    ring_before = secrets.load_cipher(settings)
    store_keys(sessions, Cipher([raw_key(9)]))  # rows under a key the ring does not hold
    with pytest.raises(UndecryptableSecret):
        secrets.rotate(sessions, settings, actor="cli", now=T0)
    assert secrets.load_cipher(settings).key_ids == ring_before.key_ids


def test_rotation_with_env_ring(isolated_env, sessions, monkeypatch):
    stored = store_keys(sessions, Cipher([raw_key(1)]))
    monkeypatch.setenv("SWITCHBOARD_SECRET_KEY", b64(raw_key(1)))
    with pytest.raises(ConfigError, match="nothing to rotate to"):
        secrets.rotate(sessions, load_settings(), actor="cli", now=T0)
    monkeypatch.setenv("SWITCHBOARD_SECRET_KEY", f"{b64(raw_key(2))},{b64(raw_key(1))}")
    result = secrets.rotate(sessions, load_settings(), actor="cli", now=T0)
    assert (result.reencrypted, result.source) == (4, "env")
    assert_all_decrypt(Cipher([raw_key(2)]), sessions, stored)
    assert not (isolated_env / "secret_key").exists()


@pytest.mark.parametrize(
    ("secret", "masked"),
    [
        ("sk-abcdefghijklmnopqrstuvwxyz1234", "sk-…1234"),
        ("sk-proj-abcdefghijklmnopqrstuvwxyz9876", "sk-proj-…9876"),
        ("sk-ant-api03-abcdefghijklmnopqrstuvwxyz-AAAA", "sk-ant-…AAAA"),
        ("sk-or-v1-0123456789abcdef0123456789abcdef", "sk-or-…cdef"),
        ("gsk_0123456789abcdefghijWXYZ", "gsk_…WXYZ"),
        ("xai-0123456789abcdefghij5678", "xai-…5678"),
        ("AIzaSyA0123456789abcdefghijklmnopqrstu", "…rstu"),
        ("  sk-abcdefghijklmnopqrstuvwxyz1234\n", "sk-…1234"),
        ("sk-short12", "…12"),
        ("abcdefgh", "…gh"),
        ("abc", "****"),
        ("", "****"),
    ],
)
def test_mask_shapes(secret, masked):
    assert mask_secret(secret) == masked
    assert len(mask_secret(secret)) <= 32  # fits ApiKey.masked


OPENAI_401 = (
    "Error code: 401 - {'error': {'message': 'Incorrect API key provided: "
    f"{SECRET}. You can find your API key at https://platform.openai.com/account/api-keys.', "
    "'type': 'invalid_request_error', 'param': None, 'code': 'invalid_api_key'}}"
)


@pytest.mark.parametrize(
    ("text", "known"),
    [
        (OPENAI_401, [SECRET]),
        (OPENAI_401, []),  # caught by shape even when we were not told the key
        ("request failed: headers={'Authorization': 'Bearer abcDEF123456ghiJKL'}", []),
        (
            "GET https://generativelanguage.googleapis.com/v1/models?key=AIzaSyA0123456789abcdefghijklmnopqrstu",
            [],
        ),
        ('{"api_key": "plainsecretvalue99"}', []),
        ("x-api-key: my-local-key-0000", []),
        ("custom key zzTOPsecret-in-text99 was refused", ["zzTOPsecret-in-text99"]),
    ],
)
def test_redact_scrubs_realistic_upstream_errors(text, known):
    secret_parts = [
        "Zx81aQ7vLmN0pRt5",
        "abcDEF123456ghiJKL",
        "AIzaSyA0123456789abcdef",
        "plainsecretvalue99",
        "my-local-key-0000",
        "zzTOPsecret-in-text99",
    ]
    out = redact(text, known)
    assert not any(part in out for part in secret_parts)
    assert redact(out, known) == out  # idempotent: masks are not re-masked


def test_redact_keeps_ordinary_text():
    text = "Rate limit reached for gpt-4o on tokens per min (TPM): Limit 30000. max_tokens=512"
    assert redact(text, []) == text
    assert "Incorrect API key provided: sk-proj-…qR0s" in redact(
        "Incorrect API key provided: sk-proj-Zx81aQ7vLmN0pRt5uVw2yB4cD6eF8gH0iJ2kL4mN6oP8qR0s", []
    )


def test_redacting_filter_scrubs_args_and_tracebacks(caplog):
    logger = logging.getLogger("switchboard.test.redaction")
    logger.addFilter(secrets.RedactingFilter(lambda: ["hunter2-long-secret"]))
    with caplog.at_level(logging.INFO):
        logger.info("calling with %s", "hunter2-long-secret")
        try:
            raise ValueError(f"bad key {SECRET}")
        except ValueError:
            logger.exception("upstream failed")
    assert "hunter2-long-secret" not in caplog.text and SECRET not in caplog.text
    assert "…" in caplog.text


@pytest.fixture
def restore_litellm_logging():
    """quiet_litellm changes process-wide loggers; put them back for the tests after us."""
    import litellm

    targets = [logging.getLogger(n) for n in secrets.LITELLM_LOGGERS]
    handlers = [h for lg in targets for h in lg.handlers]
    saved = ([(lg, lg.level) for lg in targets], [(t, list(t.filters)) for t in targets + handlers])
    flags = (litellm.suppress_debug_info, litellm.set_verbose)
    yield
    for lg, level in saved[0]:
        lg.setLevel(level)
    for target, filters in saved[1]:
        target.filters[:] = filters
    litellm.suppress_debug_info, litellm.set_verbose = flags


@pytest.mark.usefixtures("restore_litellm_logging")
def test_quiet_litellm_silences_debug_and_redacts(caplog, capsys, fake_openai):
    import litellm

    secrets.quiet_litellm(lambda: [SECRET])
    secrets.quiet_litellm(lambda: [SECRET])  # idempotent: one filter per logger/handler
    assert litellm.suppress_debug_info is True and litellm.set_verbose is False
    lit = logging.getLogger("LiteLLM")
    assert lit.level == logging.WARNING
    assert sum(isinstance(f, secrets.RedactingFilter) for f in lit.filters) == 1
    fake_openai.script("gpt-4o", Status(401, message=f"Incorrect API key provided: {SECRET}."))
    with caplog.at_level(logging.DEBUG):
        lit.debug("debug detail %s", SECRET)
        with pytest.raises(litellm.AuthenticationError) as info:
            litellm.completion(
                model="openai/gpt-4o",
                api_key=SECRET,
                num_retries=0,
                api_base=fake_openai.base_url,
                messages=[{"role": "user", "content": "hi"}],
            )
        assert SECRET in str(info.value)  # the upstream really echoed it...
        lit.warning("upstream error: %s", info.value)
        logging.getLogger("LiteLLM Router").error("router saw Bearer %s", SECRET)
    assert SECRET not in redact(str(info.value), [])  # ...and redaction removes it
    assert SECRET not in caplog.text and "upstream error: " in caplog.text
    assert "debug detail" not in caplog.text
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err
