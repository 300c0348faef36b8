"""Models: the catalog with search, filters and sortable prices."""

from decimal import Decimal

import streamlit as st

from ui.resources import catalog
from ui.session import current_user

current_user()
cat = catalog()

st.title("Models")
st.caption(
    f"{len(cat.models())} chat models from litellm's bundled price map · "
    f"price data {cat.price_version} · prices in USD per 1M tokens"
)

c1, c2, c3, c4, c5 = st.columns([3, 2, 2, 2, 1.5])
query = c1.text_input("Search", placeholder="name or id, e.g. haiku")
providers = c2.multiselect("Provider", cat.providers())
capabilities = c3.multiselect("Capabilities", ["vision", "tools", "json_mode", "streaming"])
tiers = c4.multiselect("Cost tier", ["free", "low", "medium", "high", "unpriced"])
max_price = c5.number_input("Max input $/1M", min_value=0.0, value=None, step=0.5, format="%.2f")

found = cat.search(
    query=query,
    providers=providers,
    capabilities=capabilities,
    tiers=tiers,
    # The widget returns a float; go through str so the filter stays exact.
    max_input_price=None if max_price is None else Decimal(str(max_price)),
)
if not found:
    st.info("No model matches these filters. Clear a filter or widen the price limit.")
else:
    st.dataframe(
        cat.to_rows(found),
        hide_index=True,
        width="stretch",
        column_config={
            "input_price": st.column_config.NumberColumn("In $/1M", format="%.4f"),
            "output_price": st.column_config.NumberColumn("Out $/1M", format="%.4f"),
            "context_window": st.column_config.NumberColumn("Context", format="%d"),
            "max_output_tokens": st.column_config.NumberColumn("Max out", format="%d"),
        },
    )
    st.caption(f"{len(found)} shown. Click a column header to sort. Unpriced models show no price.")
