"""`switchboard demo-data` and the filtered `switchboard usage export`."""

from __future__ import annotations

import csv
import io
import os

from sqlalchemy import func, select

from core.analytics.demo_data import MARKER
from core.store import db, rollups
from core.store.tables import PreferenceRefusal, RequestRow, Team, User, usage_daily
from tests.support.cli import run_cli
from tests.support.ledger_rows import insert, request_row


def test_demo_data_is_labelled_varied_and_rolled_up(sessions):
    code, out, err = run_cli("demo-data", "--rows", "3000", "--days", "20")
    assert code == 0, err
    assert "3,000 / 3,000 requests (100%)" in out and "Done: 3,000 demo requests" in out
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(RequestRow)) == 3000
        assert (
            s.scalar(
                select(func.count())
                .select_from(RequestRow)
                .where(RequestRow.route_source != MARKER)
            )
            == 0
        )
        assert all(n.startswith("demo-") for n in s.scalars(select(User.username)))
        assert all(n.startswith("demo-") for n in s.scalars(select(Team.name)))
        statuses = set(s.scalars(select(RequestRow.status).distinct()))
        unpriced = s.scalar(
            select(func.count()).select_from(RequestRow).where(RequestRow.priced.is_(False))
        )
        days = s.scalar(select(func.count(func.distinct(usage_daily.c.day))))
        assert s.scalar(select(func.count()).select_from(PreferenceRefusal)) == 3
        before = sorted(
            tuple(r) for r in s.execute(select(usage_daily).order_by(usage_daily.c.id)).all()
        )
    assert {"success", "success-after-fallback", "failed", "no-key"} <= statuses
    assert unpriced > 0 and days == 20
    # The rollups written alongside equal a rebuild from the raw rows.
    with sessions.begin() as s:
        rollups.rebuild(s)
    with sessions() as s:
        after = sorted(tuple(r) for r in s.execute(select(usage_daily)).all())
    assert [r[1:] for r in sorted(before, key=lambda r: r[1:])] == [
        r[1:] for r in sorted(after, key=lambda r: r[1:])
    ]


def test_demo_data_refuses_a_database_with_real_usage_unless_forced(sessions):
    insert(sessions, request_row(_now()))
    code, _, err = run_cli("demo-data", "--rows", "10", "--days", "2")
    assert code == 2 and "already holds 1 real requests" in err and "--force" in err
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(RequestRow)) == 1
    code, _, err = run_cli("demo-data", "--rows", "10", "--days", "2", "--force")
    assert code == 0, err
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(RequestRow)) == 11


def test_demo_data_into_another_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'other.db'}"
    code, _, err = run_cli("demo-data", "--rows", "50", "--days", "3", "--db", url)
    assert code == 0, err
    engine = db.make_engine(url)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(RequestRow)) == 50
    engine.dispose()
    assert os.environ["SWITCHBOARD_DB_URL"] != url


def test_bad_demo_arguments(sessions):
    code, _, err = run_cli("demo-data", "--rows", "0")
    assert code == 2 and "--rows must be at least 1" in err


def _now():
    from core.clock import utc_now

    return utc_now()


def test_usage_export_with_filters_and_summary(sessions):
    assert run_cli("demo-data", "--rows", "400", "--days", "5")[0] == 0
    with sessions() as s:
        user = s.scalar(select(User.username).order_by(User.username))
        mine = s.scalar(
            select(func.count())
            .select_from(RequestRow)
            .join(User, User.id == RequestRow.user_id)
            .where(User.username == user)
        )
        total_cost = s.scalar(select(func.sum(RequestRow.cost_micros)))
    code, out, err = run_cli("usage", "export", "--user", user)
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == mine and {r["user"] for r in rows} == {user}
    code, out, err = run_cli("usage", "export", "--summary")
    assert code == 0, err
    summary = list(csv.DictReader(io.StringIO(out)))
    users = [r for r in summary if r["kind"] == "user"]
    assert sum(int(r["requests"]) for r in users) == 400
    assert sum(round(float(r["cost_usd"]) * 1_000_000) for r in users) == total_cost
    code, _, err = run_cli("usage", "export", "--user", "nobody-here")
    assert code == 2 and "No user named 'nobody-here'" in err
