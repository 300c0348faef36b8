"""Import a single-provider set-up (environment keys and a default model) into org defaults.

One step for an admin moving from "OPENAI_API_KEY in the environment" to Switchboard:
each provider key found in the environment becomes an organisation key (encrypted),
and the default model becomes the organisation's default route. Existing org keys and
routes are kept unless ``replace`` is set. The Admin page and `switchboard import-env`
both call :func:`import_env`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy.orm import Session

from core.accounts import keys
from core.accounts.secrets import Cipher
from core.errors import InvalidInput, NotFound
from core.money.catalog import PROVIDER_KEY_ENV, Catalog
from core.settings import routes
from core.settings.keytest import pick_test_model
from core.store.tables import ORG_OWNER_ID

DEFAULT_MODEL_ENV: Final = "SWITCHBOARD_DEFAULT_MODEL"


@dataclass(frozen=True)
class ImportResult:
    imported: tuple[str, ...]  # providers whose environment key is now an org key
    skipped: tuple[tuple[str, str], ...]  # (provider or "route", why it was left alone)
    default_model: str | None  # the org default route set by this import

    def lines(self) -> list[str]:
        out = [
            f"Imported the {p} key from {PROVIDER_KEY_ENV[p]} as an organisation key."
            for p in self.imported
        ]
        out += [f"Skipped {what}: {why}" for what, why in self.skipped]
        if self.default_model:
            out.append(f"Set the organisation's default model to {self.default_model}.")
        return out


def found_env_keys(environ: Mapping[str, str]) -> dict[str, str]:
    """Provider -> environment variable name, for each provider key set in ``environ``."""
    return {p: var for p, var in PROVIDER_KEY_ENV.items() if environ.get(var, "").strip()}


def import_env(
    session: Session,
    cipher: Cipher,
    environ: Mapping[str, str],
    *,
    catalog: Catalog,
    known_model: Callable[[str], bool],
    known_providers: Collection[str],
    actor: str,
    now: datetime,
    model: str | None = None,
    replace: bool = False,
) -> ImportResult:
    """Everything in one transaction (the caller's): all of it is saved, or none."""
    found = found_env_keys(environ)
    chosen = (model or environ.get(DEFAULT_MODEL_ENV, "")).strip() or None
    if not found and chosen is None:
        names = ", ".join(PROVIDER_KEY_ENV.values())
        raise InvalidInput(
            f"No provider key was found in the environment (looked for {names}) and no "
            "default model was given. Nothing was changed."
        )
    if chosen is not None:
        if not known_model(chosen):
            raise NotFound(
                f"Unknown model {chosen!r}. Use a catalog id such as openai/gpt-4o-mini "
                "(`switchboard models` lists them). Nothing was changed."
            )
        info = catalog.get(chosen)
        chosen = info.id if info else chosen
    elif len(found) == 1:
        chosen = pick_test_model(next(iter(found)), catalog, ())
    imported: list[str] = []
    skipped: list[tuple[str, str]] = []
    existing = {k.provider for k in keys.list_keys(session, "org", ORG_OWNER_ID)}
    for provider, var in found.items():
        if provider in existing and not replace:
            skipped.append((provider, "the organisation already has a key (use replace)."))
            continue
        keys.set_key(
            session,
            cipher,
            owner_kind="org",
            owner_id=ORG_OWNER_ID,
            provider=provider,
            secret=environ[var],
            actor=actor,
            now=now,
            known_providers=known_providers,
        )
        imported.append(provider)
    set_model: str | None = None
    if chosen is not None:
        current = routes.get_route(session, scope="org", scope_id=ORG_OWNER_ID)
        if current is not None and not replace and list(current.models)[:1] != [chosen]:
            skipped.append(
                ("route", f"the organisation default is already {current.models[0]} (use replace).")
            )
        else:
            rest = [m for m in (current.models if current else []) if m != chosen]
            # A new default model keeps the route's options (timeouts, weights, ...).
            kept = routes.RouteOptions.from_json(current.options) if current else None
            routes.set_route(
                session,
                scope="org",
                scope_id=ORG_OWNER_ID,
                models=[chosen, *rest][: routes.MAX_CHAIN],
                known_model=known_model,
                actor=actor,
                now=now,
                options=kept,
            )
            set_model = chosen
    return ImportResult(tuple(imported), tuple(skipped), set_model)
