"""Evaluate chunks of sweep points: the code every worker runs.

A worker builds one :class:`Evaluator` per sweep (the plugin host, the
configured accelerators, one :class:`Param` per axis value, a graph cache) and
reuses it for every chunk it is given; a chunk comes back as the JSON Lines of
its rows plus the chunk's own Pareto front, so the parent only writes bytes and
merges small fronts.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..api import (
    PluginHost,
    as_sweep_worker,
    build_graph,
    configured_accelerator,
    estimate_point,
    parse_overrides,
)
from ..graph import OpGraph
from ..host import RegisteredAccelerator
from ..params import Param, ParamSet
from ..results import Result
from .grid import SweepSpec
from .pareto import (
    RESULT_METRICS,
    Constraint,
    FrontPoint,
    Objective,
    front_mask,
    metric_of,
    parse_constraint,
    parse_objective,
    small_front_indices,
)


@dataclass
class ChunkResult:
    """Points ``start`` to ``stop - 1``: their rows (UTF-8 JSON Lines) and the chunk's front."""

    start: int
    stop: int
    data: bytes
    counts: dict[str, int]
    feasible: int
    front: list[FrontPoint] = field(default_factory=list)


class Evaluator:
    """Everything that does not change between the points of one sweep."""

    def __init__(self, spec: SweepSpec, host: PluginHost | None = None) -> None:
        self.spec = spec
        self.host = host or PluginHost(strict=spec.strict_plugins)
        overrides = parse_overrides(self.host, spec.sets)
        self.accels: list[tuple[RegisteredAccelerator, ParamSet, list[list[Param]]]] = []
        for name in spec.accelerators:
            reg, base = configured_accelerator(self.host, name, overrides)
            base.values_json()  # cached once; every point's copy shares the unchanged fragments
            per_axis = []
            for ax in spec.axes_of(name):
                p = base[ax.param]
                # what ParamSet.override would store: source user, note naming the old value
                per_axis.append([replace(p, value=v, source="user", note=f"set by user (was {p.value!r})")
                                 for v in ax.values])
            self.accels.append((reg, base, per_axis))
        self.labels = [[ax.label for ax in spec.axes_of(name)] for name in spec.accelerators]
        self.constraints: list[Constraint] = [parse_constraint(c) for c in spec.constraints]
        self.objectives: list[Objective] = [parse_objective(o) for o in spec.objectives]
        self._graphs: dict[tuple[int, int, int], OpGraph] = {}

    def graph(self, wi: int, si: int, bi: int) -> OpGraph:
        key = (wi, si, bi)
        g = self._graphs.get(key)
        if g is None:
            s = self.spec
            g = self._graphs[key] = build_graph(s.workloads[wi], s.seq_lens[si], s.batches[bi])
        return g

    def point(self, index: int) -> Result:
        """The result of one point (for probes and resume checks)."""
        return self._evaluate(*self.spec.decode(index))[0]

    def _evaluate(self, wi: int, si: int, bi: int, ai: int, digits: tuple[int, ...]) -> tuple[Result, ParamSet]:
        reg, base, per_axis = self.accels[ai]
        params = base.replacing([per_axis[k][d] for k, d in enumerate(digits)]) if digits else base
        # estimate_point never raises for the model's faults: they stay in their row
        return estimate_point(reg, params, self.graph(wi, si, bi), numerics="off"), params

    def feasible(self, row: Mapping[str, Any] | Result) -> bool:
        """Is the point ok and within every constraint? (a row read back, or a result)"""
        if _field(row, "status") != "ok":
            return False
        for c in self.constraints:
            v = metric_of(row, c.metric)
            if v is None or not c.holds(v):
                return False
        return True

    def front_point(self, index: int, row: Mapping[str, Any] | Result, ai: int,
                    digits: tuple[int, ...]) -> FrontPoint | None:
        values = []
        for o in self.objectives:
            v = metric_of(row, o.metric)
            if v is None:
                return None
            values.append(v)
        _, _, per_axis = self.accels[ai]
        design = {label: per_axis[k][d].value for k, (label, d) in enumerate(zip(self.labels[ai], digits, strict=True))}
        return FrontPoint(index, _field(row, "workload"), _field(row, "accelerator"),
                          _field(row, "seq_len"), _field(row, "batch"), design, tuple(values),
                          _field(row, "params_hash"))

    def run_chunk(self, start: int, stop: int) -> ChunkResult:
        # The cyclic collector is paused for the chunk: points make no reference cycles
        # worth collecting mid-chunk (a fault's traceback is one, freed at the next
        # collection), and with thousands of memoised chips and mappings alive every
        # collection rescans them all (about 15% of a sweep's time, measured).
        paused = gc.isenabled()
        gc.disable()
        try:
            return self._run_chunk(start, stop)
        finally:
            if paused:
                gc.enable()

    def _run_chunk(self, start: int, stop: int) -> ChunkResult:
        lines: list[str] = []
        counts = {"ok": 0, "error": 0, "unsupported": 0}
        metrics = [(o.metric, o.metric in RESULT_METRICS) for o in self.objectives]
        vectors: list[tuple[float, ...]] = []
        where: list[tuple[int, Result, int, tuple[int, ...]]] = []
        feasible = 0
        index = start
        for wi, si, bi, ai, digits in self.spec.iter_range(start, stop):
            result, params = self._evaluate(wi, si, bi, ai, digits)
            # the row's text straight from the result (no dicts), its parameters from the
            # set's cached members: equal to json.dumps(result.to_dict()) (tested)
            lines.append(result.json_line(params.to_json()))
            counts[result.status] += 1
            if self.feasible(result):
                feasible += 1
                if metrics:
                    extra = result.extra
                    vec = tuple(getattr(result, m) if top else extra.get(m) for m, top in metrics)
                    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vec):
                        vectors.append(vec)  # type: ignore[arg-type]
                        where.append((index, result, ai, digits))
            index += 1
        lines.append("")
        front: list[FrontPoint] = []
        if vectors:
            signs = [-1.0 if o.maximise else 1.0 for o in self.objectives]
            groups: dict[tuple[str, int, int], list[int]] = {}
            for k, (_, r, _, _) in enumerate(where):
                groups.setdefault((r.workload, r.seq_len, r.batch), []).append(k)
            for members in groups.values():
                mins = [tuple([x * sg for x, sg in zip(vectors[k], signs, strict=True)]) for k in members]
                # in Python while the chunk's front is small: a worker then never imports
                # numpy (0.15 s of CPU each, measured); the vectorised mask for a large one
                kept = small_front_indices(mins)
                if kept is None:
                    import numpy as np  # here, not at import: a parent that forks workers stays single-threaded

                    kept = [int(i) for i in np.flatnonzero(front_mask(np.array(mins, dtype=float)))]
                for i in kept:
                    fp = self.front_point(*where[members[i]])
                    assert fp is not None
                    front.append(fp)
        return ChunkResult(start, stop, "\n".join(lines).encode(), counts, feasible, front)


def _field(row: Mapping[str, Any] | Result, name: str) -> Any:
    return getattr(row, name) if isinstance(row, Result) else row[name]


# -- worker side: one evaluator per sweep per process ------------------------------------

_EVALUATORS: dict[str, Evaluator] = {}


def _evaluator_key(spec: SweepSpec) -> str:
    return spec.digest() + repr((spec.constraints, spec.objectives, spec.strict_plugins))


def adopt(spec: SweepSpec, evaluator: Evaluator) -> None:
    """Make ``evaluator`` this process's evaluator for ``spec`` (workers forked from here
    inherit it instead of building their own)."""
    _EVALUATORS.clear()
    _EVALUATORS[_evaluator_key(spec)] = evaluator


def evaluate_chunk(spec: SweepSpec, start: int, stop: int, debug: bool | None = None) -> ChunkResult:
    """Task function for every executor: a process keeps one evaluator per sweep.
    ``debug``: the sweeping command's :func:`~hastily_bench.api.debug_enabled` (the worker's
    own flag and environment may differ; the rows must not); None: this process's."""
    key = _evaluator_key(spec)
    ev = _EVALUATORS.get(key)
    if ev is None:
        _EVALUATORS.clear()  # one sweep at a time per worker: bounded memory
        ev = _EVALUATORS[key] = Evaluator(spec)
    with as_sweep_worker(debug):
        return ev.run_chunk(start, stop)


#: File descriptors of the parent that a forked worker closes at once (the lock on the rows
#: file: a worker outliving a killed parent must not keep it).
PARENT_ONLY_FDS: set[int] = set()


def worker_signals() -> None:
    """Pool initializer: Ctrl-C reaches the whole process group; only the parent handles it.
    SIGTERM gets its default action back (a worker forked from the command inherits its
    handler, which raises SystemExit: a pool whose worker died terminates the others with
    SIGTERM, and a worker that caught it would block forever sending its result). On Linux
    the worker dies with its parent (a parent killed outright, by the OOM killer say, would
    otherwise leave it waiting for work forever)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    for fd in PARENT_ONLY_FDS:
        with contextlib.suppress(OSError):
            os.close(fd)
    if sys.platform == "linux":
        with contextlib.suppress(Exception):
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def ignore_sigint() -> None:
    """Run on a local Dask cluster's workers and nannies: Ctrl-C reaches the whole process
    group, and only the command handles it (each worker would print its own traceback)."""
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
