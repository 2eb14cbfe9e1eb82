"""The ``hastily-bench`` console script: imports the command inside a Ctrl-C guard.

Importing the command (typer, rich, the API) takes a noticeable fraction of a second;
Ctrl-C in that window would otherwise print an import traceback instead of the one
line and exit status 130 that Ctrl-C gives later.
"""

from __future__ import annotations

import sys

#: Exit status after Ctrl-C (128 + SIGINT), as the command gives it.
EXIT_INTERRUPTED = 130


def main() -> None:
    try:
        from hastily_bench.cli import main as command
    except KeyboardInterrupt:
        print("hastily-bench: interrupted", file=sys.stderr)
        raise SystemExit(EXIT_INTERRUPTED) from None
    command()
