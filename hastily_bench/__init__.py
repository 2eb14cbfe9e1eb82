"""hastily-bench: transformer inference benchmarks for compute-in-memory accelerators.

The library is the product; the ``hastily-bench`` command is a thin skin over
:mod:`hastily_bench.api`.
"""

from __future__ import annotations

import os as _os

#: Set by a sweep for the worker processes of the local Dask cluster it starts: they ignore
#: Ctrl-C from here on, their first import of the package (the command handles it).
WORKER_IGNORES_SIGINT = "HASTILY_WORKER_IGNORES_SIGINT"
if _os.environ.get(WORKER_IGNORES_SIGINT) == "1":
    import signal as _signal
    import threading as _threading

    if _threading.current_thread() is _threading.main_thread():
        _signal.signal(_signal.SIGINT, _signal.SIG_IGN)

from importlib import metadata as _metadata  # noqa: E402 - after the above, which is urgent

try:
    __version__ = _metadata.version("hastily-bench")
except _metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
