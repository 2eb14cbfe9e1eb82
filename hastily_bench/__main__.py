"""``python -m hastily_bench``: the same as the ``hastily-bench`` command."""

from hastily_bench.console import main

main()
