"""Money and counts in words for people: the one place that decides how a figure reads.

People read ``$7.91``, ``$1,250.50`` and, below a cent, ``$0.0073`` (two significant
digits, so a tiny cost never reads as ``$0.00``). Prices per 1M tokens are rates, not
amounts, and keep the digits the price list gives (``$0.075``). Exports and the API
never come here: they carry exact micro-dollars or exact decimal dollars.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

from core.request import micros_to_usd

CENT: Final = Decimal("0.01")
SUB_CENT_DIGITS: Final = 2  # significant digits shown for an amount under a cent


def usd(micros: int) -> str:
    """Dollars for people: "$7.91", "$1,250.50", "-$0.50", "$0.0073", "$0.00"."""
    amount = micros_to_usd(abs(micros))
    sign = "-" if micros < 0 else ""
    if amount == 0 or amount >= CENT:
        return f"{sign}${amount.quantize(CENT, rounding=ROUND_HALF_UP):,}"
    # Below a cent: round to two significant digits; the exponent says where they start.
    shift = amount.adjusted() - SUB_CENT_DIGITS + 1
    rounded = amount.quantize(Decimal(1).scaleb(shift), rounding=ROUND_HALF_UP)
    if rounded >= CENT:  # $0.00996 rounds up to a cent
        return f"{sign}${CENT}"
    return f"{sign}${rounded.normalize():f}"


def usd_or_unpriced(micros: int | None, priced: bool = True) -> str:
    """A cost that may be unknown: "unpriced", never "$0.00"."""
    return "unpriced" if micros is None or not priced else usd(micros)


def price_per_1m(value: Decimal | None) -> str:
    """A price per 1M tokens: "$2.50", "$0.60", "$0.075" (every digit below a cent)."""
    if value is None:
        return "?"
    exact = value.normalize()
    exponent = exact.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        return f"${exact:,f}"
    return f"${value.quantize(CENT, rounding=ROUND_HALF_UP):,}"


def percent_text(share: float, digits: int = 0) -> str:
    """A share of a whole (0.99 -> "99%"); never "100%" before the whole is reached."""
    value = share * 100
    if math.isinf(value):  # spend against a zero limit
        return "over 100%"
    if digits == 0 and 99 < value < 100:
        return "99%"
    return f"{value:,.{digits}f}%"
