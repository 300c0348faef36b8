"""`make bench`: every benchmark, each printing ratios against a baseline from the same run.

`python -m bench browser` runs only the browser benchmark (bench/browser.py), the slow one:
it fills 200k- and 1M-row ledgers first.
"""

from __future__ import annotations

import sys

from bench import (
    analytics,
    api_http,
    browser,
    chat_page,
    compare_round,
    gateway_overhead,
    scrubbing,
)


def main() -> int:
    if sys.argv[1:] == ["browser"]:
        browser.run()
        return 0
    print("Switchboard benchmarks (machine noise applies to both sides of each ratio)")
    gateway_overhead.run()
    scrubbing.run()
    api_http.run()
    compare_round.run()
    analytics.run()
    chat_page.run()
    browser.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
