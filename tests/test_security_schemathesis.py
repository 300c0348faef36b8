"""A bounded schemathesis run over docs/openapi-v1.json: no /v1 answer is ever a 5xx.

Generated bodies, query strings and paths go to a real server (uvicorn on loopback) in
front of a real gateway and the fake OpenAI. SWITCHBOARD_FUZZ_EXAMPLES sets how many
cases each operation gets (default 25, as CI runs it); README "Security" shows a longer run.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from core.api.app import build_app
from core.api.context import ApiContext
from core.money.catalog import Catalog
from tests.fakes import FakeOpenAI
from tests.support.server import ServerThread
from tests.test_api import OPENAI_KEY, catalog, make_runtime, template_db, wire

__all__ = ["catalog", "template_db"]  # fixtures this module borrows

SPEC = Path(__file__).resolve().parent.parent / "docs" / "openapi-v1.json"
EXAMPLES = int(os.environ.get("SWITCHBOARD_FUZZ_EXAMPLES", "25"))


@pytest.fixture
def served(
    isolated_env: Path, template_db: Path, catalog: Catalog, fake_openai: FakeOpenAI
) -> Iterator[tuple[str, str]]:
    shutil.copy(template_db, isolated_env / "switchboard.db")
    environ = {"OPENAI_API_KEY": OPENAI_KEY}
    runtime = make_runtime(catalog, environ)
    token, _ = wire(runtime, fake_openai, None)
    # A fuzzer sends many wrong requests from one address; it is not a token guesser.
    settings_ = runtime.settings.model_copy(update={"api_token_failures_per_minute": 0})
    ctx = ApiContext(settings_, runtime_factory=lambda _: runtime, environ=environ)
    with ServerThread(build_app(ctx)) as server:
        yield server.url, token
    ctx.close()


@pytest.mark.timeout(900)
def test_no_generated_request_gets_a_5xx(served: tuple[str, str]) -> None:
    url, token = served
    schema = schemathesis.openapi.from_dict(json.loads(SPEC.read_text()))
    auth = {"Authorization": f"Bearer {token}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 3
    for operation in operations:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def check(case: schemathesis.Case) -> None:
            response = case.call(base_url=url, headers=auth, timeout=60)
            case.validate_response(response, checks=[not_a_server_error])

        check()
