"""The alert webhook: an admin-set URL that receives each new alert once.

``dispatch`` records every current alert in the ``alerts`` table (unique per kind,
subject and period) and then claims its delivery by inserting an ``alert_deliveries``
row (unique per alert) in the same transaction as the POST. If the POST fails, the
transaction rolls back, the claim disappears and the next run tries again; if it
succeeds, the claim commits and the alert is never sent again, whichever replica runs.
The HTTP client is injected, so tests post to a loopback server.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Final
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from core.analytics.alerts import AlertItem
from core.errors import InvalidInput
from core.store import audit
from core.store.tables import Alert, AlertDelivery, AnalyticsSetting

WEBHOOK_KEY: Final = "alert_webhook_url"
TIMEOUT_S: Final = 5.0
log = logging.getLogger("switchboard.alerts")


def get_webhook_url(session: Session) -> str | None:
    row = session.get(AnalyticsSetting, WEBHOOK_KEY)
    return row.value if row and row.value else None


def mask_url(url: str) -> str:
    """Scheme and host only: webhook paths often carry a secret token (Slack, Teams)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/…" if parts.path.strip("/") else url


def set_webhook_url(session: Session, url: str, *, actor: str, now: datetime) -> str | None:
    """Save (or with "" clear) the webhook URL; returns the saved value."""
    url = url.strip()
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidInput(
                "The webhook URL must start with http:// or https:// and name a host, "
                "e.g. https://hooks.example.com/switchboard. Nothing was changed."
            )
        if len(url) > 2000:
            raise InvalidInput(
                "The webhook URL is longer than 2000 characters. Nothing was changed."
            )
    row = session.get(AnalyticsSetting, WEBHOOK_KEY)
    if row is None:
        session.add(AnalyticsSetting(key=WEBHOOK_KEY, value=url, updated_at=now, updated_by=actor))
    else:
        row.value, row.updated_at, row.updated_by = url, now, actor
    # The URL itself may embed a token, so the audit entry keeps only its host.
    audit.record(
        session,
        actor=actor,
        action="analytics.webhook",
        target=WEBHOOK_KEY,
        details={"url": mask_url(url) if url else None},
        now=now,
    )
    return url or None


def payload(alert: AlertItem, base_url: str | None = None) -> dict[str, object]:
    body: dict[str, object] = {
        "kind": alert.kind,
        "subject": alert.subject,
        "period": alert.period,
        "severity": alert.severity,
        "at": alert.at.isoformat(),
        "message": alert.message,
        "text": f"[Switchboard] {alert.message}",  # Slack-compatible
    }
    if base_url:
        query = "&".join(f"{k}={v}" for k, v in alert.link.items())
        body["link"] = f"{base_url.rstrip('/')}/analytics?{query}"
    return body


def _insert_ignore(
    session: Session, model: type[Alert] | type[AlertDelivery], values: dict[str, object]
) -> bool:
    """INSERT … ON CONFLICT DO NOTHING; True when the row was new."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    result = session.execute(insert(model).values(**values).on_conflict_do_nothing())
    return bool(getattr(result, "rowcount", 0))


def record_alerts(session: Session, alerts: Sequence[AlertItem]) -> dict[tuple[str, str, str], int]:
    """Store alerts not yet in the ``alerts`` table; returns each alert's row id."""
    ids: dict[tuple[str, str, str], int] = {}
    for alert in alerts:
        _insert_ignore(
            session,
            Alert,
            {
                "at": alert.at,
                "kind": alert.kind[:32],
                "subject": alert.subject[:200],
                "period": alert.period[:16],
                "message": alert.message,
                "details": {"severity": alert.severity, "link": alert.link},
            },
        )
        ids[alert.key] = (
            session.scalar(
                select(Alert.id).where(
                    Alert.kind == alert.kind[:32],
                    Alert.subject == alert.subject[:200],
                    Alert.period == alert.period[:16],
                )
            )
            or 0
        )
    return ids


def dispatch(
    sessions: sessionmaker[Session],
    alerts: Sequence[AlertItem],
    *,
    now: datetime,
    client: httpx.Client,
    base_url: str | None = None,
) -> int:
    """Send each alert the webhook has not received yet; returns how many were sent."""
    with sessions.begin() as s:
        url = get_webhook_url(s)
        ids = record_alerts(s, alerts)
    if url is None:
        return 0
    sent = 0
    for alert in alerts:
        alert_id = ids[alert.key]
        try:
            with sessions.begin() as s:
                if not _insert_ignore(
                    s, AlertDelivery, {"alert_id": alert_id, "sent_at": now, "status_code": 0}
                ):
                    continue  # already delivered (or being delivered by another replica)
                response = client.post(url, json=payload(alert, base_url), timeout=TIMEOUT_S)
                response.raise_for_status()
                s.execute(
                    update(AlertDelivery)
                    .where(AlertDelivery.alert_id == alert_id)
                    .values(status_code=response.status_code)
                )
            sent += 1
        except httpx.HTTPError as exc:
            # The claim rolled back with the transaction; the next run retries this alert.
            log.warning("alert webhook failed (%s) for %s", type(exc).__name__, alert.kind)
    return sent
