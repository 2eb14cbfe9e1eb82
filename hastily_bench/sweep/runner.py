"""Run a sweep: validate, stream rows to disk in point order, keep the front, resume.

Output is two files: ``NAME.jsonl``, one results row per line in point order
(each row exactly what ``run --numerics off -f json`` gives for that point), and
``NAME.summary.json``: the sweep's definition, counts, Pareto front and
provenance. Rows are appended one chunk per ``write`` as soon as every earlier
chunk is written, so an interrupted sweep leaves a prefix of the full output;
``--resume`` checks that the file belongs to the same sweep, checks its last row
by recomputing it, and continues after it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import signal
import stat
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from .. import api
from ..errors import HastilyError, UsageError
from ..graph import check_point
from ..host import PluginHost
from ..io import parse_json
from ..params import load_json
from ..results import Result, RunDocument, check_output_path, result_problem, write_atomic
from ..workload import Workload
from .engine import PARENT_ONLY_FDS, ChunkResult, Evaluator
from .executors import Executor, default_chunk_size, make_executor
from .grid import MAX_POINTS, Axis, SweepSpec, make_axis, parse_axis_text
from .pareto import (
    DEFAULT_OBJECTIVES,
    RESULT_METRICS,
    FrontAccumulator,
    FrontPoint,
    check_metrics,
    parse_constraint,
    parse_objective,
)

SUMMARY_SCHEMA_VERSION = 1
SUMMARY_KIND = "hastily-bench sweep"
#: A summary's status: written as the sweep starts, and as it ends.
SUMMARY_STATUSES = ("running", "interrupted", "complete")
DEFAULT_SEQ_LENS = (1024,)
ProgressFn = Callable[[int, int], None]


class WorkerLost(Exception):
    """A worker process died and the pool did not say so."""


class SweepInterrupted(KeyboardInterrupt):
    """Raised in the parent by a second SIGINT/SIGTERM: stop waiting for running chunks. An
    interruption, never a plugin's fault: raised inside a model (``-j 1`` evaluates chunks in
    this process) it ends the chunk instead of becoming that point's error row."""


#: Designs of each accelerator tried, at most, for one with a result to check metric names on.
PROBES = 16

#: Seconds between checks for a signal while waiting for chunks.
WAIT_S = 0.2


def summary_path(output: Path) -> Path:
    """``sweep.jsonl`` -> ``sweep.summary.json``."""
    return output.with_name(output.stem + ".summary.json")


def prepare(
    host: PluginHost,
    *,
    workloads: Sequence[str],
    accelerators: Sequence[str] = (),
    seq_lens: Sequence[int] = (),
    batches: Sequence[int] = (),
    sets: Sequence[str] = (),
    grid: Sequence[str] = (),
    constraints: Sequence[str] = (),
    objectives: Sequence[str] = (),
) -> tuple[SweepSpec, Evaluator]:
    """Check every input and build the spec; nothing runs but a few probe points per accelerator.

    Raises :class:`UsageError` naming the first mistake.
    """
    if not workloads:
        raise UsageError("no workload given")
    resolved: list[Workload] = []
    for arg in dict.fromkeys(workloads):
        w = api.resolve_workload(host, arg)
        if any(o.name == w.name for o in resolved):
            raise UsageError(f"two workloads are named {w.name!r}; results are keyed by name")
        resolved.append(w)
    accels = list(dict.fromkeys(accelerators or host.default_accelerators()))
    if not accels:
        raise UsageError("no accelerator selected and no default accelerator is registered")
    for a in accels:
        host.accelerator(a)
    lens = list(dict.fromkeys(seq_lens or DEFAULT_SEQ_LENS))
    bs = list(dict.fromkeys(batches or (1,)))
    for s in lens:
        check_point(s, 1)
    for b in bs:
        check_point(1, b)
    overrides = api.parse_overrides(host, sets)
    for name in overrides:
        if name not in accels:
            raise UsageError(f"--set names accelerator {name!r}, which is not part of this sweep")
    axes: list[Axis] = []
    for item in grid:
        accel, param, texts = parse_axis_text(item)
        if accel not in accels:
            host.accelerator(accel)  # unknown: suggestion
            raise UsageError(f"--grid {accel}.{param}: accelerator {accel!r} is not part of this "
                             f"sweep ({', '.join(accels)}); add it with -a {accel}")
        p = host.accelerator(accel).spec.params[param]  # unknown: suggestion
        if isinstance(p.value, bool) and ":" in item.partition("=")[2]:
            raise UsageError(f"--grid {accel}.{param}: a boolean takes a list (true,false), not a range")
        if param in overrides.get(accel, {}):
            raise UsageError(f"{accel}.{param} is both set (--set) and swept (--grid)")
        if any(a.accelerator == accel and a.param == param for a in axes):
            raise UsageError(f"--grid {accel}.{param} given twice")
        axes.append(make_axis(p, accel, texts, f"--grid {accel}.{param}"))
    cons = [parse_constraint(c) for c in constraints]
    objs = [parse_objective(o) for o in objectives]
    metrics = [o.metric for o in objs]
    for o in objs:
        if metrics.count(o.metric) > 1:
            raise UsageError(f"--objective: metric {o.metric!r} is given twice (an objective is "
                             "one direction per metric)")
    spec = SweepSpec(tuple(resolved), tuple(accels), tuple(lens), tuple(bs), tuple(sets),
                     tuple(axes), tuple(str(c) for c in cons), tuple(str(o) for o in objs),
                     strict_plugins=host.strict)
    if spec.total > MAX_POINTS:
        raise UsageError(f"the sweep has {spec.total:,} points, more than {MAX_POINTS:,}")
    # probe: a point of every accelerator that gives a result (the first of up to PROBES,
    # each workload, length and batch in turn, designs spread), to check metric names
    # before any output
    ev = Evaluator(spec, host)
    probes = []
    names = [c.metric for c in cons] + [o.metric for o in objs]
    groups = spec.total // spec.group_size
    offset = 0
    for a, size in zip(accels, spec._sizes, strict=True):
        per = min(size, -(-PROBES // groups))  # designs per group
        designs = [k * size // per for k in range(per)]
        tried = [g * spec.group_size + offset + j for j in designs for g in range(groups)][:PROBES]
        first = None
        for index in tried:
            r = ev.point(index)
            first = first or r
            if r.ok:
                probes.append((a, r.to_dict()))
                break
        else:
            unknown = [n for n in names if n not in RESULT_METRICS]
            if unknown and first is not None:
                raise UsageError(f"metric {unknown[0]!r} cannot be checked: none of {len(tried)} "
                                 f"designs of {a} tried gave a result (the first: "
                                 f"{(first.error or first.status).splitlines()[0]})")
        offset += size
    for a, row in probes:
        check_metrics(names, row, a)
    if not objs:
        defaults = [parse_objective(o) for o in DEFAULT_OBJECTIVES]
        usable = []
        for o in defaults:
            try:
                for a, row in probes:
                    check_metrics([o.metric], row, a)
            except UsageError:
                continue
            usable.append(str(o))
        spec = SweepSpec(spec.workloads, spec.accelerators, spec.seq_lens, spec.batches, spec.sets,
                         spec.axes, spec.constraints, tuple(usable), strict_plugins=host.strict)
        ev = Evaluator(spec, host)
    return spec, ev


@dataclass
class SweepState:
    """Counts and front of the rows written so far."""

    done: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {"ok": 0, "error": 0, "unsupported": 0})
    feasible: int = 0


@dataclass
class SweepOutcome:
    output: Path
    summary: Path
    total: int
    done: int
    skipped: int
    status: str  # complete | interrupted
    counts: dict[str, int]
    feasible: int
    front: list[FrontPoint]
    elapsed_s: float
    points_per_s: float
    executor: str
    summary_doc: dict[str, Any]


def _chunks(start: int, total: int, size: int, taper: int = 0) -> Iterator[tuple[int, int]]:
    """Chunks of ``size`` points; with ``taper`` workers, the last ones shrink (down to 64
    points) so that no worker waits long for another's last chunk."""
    s = start
    while s < total:
        n = size
        left = total - s
        if taper and left < 2 * taper * size:
            n = min(size, max(64, -(-left // (2 * taper))))
        yield s, min(total, s + n)
        s += n


def _check_resume(output: Path, summary: Path, spec: SweepSpec, ev: Evaluator,
                  objectives: Sequence[str], constraints: Sequence[str]) -> tuple[SweepState, list[FrontPoint]]:
    """Validate an existing output for ``--resume``; truncate a torn last line."""
    if not summary.exists():
        raise UsageError(f"{output}: no {summary.name} next to it, so it cannot be resumed; "
                         "remove it or use --overwrite")
    doc = load_summary(summary)
    _check_summary_rows(doc, summary, output)
    if doc.get("spec_digest") != spec.digest():
        raise UsageError(f"{output}: written by a different sweep (other workloads, lengths, "
                         "accelerators, --set or --grid); use --overwrite or another -o")
    done, last = _trim_and_count(output)
    if done > spec.total:
        raise UsageError(f"{output}: has {done} rows, the sweep only {spec.total}")
    if done:
        expect = json.JSONEncoder(separators=(",", ":")).encode(ev.point(done - 1).to_dict()).encode()
        if last != expect:
            raise UsageError(f"{output}: its last row differs from this sweep's point {done - 1} "
                             "(a different model version, or --debug set differently?); use --overwrite")
    same_scoring = (list(doc.get("objectives", [])) == list(objectives)
                    and list(doc.get("constraints", [])) == list(constraints))
    if doc.get("done") == done and same_scoring and isinstance(doc.get("front"), list):
        state = SweepState(done, dict(doc["counts"]), int(doc["feasible"]))
        return state, [FrontPoint.from_dict(p) for p in doc["front"]]
    # the summary is older than the rows (the sweep was killed): rescan the rows
    state = SweepState(done)
    front = FrontAccumulator([parse_objective(o) for o in objectives])
    pending: list[FrontPoint] = []
    for index, row in enumerate(read_rows(output)):
        state.counts[row["status"]] += 1
        if ev.feasible(row):
            state.feasible += 1
            *_, ai, digits = spec.decode(index)
            fp = ev.front_point(index, row, ai, digits) if ev.objectives else None
            if fp is not None:
                pending.append(fp)
                if len(pending) >= 4096:
                    front.add(pending)
                    pending = []
    front.add(pending)
    return state, front.points()


_BLOCK = 1 << 20


def _newline_before(fh: Any, pos: int) -> int:
    """Offset just after the last newline before ``pos`` (0 when there is none)."""
    end = pos
    while end > 0:
        start = max(0, end - _BLOCK)
        fh.seek(start)
        k: int = fh.read(end - start).rfind(b"\n")
        if k >= 0:
            return start + k + 1
        end = start
    return 0


def _trim_and_count(path: Path) -> tuple[int, bytes]:
    """Drop a torn last line; return (complete lines, last line), reading in blocks."""
    with open(path, "rb+") as fh:
        size = fh.seek(0, os.SEEK_END)
        end = _newline_before(fh, size)
        if end != size:
            fh.truncate(end)
        fh.seek(0)
        lines = pos = 0
        while pos < end:
            block = fh.read(min(_BLOCK, end - pos))
            pos += len(block)
            lines += block.count(b"\n")
        last = b""
        if lines:
            begin = _newline_before(fh, end - 1)
            fh.seek(begin)
            last = fh.read(end - 1 - begin)
        return lines, last


def run_sweep(
    spec: SweepSpec,
    evaluator: Evaluator,
    *,
    output: Path,
    executor: str = "local",
    jobs: int | None = None,
    scheduler: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    chunk_size: int | None = None,
    progress: ProgressFn | None = None,
    command: Sequence[str] | None = None,
) -> SweepOutcome:
    """Run ``spec``, writing rows to ``output`` and the summary next to it.

    Ctrl-C (SIGINT) and SIGTERM stop submitting work, write every chunk that
    finished in order, and return with status ``interrupted``.
    """
    output = check_output_path(output)
    summary = summary_path(output)
    if chunk_size is not None and chunk_size < 1:
        raise UsageError(f"--chunk-size must be >= 1, got {chunk_size}")
    host = evaluator.host
    objectives = [parse_objective(o) for o in spec.objectives]
    front = FrontAccumulator(objectives)
    # rows being written by another sweep are neither resumed nor overwritten
    lock = _open_locked(output, create=False)
    try:
        return _run_locked(spec, evaluator, host, output, summary, front, lock, executor=executor,
                           jobs=jobs, scheduler=scheduler, resume=resume, overwrite=overwrite,
                           chunk_size=chunk_size, progress=progress, command=command)
    finally:
        if lock is not None:
            PARENT_ONLY_FDS.discard(lock)
            os.close(lock)


def _open_locked(output: Path, *, create: bool) -> int | None:
    """``output`` opened for appending and locked against other sweeps (None when it does
    not exist and ``create`` is false; ``create`` makes a new file, refusing one that
    appeared since the checks). A lock held elsewhere is one line, exit 2. Forked workers
    close their copy of it (:data:`PARENT_ONLY_FDS`)."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK | (os.O_CREAT | os.O_EXCL if create else 0)
    try:
        fd = os.open(output, flags, 0o666)
    except FileNotFoundError:
        return None
    except FileExistsError:
        raise UsageError(f"{output}: appeared while this sweep started (another sweep?); "
                         "use --resume or --overwrite") from None
    except OSError as exc:
        raise UsageError(f"{output}: cannot open ({exc.strerror})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UsageError(f"{output}: not a regular file")
    PARENT_ONLY_FDS.add(fd)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory locks
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        PARENT_ONLY_FDS.discard(fd)
        os.close(fd)
        raise UsageError(f"{output}: another sweep is writing it; wait for it to finish or use "
                         "another -o") from None
    except OSError as exc:
        if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            PARENT_ONLY_FDS.discard(fd)
            os.close(fd)
            raise UsageError(f"{output}: cannot lock ({exc.strerror})") from None
        # a file system without locks (some network mounts): the sweep runs unguarded
    return fd


def _run_locked(spec: SweepSpec, evaluator: Evaluator, host: PluginHost, output: Path, summary: Path,
                front: FrontAccumulator, lock: int | None, *, executor: str, jobs: int | None,
                scheduler: str | None, resume: bool, overwrite: bool, chunk_size: int | None,
                progress: ProgressFn | None, command: Sequence[str] | None) -> SweepOutcome:
    """:func:`run_sweep` while holding the lock on existing rows (``lock``)."""
    if output.exists() and resume:
        state, previous = _check_resume(output, summary, spec, evaluator, spec.objectives,
                                        spec.constraints)
        front.add(previous)
    elif output.exists() and not overwrite:
        raise UsageError(f"{output}: exists; use --resume to continue that sweep or --overwrite "
                         "to start again")
    elif summary.exists() and not overwrite:
        # a summary without its rows: another sweep's (rows deleted) or not a sweep's at all
        raise UsageError(f"{summary}: exists without {output.name}; remove it or use --overwrite")
    else:
        other = _rows_of(summary)
        if _other_rows_share(summary, output, other):
            # --overwrite replaces this sweep's outputs, not the summary of another's rows
            raise UsageError(f"{summary}: is the summary of the rows in {other}, which share "
                             f"{output.name}'s stem; use another -o")
        state = SweepState()
    skipped = state.done
    # a bad executor option or an unreachable scheduler fails before anything is written;
    # local workers are forked before the metadata (naming the kernels imports NumPy, whose
    # threads would make forking unsafe)
    ex = make_executor(executor, spec, evaluator, jobs=jobs, scheduler=scheduler,
                       points=spec.total - state.done, chunk_size=chunk_size)
    try:
        return _run_with(ex, spec, evaluator, host, output, summary, state, front, skipped,
                         chunk_size, command, progress, lock)
    finally:
        with contextlib.suppress(KeyboardInterrupt, SweepInterrupted):  # (idempotent)
            ex.close(cancel=True)


def _run_with(ex: Executor, spec: SweepSpec, evaluator: Evaluator, host: PluginHost, output: Path,
              summary: Path, state: SweepState, front: FrontAccumulator, skipped: int,
              chunk_size: int | None, command: Sequence[str] | None,
              progress: ProgressFn | None, lock: int | None) -> SweepOutcome:
    """:func:`run_sweep` once its executor exists (the caller closes it whatever happens)."""
    meta = api.metadata(host, numerics="off", command=command)
    own = lock is None  # a new output: created (and locked) here
    fd = _open_locked(output, create=True) if own else lock
    assert fd is not None
    try:
        if not skipped:
            os.ftruncate(fd, 0)
        return _write_rows(ex, spec, output, summary, state, front, skipped, chunk_size, progress,
                           meta, fd)
    finally:
        if own:
            PARENT_ONLY_FDS.discard(fd)
            os.close(fd)


def _write_rows(ex: Executor, spec: SweepSpec, output: Path, summary: Path, state: SweepState,
                front: FrontAccumulator, skipped: int, chunk_size: int | None,
                progress: ProgressFn | None, meta: dict[str, Any], fd: int) -> SweepOutcome:
    """Run the chunks, appending their rows to ``fd`` in point order."""
    size = chunk_size or default_chunk_size(spec.total - state.done, ex.workers)
    started = time.perf_counter()

    def summary_doc(status: str) -> dict[str, Any]:
        elapsed = time.perf_counter() - started
        new = state.done - skipped
        return {
            "schema_version": SUMMARY_SCHEMA_VERSION,
            "kind": SUMMARY_KIND,
            "status": status,
            "rows": output.name,
            "spec_digest": spec.digest(),
            "total": spec.total,
            "done": state.done,
            "counts": dict(state.counts),
            "feasible": state.feasible,
            "constraints": list(spec.constraints),
            "objectives": list(spec.objectives),
            "front": [p.to_dict(front.objectives) for p in front.points()],
            "spec": spec.to_dict(),
            "executor": {"description": ex.description, "workers": ex.workers, "chunk_size": size},
            "session": {"resumed_at": skipped, "points": new, "elapsed_s": round(elapsed, 3),
                        "points_per_s": round(new / elapsed, 1) if elapsed > 0 else None},
            "metadata": meta,
        }

    write_atomic(summary, json.dumps(summary_doc("running"), indent=2) + "\n")
    # The first SIGINT/SIGTERM only sets a flag, checked between chunks, so a signal can
    # never land between writing a chunk and counting it; a second one aborts the wait.
    signals = [0]
    committing = [False]  # a second signal waits for the chunk being written to be counted

    def on_signal(signum: int, frame: FrameType | None) -> None:
        signals[0] += 1
        if signals[0] > 1 and not committing[0]:
            raise SweepInterrupted()

    handled = (signal.SIGINT, signal.SIGTERM)
    old = {}
    if threading.current_thread() is threading.main_thread():
        old = {s: signal.getsignal(s) for s in handled}
        for s in handled:
            signal.signal(s, on_signal)
    ready: dict[int, Any] = {}
    inflight: dict[Any, int] = {}
    window = 2 * ex.workers + 2
    failure = ""

    def commit(*, stopping: bool = False) -> None:
        while state.done in ready:
            r = ready.pop(state.done)
            committing[0] = True  # the rows, their counts and `done` agree, whatever signal comes
            try:
                os.write(fd, r.data)
                for k, v in r.counts.items():
                    state.counts[k] += v
                state.feasible += r.feasible
                front.add(r.front)
                state.done = r.stop
            finally:
                committing[0] = False
            if signals[0] > 1 and not stopping:
                raise SweepInterrupted()  # (held back while the chunk was written)
            if progress is not None:
                progress(state.done, spec.total)

    def result(fut: Any) -> ChunkResult:
        try:
            return ex.result(fut)
        except SweepInterrupted:
            raise
        except (KeyboardInterrupt, SystemExit) as exc:
            # this process's own signals never come back as a chunk's exception: a worker's
            # code raised it (a workload plugin building a graph, say), a fault, not a Ctrl-C
            raise WorkerLost(f"a worker raised {type(exc).__name__} {exc}".rstrip()) from None

    def collect() -> None:
        done = ex.wait_first(inflight, WAIT_S)
        for fut in done:
            ready[inflight.pop(fut)] = result(fut)
        if not done:
            # the pool notices a dead worker itself, unless it is stuck reading that
            # worker's half-sent result: then only the parent can tell
            why = ex.lost()
            if why:
                raise WorkerLost(why)
        commit()

    try:
        if progress is not None:
            progress(state.done, spec.total)
        try:
            # the default chunks taper at the end; a chunk size given is kept throughout
            for start, stop in _chunks(state.done, spec.total, size, 0 if chunk_size else ex.workers):
                while len(inflight) >= window and not signals[0]:
                    collect()
                if signals[0]:
                    break
                inflight[ex.submit(start, stop)] = start
            # finish what is running (chunks are short); a second signal gives up waiting
            while inflight:
                collect()
        except (KeyboardInterrupt, SweepInterrupted):
            signals[0] = max(signals[0], 1)
            # the chunks that did finish are still written (with -j 1 every chunk submitted
            # ran to its end in submit, the interrupted one aside)
            with contextlib.suppress(KeyboardInterrupt, SweepInterrupted, Exception):
                for fut in ex.wait_first(inflight, 0) if inflight else ():
                    start = inflight.pop(fut)
                    with contextlib.suppress(Exception):
                        ready[start] = result(fut)
                commit(stopping=True)  # (what fails here is left to --resume)
        except Exception as exc:  # a worker died (killed, out of memory) or the cluster went away
            failure = (f"{type(exc).__name__}: {exc}".strip().splitlines()[0].rstrip(".")
                       if str(exc) else type(exc).__name__)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        with contextlib.suppress(KeyboardInterrupt, SweepInterrupted):  # yet another signal
            ex.close(cancel=True, abandon=signals[0] > 1)
        if failure and signals[0]:
            # Ctrl-C or SIGTERM sent to the whole process group also ends the workers: the
            # pool breaking then is the interruption, not a fault of its own
            failure = ""
        # every point written is complete, whatever signal came after the last chunk
        status = "complete" if state.done == spec.total else "interrupted"
        doc = summary_doc(status)
        if failure:
            doc["failure"] = failure
        write_atomic(summary, json.dumps(doc, indent=2) + "\n")
    if failure:
        raise HastilyError(f"the sweep stopped: {failure}; {state.done:,} of {spec.total:,} points "
                           f"are written to {output}, and --resume continues from there")
    elapsed = time.perf_counter() - started
    new = state.done - skipped
    return SweepOutcome(output, summary, spec.total, state.done, skipped, status, dict(state.counts),
                        state.feasible, front.points(), elapsed, new / elapsed if elapsed > 0 else 0.0,
                        ex.description, doc)


def load_summary(path: Path | str) -> dict[str, Any]:
    """A sweep summary (``*.summary.json``), or the summary next to a ``*.jsonl``."""
    p = rows = Path(path)
    if p.suffix == ".jsonl":
        p = summary_path(p)
    doc = load_json(p)
    if not isinstance(doc, dict) or doc.get("kind") != SUMMARY_KIND:
        raise UsageError(f"{p}: not a sweep summary")
    if type(doc.get("schema_version")) is not int or doc.get("schema_version") != SUMMARY_SCHEMA_VERSION:
        raise UsageError(f"{p}: schema_version {doc.get('schema_version')!r} is not supported "
                         f"(expected {SUMMARY_SCHEMA_VERSION})")
    check_summary(doc, str(p))
    if rows is not p:
        _check_summary_rows(doc, p, rows)
    return doc


def _rows_of(summary: Path) -> str | None:
    """The rows file an existing summary names (None when there is no readable one)."""
    try:
        doc = load_json(summary) if summary.is_file() else None
    except (HastilyError, OSError):
        return None
    name = doc.get("rows") if isinstance(doc, dict) else None
    return name if _is_file_name(name) else None


def _other_rows_share(summary: Path, rows: Path, other: object) -> bool:
    """Does ``summary`` name rows ``other``, not ``rows``, that exist beside them and whose
    summary it is too (same stem)?"""
    return (isinstance(other, str) and other != rows.name and (rows.parent / other).exists()
            and summary_path(rows.parent / other) == summary)


def _check_summary_rows(doc: Mapping[str, Any], summary: Path, rows: Path) -> None:
    """Refuse a summary that describes other rows than ``rows``: rows present beside them
    whose summary it is too (``-o q.jsonl`` and ``-o q.csv`` share ``q.summary.json``).
    Rows and summary renamed together are fine: the rows the summary names are gone, or
    have a summary of their own name."""
    other = doc.get("rows")
    if _other_rows_share(summary, rows, other):
        raise UsageError(f"{summary}: describes the rows in {other}, not {rows.name} "
                         "(rows files with the same stem share a summary)")


def _is_file_name(name: object) -> bool:
    """A bare file name (what a summary's ``rows`` holds): no directory part."""
    return isinstance(name, str) and name not in ("", ".", "..") and Path(name).name == name


def _is_count(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def check_summary(doc: dict[str, Any], where: str) -> None:
    """Refuse a summary whose fields readers use are missing, of the wrong type or
    inconsistent (a hand-edited or truncated file is one line, exit 2, never a traceback)."""
    def bad(what: str) -> UsageError:
        return UsageError(f"{where}: {what}")

    for key in ("rows", "total", "done", "feasible", "counts", "front", "objectives", "constraints", "spec"):
        if key not in doc:
            raise bad(f"{key!r} is missing")
    for key, kind in (("spec", dict), ("front", list), ("objectives", list), ("constraints", list),
                      ("metadata", dict), ("counts", dict)):
        if key in doc and not isinstance(doc[key], kind):
            raise bad(f"{key!r} must be a JSON {'object' if kind is dict else 'array'}")
    spec = doc.get("spec", {})
    grid = spec.get("grid", [])
    if not isinstance(grid, list) or not all(isinstance(a, dict) for a in grid):
        raise bad("'spec.grid' must be an array of objects")
    if not all(isinstance(a.get("accelerator"), str) and isinstance(a.get("param"), str) for a in grid):
        raise bad("each 'spec.grid' entry must name its 'accelerator' and 'param'")
    if not _is_file_name(doc.get("rows")):
        raise bad("'rows' must name the rows file beside the summary")
    if "status" in doc and doc["status"] not in SUMMARY_STATUSES:
        raise bad(f"'status' is {doc['status']!r}, not one of {', '.join(SUMMARY_STATUSES)}")
    objectives = []
    for o in doc.get("objectives", []):
        if not isinstance(o, str):
            raise bad(f"'objectives' holds {o!r}, not an objective such as 'max:tops'")
        objectives.append(parse_objective(o).metric)
    if len(set(objectives)) != len(objectives):
        raise bad("'objectives' names a metric twice")
    for c in doc.get("constraints", []):
        if not isinstance(c, str):
            raise bad(f"'constraints' holds {c!r}, not a constraint such as 'area_mm2 <= 400'")
        parse_constraint(c)
    done, total, feasible = doc.get("done", 0), doc.get("total", 0), doc.get("feasible", 0)
    if not (_is_count(done) and _is_count(total) and _is_count(feasible)) or not feasible <= done <= total:
        raise bad("'done', 'total' and 'feasible' must be counts with feasible <= done <= total")
    if "counts" in doc:
        counts = doc["counts"]
        if set(counts) != {"ok", "error", "unsupported"} or not all(_is_count(v) for v in counts.values()):
            raise bad("'counts' must hold the counts of ok, error and unsupported rows")
        if sum(counts.values()) != done:
            raise bad(f"'counts' add up to {sum(counts.values())}, not to 'done' ({done})")
        if feasible > counts["ok"]:
            raise bad(f"'feasible' ({feasible}) is more than the ok rows ({counts['ok']})")
    for n, fp in enumerate(doc.get("front", [])):
        what = f"'front'[{n}]"
        if not isinstance(fp, dict):
            raise bad(f"{what} must be an object")
        for key, ok in (("index", _is_count), ("seq_len", _is_count), ("batch", _is_count),
                        ("workload", lambda v: isinstance(v, str) and bool(v)),
                        ("accelerator", lambda v: isinstance(v, str) and bool(v)),
                        ("params_hash", lambda v: isinstance(v, str)),
                        ("design", lambda v: isinstance(v, dict))):
            if not ok(fp.get(key)):
                raise bad(f"{what}.{key} is missing or of the wrong type")
        values = fp.get("objectives")
        if (not isinstance(values, dict) or list(values) != list(doc.get("objectives", []))
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                           for v in values.values())):
            raise bad(f"{what}.objectives must hold a finite number for each of the summary's objectives")


def sweep_files(path: Path | str) -> list[Path]:
    """The files a reader of sweep output ``path`` reads: the rows and the summary (for
    any other path, the path itself). An output of the same command must be none of them."""
    p = Path(path)
    if p.suffix == ".jsonl":
        return [p, summary_path(p)]
    if p.name.endswith(".summary.json"):
        stem = p.name[: -len(".summary.json")]
        rows = [p.with_name(stem + ".jsonl")]
        name = _rows_of(p)
        if name is not None:
            rows.append(p.with_name(name))
        return [p, *rows]
    return [p]


def is_sweep_output(path: Path | str) -> bool:
    """Does ``path`` name a sweep's rows or summary (for ``plot``)?"""
    p = Path(path)
    if p.suffix == ".jsonl":
        return True
    if not p.name.endswith(".summary.json") or not p.is_file():
        return False
    try:
        doc = load_json(p)
    except UsageError:
        return False
    return isinstance(doc, dict) and doc.get("kind") == SUMMARY_KIND


def read_rows(path: Path | str) -> Iterator[dict[str, Any]]:
    """The rows of a sweep's ``.jsonl``, one at a time (constant memory)."""
    p = Path(path)
    try:
        fh = open(p, "rb")  # noqa: SIM115 - a generator: closed by the with below
    except OSError as exc:
        raise UsageError(f"{p}: cannot read ({exc.strerror})") from None
    with fh:
        for n, line in enumerate(fh, 1):
            if not line.endswith(b"\n"):
                break  # a torn last line of an interrupted sweep
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise UsageError(f"{p}: line {n}: not UTF-8 (byte {exc.start})") from None
            # the readers' limits (depth, digits, no NaN) for every row
            row = parse_json(text, f"{p}: line {n}")
            if not isinstance(row, dict):
                raise UsageError(f"{p}: line {n}: a row must be a JSON object")
            problem = _row_problem(row)
            if problem:
                raise UsageError(f"{p}: line {n}: {problem}")
            yield row


def _row_problem(row: Mapping[str, Any]) -> str:
    """What makes ``row`` unusable for the sweep readers ('' when nothing): a result's own
    checks, and the ``params_hash`` that fronts carry (a hand-edited row, never a traceback)."""
    problem = result_problem(row)
    if not problem and not isinstance(row.get("params_hash"), str):
        problem = "'params_hash' must be a string"
    return problem

def design_label(row: Mapping[str, Any], axes: Sequence[Mapping[str, Any]]) -> str:
    """``hastily(vfu_lanes=16,clock_hz=1e9)``: the accelerator and its swept values (no
    square brackets: rich would read them as markup)."""
    params = row.get("params", {})
    parts = [f"{ax['param']}={params.get(ax['param'])!r}".replace("'", "")
             for ax in axes if ax.get("accelerator") == row.get("accelerator")]
    return f"{row['accelerator']}({','.join(parts)})" if parts else str(row["accelerator"])


def load_sweep_document(path: Path | str) -> RunDocument:
    """A sweep's rows as a results document, for ``compare`` and the ``run`` figures.

    Each design becomes its own accelerator name (``hastily(vfu_lanes=16)``), so two
    sweeps of the same grid compare design by design. Reads every row into memory.
    """
    p = Path(path)
    summary = load_summary(p)
    axes = summary.get("spec", {}).get("grid", [])
    results = []
    for n, row in enumerate(read_rows(p), 1):
        try:
            if not isinstance(row.get("params", {}), dict):
                raise TypeError("'params' must be an object")
            results.append(Result.from_dict({**row, "accelerator": design_label(row, axes)}))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UsageError(f"{p}: line {n}: malformed result ({exc})") from None
    return RunDocument(results=tuple(results), metadata=dict(summary.get("metadata", {})))
