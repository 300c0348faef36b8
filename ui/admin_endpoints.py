"""Admin > Endpoints: OpenAI-compatible servers and base-URL overrides, with Test and Delete."""

from __future__ import annotations

import streamlit as st

from core.clock import utc_now
from core.errors import SwitchboardError
from core.settings import endpoints
from ui import settings
from ui.admin_data import AdminData


def endpoints_tab(page: AdminData) -> None:
    svc, admin, me = page.svc, page.admin, page.me
    listed, cat = page.listed, svc.catalog
    st.caption(
        "OpenAI-compatible servers (vLLM, LM Studio, a company proxy). Their models are "
        "called as <name>/<model>. An override sends a built-in provider elsewhere."
    )
    if listed:
        st.dataframe(
            [
                {
                    "Name": e.name,
                    "Type": e.kind,
                    "Base URL": e.api_base,
                    "Models": ", ".join(e.models) or "(catalog's)",
                    "Prefill": e.supports_prefill,
                }
                for e in listed
            ],
            hide_index=True,
            width="stretch",
        )
    names = [e.name for e in listed]
    editing = st.selectbox("Endpoint", ["New endpoint", *names], key="endpoint_pick")
    current = next((e for e in listed if e.name == editing), None)
    with st.form("endpoint"):
        c1, c2 = st.columns(2)
        name = c1.text_input(
            "Name",
            value=current.name if current else "",
            key="ep_name",
            disabled=current is not None,
            placeholder="e.g. corp-vllm",
        )
        kind = c2.selectbox(
            "Type",
            endpoints.ENDPOINT_KINDS,
            key="ep_kind",
            index=endpoints.ENDPOINT_KINDS.index(current.kind) if current else 0,
        )
        base = st.text_input(
            "Base URL",
            value=current.api_base if current else "",
            key="ep_base",
            placeholder="https://llm.example.com/v1",
        )
        models_text = st.text_input(
            "Models (comma-separated)",
            key="ep_models",
            value=", ".join(current.models) if current else "",
        )
        prefill = st.checkbox(
            "Supports assistant prefill",
            key="ep_prefill",
            value=current.supports_prefill if current else False,
        )
        if st.form_submit_button("Save endpoint", type="primary"):
            model_list = [m for m in models_text.split(",") if m.strip()]
            try:
                with svc.sessions.begin() as session:
                    save = endpoints.update_endpoint if current else endpoints.add_endpoint
                    info = save(
                        session,
                        name=current.name if current else name,
                        kind=kind,
                        api_base=base,
                        models=model_list,
                        supports_prefill=prefill,
                        actor=admin.username,
                        now=utc_now(),
                        builtin_providers=cat.providers(),
                    )
            except SwitchboardError as exc:
                st.error(exc.message)
            else:
                settings.routing_changed(svc)
                settings.flash(f"Saved endpoint {info.name!r}.")
    if current is not None:
        c1, c2 = st.columns(2)
        if c1.button("Test endpoint", key="test_endpoint"):
            settings.run_key_test(svc, me, current.name, None)
        with c2:

            def _delete_endpoint(ep: str = current.name) -> None:
                with svc.sessions.begin() as session:
                    endpoints.delete_endpoint(session, name=ep, actor=admin.username, now=utc_now())
                settings.routing_changed(svc)
                settings.flash(f"Deleted endpoint {ep!r}.")

            settings.confirm(
                f"endpoint:{current.name}",
                f"Delete endpoint {current.name!r}? Its keys are deleted too, and "
                "routes naming its models will skip them.",
                _delete_endpoint,
                key="endpoint",
            )
        settings.show_key_test(current.name, None)
