"""`make bench`: every benchmark, each printing ratios against a baseline from the same run."""

from __future__ import annotations

import sys

from bench import analytics, api_http, chat_page, compare_round, gateway_overhead, scrubbing


def main() -> int:
    print("Switchboard benchmarks (machine noise applies to both sides of each ratio)")
    gateway_overhead.run()
    scrubbing.run()
    api_http.run()
    compare_round.run()
    analytics.run()
    chat_page.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
