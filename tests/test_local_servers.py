"""Ollama needs no key, but it needs a server: its models count as available only with
one configured (base-URL override or OLLAMA_API_BASE) or one that answered recently."""

from __future__ import annotations

from datetime import timedelta

from core.accounts import auth
from core.clock import utc_now
from core.money.catalog import load_catalog
from core.settings import endpoints, local_servers, provider_status
from core.settings.targets import KEYLESS_PROVIDERS
from tests.conftest import add_user
from tests.support.ledger_rows import insert, request_row


def _ollama(sessions, environ=None, now=None):
    user = add_user(sessions, "alice")
    with sessions() as s:
        me = auth.caller_for(s, user.id)
        listed = endpoints.list_endpoints(s)
        found = provider_status.provider_statuses(
            s,
            me,
            catalog_providers=load_catalog().providers(),
            endpoints=listed,
            environ=environ or {},
            breakers=[],
            now=now,
        )
    return next(st for st in found if st.provider == "ollama")


def test_ollama_without_a_server_is_not_available(sessions):
    status = _ollama(sessions)
    assert not status.available
    assert status.key_words == "no key needed; no server configured"
    assert status.fix is not None and "Admin → Endpoints" in status.fix
    assert "ollama" in KEYLESS_PROVIDERS  # still needs no key once there is a server


def test_ollama_with_the_environment_variable_is_available(sessions):
    status = _ollama(sessions, environ={"OLLAMA_API_BASE": "http://127.0.0.1:11434"})
    assert status.available and status.key_words == "no key needed" and status.fix is None


def test_ollama_with_a_base_url_override_is_available(sessions):
    with sessions.begin() as s:
        endpoints.add_endpoint(
            s,
            name="ollama",
            kind="override",
            api_base="http://127.0.0.1:11434",
            models=(),
            actor="test",
            now=utc_now(),
            builtin_providers=load_catalog().providers(),
        )
    assert _ollama(sessions).available


def test_ollama_that_answered_in_the_last_day_is_available_and_a_stale_answer_is_not(sessions):
    now = utc_now()
    served = {"provider": "ollama", "served_model": "ollama/llama3", "cost_micros": 0}
    insert(sessions, request_row(now - timedelta(days=3), **served))
    assert not _ollama(sessions, now=now).available  # three days ago says nothing about today
    insert(sessions, request_row(now - timedelta(hours=2), **served, status="failed"))
    with sessions() as s:
        assert local_servers.answered_recently(s, now) == set()  # a failure is no answer
    insert(sessions, request_row(now - timedelta(hours=2), **served))
    with sessions() as s:
        assert local_servers.answered_recently(s, now) == {"ollama"}
        assert local_servers.ready(s, {}, [], now) == {"ollama"}
