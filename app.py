"""Switchboard entry point: `streamlit run app.py`.

Imported by the ASGI server (no script context), this module builds the `st.App`
that serves the dashboard plus the `/v1` API routes. Run by Streamlit as the page
script, it renders the dashboard: sign-in, then pages by role.
"""

import os

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

if get_script_run_ctx(suppress_warning=True) is None:
    import sys

    from core.api.app import api_routes
    from core.api.context import ApiContext
    from core.config import generated_cookie_key_message, load_settings, resolve_cookie_key
    from core.errors import ConfigError

    settings = load_settings()
    # Refuse to start rather than serve /v1 beside a dashboard nobody can sign in to.
    try:
        _, generated = resolve_cookie_key(settings)
    except ConfigError as exc:
        print(f"Switchboard cannot start: {exc.message}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    if generated is not None:
        print(generated_cookie_key_message(generated), flush=True)
    # The lifespan closes the API's runtime on shutdown, flushing queued ledger rows.
    api = ApiContext(settings, freeze_heap=True)
    app = st.App(__file__, routes=api_routes(api), lifespan=api.lifespan)
else:
    from ui.shell import render

    render()
