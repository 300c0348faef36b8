"""Running the real `switchboard` command in-process, as the tests of every CLI area do."""

from __future__ import annotations

import io

from core.cli import main
from core.clock import Clock, utc_now


class PipedStdin(io.StringIO):
    """Standard input that is not a terminal, so secrets are read from it, not prompted for."""

    def isatty(self) -> bool:
        return False


def run_cli(*argv: str, stdin: str = "", clock: Clock = utc_now) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of one `switchboard` invocation."""
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdin=PipedStdin(stdin), stdout=out, stderr=err, clock=clock)
    return code, out.getvalue(), err.getvalue()
