"""The alert webhook: each alert reaches a loopback HTTP server exactly once."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from sqlalchemy import func, select

from core.analytics import webhook
from core.analytics.alerts import AlertItem
from core.errors import InvalidInput
from core.store.tables import Alert, AlertDelivery, AuditEntry

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


class Hook:
    def __init__(self) -> None:
        self.bodies: list[dict[str, object]] = []
        self.fail = False


@pytest.fixture
def hook() -> Iterator[tuple[Hook, str]]:
    state = Hook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if state.fail:
                self.send_response(503)
            else:
                state.bodies.append(json.loads(body))
                self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_port}/hooks/secret-token-123"
    finally:
        server.shutdown()
        server.server_close()


def alert(kind: str, period: str = "2026-03-10") -> AlertItem:
    return AlertItem(kind, "all", period, NOW, "warning", f"{kind} happened", {"range": "7d"})


def test_each_alert_is_sent_once_and_failures_are_retried(sessions, hook):
    server, url = hook
    with sessions.begin() as s:
        webhook.set_webhook_url(s, url, actor="boss", now=NOW)
    first = [alert("fallback-day"), alert("no-key")]
    with httpx.Client() as client:
        assert webhook.dispatch(sessions, first, now=NOW, client=client) == 2
        # The same alerts again (the next page run): nothing new goes out.
        assert webhook.dispatch(sessions, first, now=NOW, client=client) == 0
        server.fail = True
        assert webhook.dispatch(sessions, [alert("unpriced-model")], now=NOW, client=client) == 0
        server.fail = False
        # The failed one was not marked sent, so it goes out on the next run; a new
        # period of an old kind is a new alert.
        later = [alert("unpriced-model"), alert("fallback-day", "2026-03-11"), *first]
        assert webhook.dispatch(sessions, later, now=NOW, client=client) == 2
    assert [b["kind"] for b in server.bodies] == [
        "fallback-day",
        "no-key",
        "unpriced-model",
        "fallback-day",
    ]
    assert server.bodies[0]["text"] == "[Switchboard] fallback-day happened"
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Alert)) == 4
        assert s.scalar(select(func.count()).select_from(AlertDelivery)) == 4
        audit = s.scalars(select(AuditEntry.details)).all()
    assert "secret-token-123" not in json.dumps(audit)  # the URL's token is never logged


def test_no_webhook_records_alerts_but_sends_nothing(sessions, hook):
    server, _ = hook
    with httpx.Client() as client:
        assert webhook.dispatch(sessions, [alert("no-key")], now=NOW, client=client) == 0
    assert server.bodies == []
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Alert)) == 1


def test_bad_webhook_urls_are_refused_and_change_nothing(sessions):
    for bad in ("ftp://example.com/x", "hooks.example.com", "https://"):
        with pytest.raises(InvalidInput, match="must start with http"), sessions.begin() as s:
            webhook.set_webhook_url(s, bad, actor="boss", now=NOW)
    with sessions() as s:
        assert webhook.get_webhook_url(s) is None
    assert webhook.mask_url("https://hooks.example.com/T0/B1/xyz") == "https://hooks.example.com/…"


def test_usage_alerts_command_sends_new_alerts_once(sessions, hook):
    from tests.support.cli import run_cli
    from tests.support.ledger_rows import insert, request_row

    server, url = hook
    now = datetime.now(UTC)
    insert(
        sessions,
        *(
            request_row(
                now - timedelta(minutes=i + 1),
                served_model="local/x",
                provider="local",
                cost_micros=None,
            )
            for i in range(3)
        ),
    )
    with sessions.begin() as s:
        webhook.set_webhook_url(s, url, actor="boss", now=NOW)
    code, out, err = run_cli("usage", "alerts", "--send")
    assert code == 0, err
    assert "local/x answered 3 request(s)" in out and "Sent 1 new alert(s)" in out
    assert run_cli("usage", "alerts", "--send")[1].count("Sent 0 new alert(s)") == 1
    assert [b["kind"] for b in server.bodies] == ["unpriced-model"]
