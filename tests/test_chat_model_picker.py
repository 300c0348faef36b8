"""The shared model picker's labels and badges (the widget itself runs in test_chat_page)."""

from __future__ import annotations

from decimal import Decimal

from core.money.catalog import load_catalog
from ui.model_picker import badges_markdown, option_label, price_text


def test_prices_show_cents_and_every_sub_cent_digit() -> None:
    got = [price_text(Decimal(x)) for x in ("0.6", "0.15", "0.075", "2.5", "15")]
    assert got == ["$0.60", "$0.15", "$0.075", "$2.50", "$15.00"]
    assert price_text(None) == "?"


def test_labels_and_badges_come_from_the_catalog() -> None:
    catalog = load_catalog()
    mini = catalog.get("openai/gpt-4o-mini")
    assert mini is not None
    assert option_label(mini.id, mini) == (
        f"openai · {mini.display_name} · low · $0.15/$0.60 per 1M"
    )
    assert option_label("lab/llama3", None) == "lab/llama3 · admin endpoint"
    badges = badges_markdown(mini)
    assert badges.startswith(":green-badge[low]")
    assert ":blue-badge[in $0.15 · out $0.60 per 1M]" in badges
    assert ":gray-badge[vision]" in badges and "context]" in badges
