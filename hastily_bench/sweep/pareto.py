"""Constraints, objectives and Pareto fronts over sweep results.

A *metric* is a number of a result: one of :data:`RESULT_METRICS` (``area_mm2``
where the model reports an area) or a model-specific scalar of its ``extra``.
A constraint is ``METRIC OP NUMBER`` (``area_mm2 <= 400``); an objective is
``max:METRIC`` or ``min:METRIC`` (a bare metric takes its natural direction).

The front is computed per (workload, seq_len, batch): a design is compared only
with designs running the same work. Workers reduce each chunk to its own front
and the parent merges those, which gives the same front as one pass over every
point (a point dominated inside its chunk is dominated globally).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # NumPy is imported where fronts are computed: a sweep's parent stays
    import numpy as np  # single-threaded (OpenBLAS threads) until its workers are forked

from ..errors import UsageError, suggest
from ..io import ascii_float
from ..results import Result

RESULT_METRICS = ("latency_s", "energy_j", "memory_bytes", "tops", "inferences_per_s",
                  "tops_per_w", "energy_per_inference_j", "static_energy_j", "area_mm2",
                  "tops_per_mm2")
MAXIMISE = frozenset({"tops", "inferences_per_s", "tops_per_w", "tops_per_mm2"})
DEFAULT_OBJECTIVES = ("max:tops", "max:tops_per_w", "min:area_mm2")

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt,
    "==": operator.eq, "!=": operator.ne,
}
_CONSTRAINT_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|==|!=|<|>)\s*(\S+)\s*$")


def metric_of(row: Mapping[str, Any] | Result, name: str) -> float | None:
    """The value of metric ``name`` in a result row or a :class:`Result` (``None`` when it
    has none)."""
    if isinstance(row, Result):
        v = getattr(row, name) if name in RESULT_METRICS else row.extra.get(name)
    else:
        v = row.get(name) if name in RESULT_METRICS else row.get("extra", {}).get(name)
    if v is None or isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


@dataclass(frozen=True)
class Constraint:
    metric: str
    op: str
    bound: float

    def __str__(self) -> str:
        # exact: workers re-parse this text, so no digits may be lost (":g" would round)
        b = repr(self.bound)
        return f"{self.metric} {self.op} {b[:-2] if b.endswith('.0') else b}"

    def holds(self, value: float) -> bool:
        return _OPS[self.op](value, self.bound)


def parse_constraint(text: str) -> Constraint:
    m = _CONSTRAINT_RE.match(text)
    if not m:
        raise UsageError(f"constraint {text!r}: expected METRIC OP NUMBER with OP one of "
                         f"{' '.join(_OPS)}, e.g. 'area_mm2 <= 400'")
    try:
        bound = ascii_float(m.group(3))
    except ValueError:
        raise UsageError(f"constraint {text!r}: {m.group(3)!r} is not a number") from None
    if not math.isfinite(bound):
        raise UsageError(f"constraint {text!r}: bound must be finite")
    return Constraint(m.group(1), m.group(2), bound)


@dataclass(frozen=True)
class Objective:
    metric: str
    maximise: bool

    def __str__(self) -> str:
        return f"{'max' if self.maximise else 'min'}:{self.metric}"


def parse_objective(text: str) -> Objective:
    t = text.strip()
    direction, sep, metric = t.partition(":")
    if not sep:
        direction, metric = ("max" if t in MAXIMISE else "min"), t
    if direction not in ("max", "min") or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", metric):
        raise UsageError(f"objective {text!r}: expected max:METRIC or min:METRIC, e.g. max:tops_per_w")
    return Objective(metric, direction == "max")


def check_metrics(names: Sequence[str], row: Mapping[str, Any], accelerator: str) -> None:
    """Refuse a metric that a probe result of ``accelerator`` does not have."""
    available = [*(m for m in RESULT_METRICS if metric_of(row, m) is not None),
                 *(k for k, v in row.get("extra", {}).items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool))]
    for name in names:
        if name not in available:
            raise UsageError(f"metric {name!r} is not reported by {accelerator}{suggest(name, available)}; "
                             f"it has {', '.join(available)}")


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """``a`` dominates ``b`` (all objectives as minimisation)."""
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(x < y for x, y in zip(a, b, strict=True))


def front_indices(vectors: Sequence[Sequence[float]]) -> list[int]:
    """Indices of the non-dominated vectors (minimisation), in input order.

    Sorting lexicographically first means no later vector can dominate an
    earlier one, so one pass against the kept set suffices. Equal vectors are all
    kept: neither dominates the other.
    """
    kept = small_front_indices(vectors, limit=None)
    assert kept is not None
    return kept


def small_front_indices(vectors: Sequence[Sequence[float]], *, limit: int | None = 64) -> list[int] | None:
    """:func:`front_indices`, or None once the front outgrows ``limit`` vectors or the
    comparisons outgrow a budget of a few per vector (the cost is vectors x front in Python:
    :func:`front_mask` is the tool for a large front).

    A vector with a NaN neither dominates nor is dominated (every comparison with NaN is
    false): it is kept, and left out of the sort (NaN has no order)."""
    kept: list[int] = []
    ordered: list[int] = []
    for i, v in enumerate(vectors):
        (kept if any(x != x for x in v) else ordered).append(i)
    if limit is not None and len(kept) > limit:
        return None
    budget = None if limit is None else 8 * len(vectors) + 1024
    order = sorted(ordered, key=lambda i: tuple(vectors[i]))
    front: list[tuple[float, ...]] = []  # the kept vectors without NaN (the only dominators)
    for i in order:
        v = tuple(vectors[i])
        asked = len(front)
        for j, w in enumerate(front):
            # w <= v everywhere and w != v: w dominates v (no NaN here; -0.0 == 0.0 as < has it)
            if w != v and all([a <= b for a, b in zip(w, v, strict=True)]):
                if j:  # the next vectors are likely dominated by the same one: ask it first
                    front[0], front[j] = w, front[0]
                asked = j + 1
                break
        else:
            kept.append(i)
            front.append(v)
            if limit is not None and len(kept) > limit:
                return None
        if budget is not None:
            budget -= asked
            if budget < 0:
                return None
    return sorted(kept)


@dataclass(frozen=True)
class FrontPoint:
    """One point of a front: where it is in the sweep and what it achieves."""

    index: int
    workload: str
    accelerator: str
    seq_len: int
    batch: int
    design: Mapping[str, Any]  # the swept parameters, "accel.param" -> value
    values: tuple[float, ...]  # objective values, in the objectives' natural units
    params_hash: str

    def group(self) -> tuple[str, int, int]:
        return (self.workload, self.seq_len, self.batch)

    def to_dict(self, objectives: Sequence[Objective]) -> dict[str, Any]:
        return {"index": self.index, "workload": self.workload, "accelerator": self.accelerator,
                "seq_len": self.seq_len, "batch": self.batch, "design": dict(self.design),
                "objectives": {str(o): v for o, v in zip(objectives, self.values, strict=True)},
                "params_hash": self.params_hash}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FrontPoint:
        return cls(d["index"], d["workload"], d["accelerator"], d["seq_len"], d["batch"],
                   dict(d["design"]), tuple(float(v) for v in d["objectives"].values()),
                   d["params_hash"])


def dominated_by(a: np.ndarray, b: np.ndarray, *, block: int = 256) -> np.ndarray:
    """For each row of ``b``: is it dominated by some row of ``a`` (minimisation)?

    Vectorised in blocks of ``block`` rows of ``b`` so memory stays bounded.
    """
    import numpy as np

    out = np.zeros(len(b), dtype=bool)
    if len(a) == 0 or len(b) == 0:
        return out
    for s in range(0, len(b), block):
        bb = b[s:s + block]
        # one 2-D comparison per objective: much faster than reducing over a short last axis
        le = a[:, 0, None] <= bb[None, :, 0]
        lt = a[:, 0, None] < bb[None, :, 0]
        for j in range(1, a.shape[1]):
            le &= a[:, j, None] <= bb[None, :, j]
            lt |= a[:, j, None] < bb[None, :, j]
        out[s:s + block] = (le & lt).any(axis=0)
    return out


def front_mask(vectors: np.ndarray, *, block: int = 256) -> np.ndarray:
    """Rows of ``vectors`` (n x objectives, minimisation) that no other row dominates.

    Rows are visited in lexicographic order, in blocks: a row can only be dominated
    by rows before it in that order, so each block is checked against the front
    kept so far and against itself. The cost is n x (front + block), not n x n.
    """
    import numpy as np

    n = len(vectors)
    keep = np.zeros(n, dtype=bool)
    if n == 0:
        return keep
    order = np.lexsort(vectors.T[::-1])
    kept = np.empty((0, vectors.shape[1]))
    for s in range(0, n, block):
        idx = order[s:s + block]
        bb = vectors[idx]
        ok = ~dominated_by(kept, bb)
        idx, bb = idx[ok], bb[ok]
        ok = ~dominated_by(bb, bb)
        keep[idx[ok]] = True
        kept = np.vstack([kept, bb[ok]])
    return keep


def _minimised(p: FrontPoint, objectives: Sequence[Objective]) -> tuple[float, ...]:
    # as floats: the vectorised mask compares float64, and an integer beyond 2^53 must
    # compare the same whichever path a merge takes
    return tuple(-float(v) if o.maximise else float(v) for o, v in zip(objectives, p.values, strict=True))


def merge_fronts(points: Sequence[FrontPoint], objectives: Sequence[Objective]) -> list[FrontPoint]:
    """The non-dominated points per (workload, seq_len, batch), ordered by sweep index."""
    import numpy as np

    groups: dict[tuple[str, int, int], list[FrontPoint]] = {}
    for p in points:
        groups.setdefault(p.group(), []).append(p)
    out: list[FrontPoint] = []
    for members in groups.values():
        vecs = np.array([_minimised(p, objectives) for p in members], dtype=float)
        keep = front_mask(vecs)
        out.extend(m for m, k in zip(members, keep, strict=True) if k)
    return sorted(out, key=lambda p: p.index)


class FrontAccumulator:
    """The running front of a sweep: merge chunk fronts as they arrive.

    Memory is the size of the front, not of the sweep. Merging checks the new
    points against the front and the front against the new points only: in Python
    while the front is small (the parent then never imports numpy, 0.15 s of CPU taken
    from the workers), vectorised once it is large.
    """

    def __init__(self, objectives: Sequence[Objective]) -> None:
        self.objectives = tuple(objectives)
        self._groups: dict[tuple[str, int, int], tuple[list[FrontPoint], list[tuple[float, ...]]]] = {}

    def add(self, points: Sequence[FrontPoint]) -> None:
        by_group: dict[tuple[str, int, int], list[FrontPoint]] = {}
        for p in points:
            by_group.setdefault(p.group(), []).append(p)
        for g, new in by_group.items():
            old, old_v = self._groups.get(g, ([], []))
            new_v = [_minimised(p, self.objectives) for p in new]
            # the old points are a front: the front of old and new is what the merge keeps
            kept = small_front_indices(old_v + new_v) if len(old_v) <= 64 else None
            if kept is not None:
                members, vectors = old + new, old_v + new_v
                self._groups[g] = ([members[i] for i in kept], [vectors[i] for i in kept])
                continue
            import numpy as np

            # a large front: the new points against all, the old against the new only
            m = len(self.objectives)
            old_a = np.array(old_v, dtype=float).reshape(-1, m)
            new_a = np.array(new_v, dtype=float).reshape(-1, m)
            keep_new = ~dominated_by(np.vstack([old_a, new_a]), new_a)
            keep_old = ~dominated_by(new_a, old_a)
            self._groups[g] = (
                [p for p, k in zip(old, keep_old, strict=True) if k] + [p for p, k in zip(new, keep_new, strict=True) if k],
                [v for v, k in zip(old_v, keep_old, strict=True) if k] + [v for v, k in zip(new_v, keep_new, strict=True) if k])

    def points(self) -> list[FrontPoint]:
        return sorted((p for members, _ in self._groups.values() for p in members),
                      key=lambda p: p.index)
