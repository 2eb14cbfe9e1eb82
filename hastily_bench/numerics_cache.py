"""A disk cache of measured attention errors, so that a short ``run`` does not redo them.

It also keeps the kernels' backend name for ``metadata``, so a cached run need not
import NumPy and the compiled kernels just to name them.

``run --numerics sample`` measures each arithmetic's attention error with the
kernels: seconds of deterministic work whose result depends only on the
arithmetic, the attention shape and the code that measures it. The cache stores
those numbers in ``$XDG_CACHE_HOME/hastily-bench/numerics-FINGERPRINT.json``,
where FINGERPRINT hashes the package version, the source of the measuring code
(``numerics.py``, ``kernels/__init__.py``, ``kernels/reference.py``), the size and
time stamp of each compiled kernel and ``HASTILY_PURE_PYTHON``: any change to
what could change a number starts a new file.

``HASTILY_NUMERICS_CACHE=off`` disables it (the test suite does, to measure for
real); a directory path puts it there.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from . import __version__

CACHE_ENV = "HASTILY_NUMERICS_CACHE"
SCHEMA_VERSION = 1
_OFF = {"0", "off", "no", "false"}

Scalar = float | str
_values: dict[str, Scalar] | None = None


def cache_dir() -> Path | None:
    """Where the cache lives, or None when it is switched off."""
    setting = os.environ.get(CACHE_ENV, "").strip()
    if setting.lower() in _OFF:
        return None
    if setting:
        return Path(setting)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hastily-bench"


@functools.lru_cache(maxsize=1)
def fingerprint() -> str:
    """Hash of everything a measured error depends on besides its arguments."""
    pkg = Path(__file__).resolve().parent
    h = hashlib.sha256(f"{__version__}|{os.environ.get('HASTILY_PURE_PYTHON', '')}".encode())
    for rel in ("numerics.py", "kernels/__init__.py", "kernels/reference.py"):
        with contextlib.suppress(OSError):
            h.update(rel.encode() + (pkg / rel).read_bytes())
    for ext in sorted((pkg / "kernels").glob("_*.*")):
        if ext.suffix in (".so", ".pyd"):
            st = ext.stat()
            h.update(f"{ext.name}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def _path(directory: Path) -> Path:
    return directory / f"numerics-{fingerprint()}.json"


def _load(directory: Path) -> dict[str, Scalar]:
    try:
        doc = json.loads(_path(directory).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # unreadable or corrupt: a cache miss
        return {}
    if not isinstance(doc, dict) or doc.get("schema_version") != SCHEMA_VERSION:
        return {}
    values = doc.get("values")
    if not isinstance(values, dict):
        return {}
    return {k: v for k, v in values.items()
            if isinstance(v, (float, str)) or (isinstance(v, int) and not isinstance(v, bool))}


def _save(directory: Path, values: dict[str, Scalar]) -> None:
    """Write atomically; a cache that cannot be written is simply not kept."""
    with contextlib.suppress(OSError):
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".numerics.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"schema_version": SCHEMA_VERSION, "fingerprint": fingerprint(),
                           "values": values}, fh, sort_keys=True)
            os.replace(tmp, _path(directory))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def cached(key: tuple[object, ...], compute: Callable[[], Scalar], kind: type = float) -> Scalar:
    """``compute()``, or the value stored for ``key`` by an earlier call with the same code
    (only a stored value of type ``kind`` counts: a corrupt file is a miss, never an error)."""
    global _values
    directory = cache_dir()
    if directory is None:
        return compute()
    if _values is None:
        _values = _load(directory)
    k = json.dumps(list(key))
    hit = _values.get(k)
    value = compute() if hit is None else None
    if hit is not None:
        # a hand-edited file could hold the wrong type: only a value of the computed kind counts
        if isinstance(hit, kind) and not isinstance(hit, bool) and (
                not isinstance(hit, float) or math.isfinite(hit)):
            return hit
        value = compute()
    assert value is not None
    _values[k] = value
    # merge with what another process may have written meanwhile
    _values = {**_load(directory), **_values}
    _save(directory, _values)
    return value


def clear_memory() -> None:
    """Forget the values read in this process (tests switch directories)."""
    global _values
    _values = None
