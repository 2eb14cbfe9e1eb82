"""hastily-bench: transformer inference benchmarks for compute-in-memory accelerators.

The library is the product; the ``hastily-bench`` command is a thin skin over
:mod:`hastily_bench.api`.
"""

from __future__ import annotations

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("hastily-bench")
except _metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
