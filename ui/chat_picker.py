"""The Chat page's task and model choice: a task's route picks the model, and the models
you can use (admin endpoints' included) are listed first."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from core.chat import turns, view
from core.chat.model_choice import ModelChoice, model_choice
from core.chat.turns import DefaultModel
from core.request import Caller
from ui import chat_actions as actions
from ui import state
from ui.model_picker import model_picker
from ui.resources import Services

_NAMED_PROVIDERS = 4


@dataclass(frozen=True, slots=True)
class Choice:
    task: str
    picked: str  # what the picker shows
    default: DefaultModel  # the task's route (or the catalog default)

    @property
    def model(self) -> str:
        """What a message asks for: "auto" while the route's own first choice stands."""
        keeps_route = self.picked == self.default.model and self.default.note is None
        return "auto" if keeps_route else self.picked


def hidden_caption(choice: ModelChoice) -> str:
    names = ", ".join(choice.missing_providers[:_NAMED_PROVIDERS])
    more = len(choice.missing_providers) - _NAMED_PROVIDERS
    if more > 0:
        names += f" and {more} more"
    return (
        f"Listing the {len(choice.usable):,} models you can use. "
        f"{len(choice.without_key):,} more need a key you don't have ({names}): add one on "
        "Providers & keys, or tick “Show models without a key”."
    )


def task_and_model(svc: Services, caller: Caller, tasks: list[str], profile: str | None) -> Choice:
    """The Task selector and the model picker, with what the route will do underneath."""
    ss = st.session_state
    left, right = st.columns([1, 3])
    task = left.selectbox(
        "Task",
        tasks,
        key=state.CHAT_TASK,
        on_change=actions.task_changed,
        help="Each task can have its own route (chain of models).",
    )
    gateway = svc.runtime.gateway
    with svc.sessions() as s:
        models = model_choice(s, caller, gateway.resolver(), gateway.environ, profile)
        default = turns.default_model(s, caller, task, svc.catalog, profile, models.usable)
    force = ss.pop(state.CHAT_FORCE_MODEL, None)  # a reopened conversation's model
    if ss.pop(state.CHAT_FOLLOW_ROUTE, False):
        force = default.model  # the task changed: its route picks the model
    with right:
        picked = model_picker(
            "Model",
            svc.catalog,
            key=state.CHAT_MODEL,
            default=default.model,
            models=models.usable,
            unavailable=models.without_key,
            show_unavailable=bool(ss.get(state.CHAT_SHOW_NO_KEY)),
            force=force,
        )
        st.checkbox("Show models without a key", key=state.CHAT_SHOW_NO_KEY)
        if models.without_key and not ss.get(state.CHAT_SHOW_NO_KEY):
            st.caption(hidden_caption(models))
    choice = Choice(task, picked, default)
    if default.note:
        st.caption(default.note)
    elif choice.model == "auto" and default.cost_optimised:
        st.caption(
            "Your route for this task is cost-optimised: each message goes to the best "
            "scoring of " + ", ".join(view.short_model(m) for m in default.chain) + " by "
            "price, speed and votes, so another of them may answer. Its badge says which."
        )
    elif choice.model == "auto" and len(default.chain) > 1:
        st.caption(
            "Your route for this task falls back to "
            + ", ".join(view.short_model(m) for m in default.chain[1:])
            + "."
        )
    return choice
