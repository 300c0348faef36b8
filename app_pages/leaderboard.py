"""Leaderboard: model ratings from comparison votes, per task and overall, with cost."""

from __future__ import annotations

from datetime import datetime, timedelta

import plotly.express as px
import streamlit as st

from core.accounts.auth import caller_for
from core.clock import utc_now
from core.compare import leaderboard
from core.money.display import usd_or_unpriced as usd
from ui.resources import services
from ui.session import current_user

RANGES = {"Last 7 days": 7, "Last 30 days": 30, "Last 90 days": 90, "All time": None}
ALL_TEAMS = -1

user = current_user()
svc = services()


@st.cache_data(max_entries=256, show_spinner="Fitting ratings…")
def board(
    task: str | None, team_id: int | None, since: datetime | None, votes: object
) -> list[leaderboard.LeaderRow]:
    # Cached per filter set and votes_stamp (shared by every user with the same filters):
    # fitted once after each vote, whoever looks first; every later view reads it.
    with svc.sessions() as s:
        return leaderboard.leaderboard(s, task=task, team_id=team_id, since=since)


st.title("Leaderboard")
st.caption(
    "Ratings from blind and named comparison votes. A best-answer vote is a win over every "
    "other model in the round; tie and all-bad count as draws. Ratings are Bradley–Terry on "
    "the Elo scale (1000 = average of the rated models) with 95% bootstrap intervals."
)

with svc.sessions() as s:
    me = caller_for(s, user.id)
    stamp = leaderboard.votes_stamp(s)
    tasks = leaderboard.vote_tasks(s)
    all_teams = leaderboard.teams(s)

# Admins may look at any team; everyone else at their own team or the whole organisation
# (the leaderboard shows only aggregates, never who voted what).
team_names = dict(all_teams)
if user.is_admin:
    team_choices = [ALL_TEAMS, *team_names]
else:
    team_choices = [ALL_TEAMS] + ([me.team_id] if me.team_id is not None else [])
default_team = team_choices.index(me.team_id) if me.team_id in team_choices else 0
c1, c2, c3 = st.columns(3)
team_pick = c1.selectbox(
    "Team",
    team_choices,
    index=default_team,
    format_func=lambda t: "Whole organisation" if t == ALL_TEAMS else team_names.get(t, "?"),
)
task_pick = c2.selectbox(
    "Task",
    [None, *tasks],
    format_func=lambda t: "Overall (every task)" if t is None else (t or "(no task)"),
)
range_pick = c3.selectbox("Time range", list(RANGES), index=1)
days = RANGES[range_pick]
since = (
    None
    if days is None
    else (utc_now() - timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
)  # hour granularity keeps the cache useful

rows = board(task_pick, None if team_pick == ALL_TEAMS else team_pick, since, stamp)
if not rows:
    st.info(
        "No votes match these filters yet. Compare models on the Compare page and vote; "
        "ratings appear here."
    )
    st.stop()

st.dataframe(
    [
        {
            "model": r.model,
            "rating": round(r.rating),
            "95% interval": f"{r.ci_low:.0f} – {r.ci_high:.0f}",
            "win rate": r.win_rate,
            "votes": r.votes,
            "median cost / answer": "unpriced"
            if not r.priced
            else ("–" if r.median_cost_micros is None else usd(r.median_cost_micros)),
            "median latency s": None if r.median_latency_ms is None else r.median_latency_ms / 1000,
            "quality per $": r.quality_per_dollar,
        }
        for r in rows
    ],
    hide_index=True,
    width="stretch",
    column_config={
        "win rate": st.column_config.ProgressColumn(
            "win rate", format="percent", min_value=0.0, max_value=1.0
        ),
        "median latency s": st.column_config.NumberColumn(format="%.2f"),
        "quality per $": st.column_config.NumberColumn(
            format="%.0f", help="Chance of beating an average model, per dollar per answer"
        ),
    },
)
unpriced = [r.model for r in rows if not r.priced]
if unpriced:
    st.warning(
        f"Unpriced (cost unknown, not $0): {', '.join(unpriced)}. "
        "An admin can set a price on Admin → Prices."
    )

st.subheader("Quality per dollar")
plotted = [r for r in rows if r.priced and r.median_cost_micros]
if not plotted:
    st.caption("No priced answers to plot yet.")
else:
    fig = px.scatter(
        x=[(r.median_cost_micros or 0) / 1_000_000 for r in plotted],
        y=[r.rating for r in plotted],
        error_y=[r.ci_high - r.rating for r in plotted],
        error_y_minus=[r.rating - r.ci_low for r in plotted],
        text=[r.model for r in plotted],
        labels={"x": "median cost per answer ($, log scale)", "y": "rating"},
        log_x=True,
    )
    fig.update_traces(textposition="top center")
    fig.update_layout(height=420, margin={"l": 10, "r": 10, "t": 10, "b": 10})
    st.plotly_chart(fig, width="stretch")
    st.caption("Up and to the left is better: higher rated and cheaper per answer.")
