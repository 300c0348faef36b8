"""What the Admin page's tabs share: the organisation's teams, users, endpoints and keys,
read once a run, and how an owner of a key is named."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cached_property

from core.accounts import auth, keys
from core.accounts.auth import UserInfo
from core.accounts.keys import KeyInfo
from core.errors import InvalidInput
from core.request import Caller
from core.settings import endpoints
from core.settings.endpoints import EndpointInfo
from core.store.tables import ORG_OWNER_ID
from ui import settings
from ui.resources import Services


@dataclass(frozen=True)
class AdminData:
    svc: Services
    admin: UserInfo
    me: Caller
    teams: list[tuple[int, str]]
    users: list[UserInfo]
    listed: list[EndpointInfo]
    shared_keys: list[KeyInfo]

    @cached_property  # walks the whole catalog; three tabs read it each run
    def known(self) -> set[str]:
        """Providers a key can be stored for: the catalog's and openai-compatible endpoints."""
        compatible = (e.name for e in self.listed if e.kind == "openai-compatible")
        return {*self.svc.catalog.providers(), *compatible}

    def owner_label(self, kind: str, owner_id: int) -> str:
        return (
            "Organisation" if kind == "org" else f"Team {dict(self.teams).get(owner_id, owner_id)}"
        )


def load_admin(svc: Services, admin: UserInfo) -> AdminData:
    with svc.sessions() as session:
        teams = auth.list_teams(session)
        return AdminData(
            svc=svc,
            admin=admin,
            me=settings.caller(svc, admin.id),
            teams=teams,
            users=auth.list_users(session),
            listed=endpoints.list_endpoints(session),
            shared_keys=keys.list_keys(session, "org", ORG_OWNER_ID)
            + [k for team_id, _ in teams for k in keys.list_keys(session, "team", team_id)],
        )


def parse_usd(text: str, what: str) -> Decimal:
    """Dollars typed by a person ("$2.50", "1,000"), exactly; an error says what to type."""
    try:
        value = Decimal(text.strip().lstrip("$").replace(",", ""))
    except InvalidOperation:
        raise InvalidInput(
            f"{what} {text!r} is not an amount; type dollars such as 25 or 2.50."
        ) from None
    if not value.is_finite():
        raise InvalidInput(f"{what} must be a finite amount of dollars.")
    return value
