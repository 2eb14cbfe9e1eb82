"""A directory of saved runs, for ``run --save DIR`` and "compare with the last run" in CI.

Files are named like pytest-benchmark's ``--benchmark-autosave``, so they sort by
save order and say when and from which commit they were made::

    0001_20250301-141502_3f2a9c1d0b7e.json
    0002_20250302-090011_nogit.json

The counter is one more than the highest counter in the directory. Files that do
not follow the pattern are ignored, so a history directory may hold other files
(a README, a committed baseline).
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Mapping
from pathlib import Path

from .errors import UsageError
from .results import RunDocument, write_atomic

#: ``NNNN_YYYYmmdd-HHMMSS_<commit or nogit>.json``; the counter may outgrow 4 digits.
RUN_FILE_RE = re.compile(
    r"^(?P<counter>\d{4,})_(?P<stamp>\d{8}-\d{6})_(?P<commit>[0-9a-f]{4,40}|nogit)\.json$"
)
_STAMP_FORMAT = "%Y%m%d-%H%M%S"


def _check_directory(directory: Path) -> None:
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{directory}: exists and is not a directory")


def _counter(path: Path) -> int:
    m = RUN_FILE_RE.match(path.name)
    assert m is not None
    return int(m["counter"])


def list_runs(directory: Path | str) -> list[Path]:
    """Saved runs in ``directory``, oldest first (by counter); ``[]`` if it does not exist.

    Raises
    ------
    UsageError
        ``directory`` exists but is not a directory.
    """
    d = Path(directory)
    _check_directory(d)
    if not d.exists():
        return []
    runs = [p for p in d.iterdir() if RUN_FILE_RE.match(p.name) and p.is_file()]
    return sorted(runs, key=lambda p: (_counter(p), p.name))


def latest_run(directory: Path | str) -> Path | None:
    """The most recently saved run in ``directory``, or ``None`` when there is none."""
    runs = list_runs(directory)
    return runs[-1] if runs else None


def _stamp(metadata: Mapping[str, object]) -> str:
    """The run's UTC creation time from its metadata, else now."""
    created = metadata.get("created_utc")
    when: _dt.datetime | None = None
    if isinstance(created, str):
        try:
            when = _dt.datetime.fromisoformat(created)
        except ValueError:
            when = None
    if when is None:
        when = _dt.datetime.now(_dt.UTC)
    elif when.tzinfo is not None:
        when = when.astimezone(_dt.UTC)
    return when.strftime(_STAMP_FORMAT)


def _commit(metadata: Mapping[str, object]) -> str:
    commit = metadata.get("git_commit")
    if isinstance(commit, str) and re.fullmatch(r"[0-9a-fA-F]{4,40}", commit):
        return commit.lower()[:12]
    return "nogit"


def run_file_name(doc: RunDocument, counter: int) -> str:
    """The file name :func:`save_run` gives ``doc`` as the ``counter``-th run."""
    if counter < 1:
        raise ValueError(f"counter must be >= 1, got {counter}")
    return f"{counter:04d}_{_stamp(doc.metadata)}_{_commit(doc.metadata)}.json"


def save_run(doc: RunDocument, directory: Path | str) -> Path:
    """Write ``doc`` as the next run of the history ``directory``.

    Parameters
    ----------
    doc
        The results document, written exactly as ``run --format json`` would.
    directory
        Created with its parents when missing.

    Returns
    -------
    Path
        The new file, ``NNNN_<YYYYmmdd-HHMMSS>_<git commit, 12 hex, or 'nogit'>.json``.

    Notes
    -----
    The write is atomic (a reader never sees half a file). The history expects
    one writer at a time, as in a CI job; two processes saving into one
    directory at the same instant may pick the same counter.
    """
    d = Path(directory)
    _check_directory(d)
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{d}: cannot create the history directory ({exc.strerror})") from None
    runs = list_runs(d)
    counter = _counter(runs[-1]) + 1 if runs else 1
    path = d / run_file_name(doc, counter)
    write_atomic(path, doc.to_json())
    return path
