"""Sweep grids: axes from ``--grid`` and sweep files, and the points they span.

An axis is ``ACCELERATOR.PARAM=VALUES`` where VALUES is

* a list: ``4,6,8`` (any parameter type; strings and booleans take only lists),
* a geometric range: ``8:64:x2`` (8, 16, 32, 64; the factor must be > 1),
* a linear range by count: ``0.5e9:2e9:5`` (five values, both ends included),
* a linear range by step: ``1:10:+3`` (1, 4, 7, 10).

Every value is parsed and checked by the parameter itself (:meth:`Param.parse`),
before any point runs, exactly as ``--set`` would check it.

Points are numbered in a fixed order: workload, sequence length, batch,
accelerator, then the accelerator's axes in the order given, the last fastest.
That numbering is what makes the output identical whatever the executor and
what ``--resume`` relies on.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..io import ascii_float, ascii_int
from ..params import Param, Value, check_schema_version, load_toml
from ..workload import Workload

SWEEP_SCHEMA_VERSION = 1
#: Points of one axis at most: more is surely a typo (``1:1e9:+1``).
MAX_AXIS_VALUES = 100_000
#: Refuse sweeps larger than this many points (a billion rows is a mistake, not a plan).
MAX_POINTS = 10**9
#: Significant digits of generated range values: 0.5e9:2e9:7 gives 7.5e8, not 750000000.0000001.
RANGE_DIGITS = 12


@dataclass(frozen=True)
class Axis:
    """One swept parameter of one accelerator and its values (already type-checked)."""

    accelerator: str
    param: str
    values: tuple[Value, ...]

    @property
    def label(self) -> str:
        return f"{self.accelerator}.{self.param}"

    def to_dict(self) -> dict[str, Any]:
        return {"accelerator": self.accelerator, "param": self.param, "values": list(self.values)}


def _number(text: str, where: str) -> float:
    try:
        v = ascii_float(text)
    except ValueError:
        raise UsageError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(v):
        raise UsageError(f"{where}: {text!r} is not finite")
    return v


def _clean(v: float) -> float:
    return float(f"{v:.{RANGE_DIGITS}g}")


def expand_values(spec: str, where: str) -> list[str]:
    """The value texts of one axis specification (list or range); see the module docstring."""
    text = spec.strip()
    if not text:
        raise UsageError(f"{where}: no values")
    if ":" not in text:
        items = [t.strip() for t in text.split(",")]
        if any(not t for t in items):
            raise UsageError(f"{where}: empty value in list {spec!r}")
        if len(items) > MAX_AXIS_VALUES:
            raise UsageError(f"{where}: {len(items)} values, more than {MAX_AXIS_VALUES}")
        return items
    parts = [t.strip() for t in text.split(":")]
    if len(parts) != 3:
        raise UsageError(f"{where}: range {spec!r} must be START:STOP:xFACTOR, START:STOP:COUNT "
                         "or START:STOP:+STEP")
    start, stop = _number(parts[0], where), _number(parts[1], where)
    how = parts[2]
    values: list[float] = []
    if how.startswith(("x", "*")):
        factor = _number(how[1:], where)
        if factor <= 1:
            raise UsageError(f"{where}: geometric factor must be > 1, got {how[1:]!r}")
        if start <= 0 or stop < start:
            raise UsageError(f"{where}: geometric range needs 0 < START <= STOP, got {spec!r}")
        v = start
        while v <= stop * (1 + 1e-12):
            values.append(_clean(v))
            if len(values) > MAX_AXIS_VALUES:
                break
            v *= factor
    elif how.startswith("+"):
        step = _number(how[1:], where)
        if step <= 0 or stop < start:
            raise UsageError(f"{where}: step range needs STEP > 0 and START <= STOP, got {spec!r}")
        span = (stop - start) / step * (1 + 1e-12)
        if not span < MAX_AXIS_VALUES:  # (an overflowing span is inf)
            raise UsageError(f"{where}: range {spec!r} has more than {MAX_AXIS_VALUES} values")
        n = math.floor(span) + 1
        values = [_clean(start + i * step) for i in range(n)]
    else:
        try:
            count = ascii_int(how)
        except ValueError:
            raise UsageError(f"{where}: range {spec!r}: {how!r} is not xFACTOR, COUNT or +STEP") from None
        if count < 1 or count > MAX_AXIS_VALUES:
            raise UsageError(f"{where}: COUNT must be between 1 and {MAX_AXIS_VALUES}, got {count}")
        if count == 1:
            if start != stop:
                raise UsageError(f"{where}: COUNT 1 needs START == STOP, got {spec!r}")
            values = [start]
        else:
            values = [_clean(start + (stop - start) * i / (count - 1)) for i in range(count)]
    if len(values) > MAX_AXIS_VALUES:
        raise UsageError(f"{where}: more than {MAX_AXIS_VALUES} values")
    return [_num_text(v) for v in values]


def _num_text(v: float) -> str:
    """Integral values as integers (so they parse for integer parameters), others as repr."""
    return str(int(v)) if v.is_integer() and abs(v) < 2**53 else repr(v)


def parse_axis_text(item: str) -> tuple[str, str, list[str]]:
    """Split ``ACCEL.PARAM=VALUES`` into (accelerator, param, value texts)."""
    target, sep, spec = item.partition("=")
    accel, dot, param = target.strip().partition(".")
    if not sep or not dot or not accel or not param:
        raise UsageError(f"--grid {item!r}: expected ACCELERATOR.PARAM=VALUES")
    return accel, param, expand_values(spec, f"--grid {target.strip()}")


def make_axis(param: Param, accelerator: str, texts: Sequence[str], where: str) -> Axis:
    """Parse and check every value text against ``param``; refuse duplicates."""
    if len(texts) > MAX_AXIS_VALUES:  # (a sweep file's list)
        raise UsageError(f"{where}: {len(texts)} values, more than {MAX_AXIS_VALUES}")
    values: list[Value] = []
    seen: set[Value] = set()  # (one type per axis: the parameter's)
    for t in texts:
        try:
            v = param.parse(t)
        except UsageError as exc:
            raise UsageError(f"{where}: {exc}") from None
        if v in seen:
            raise UsageError(f"{where}: value {t!r} given twice")
        seen.add(v)
        values.append(v)
    return Axis(accelerator, param.name, tuple(values))


@dataclass(frozen=True)
class SweepSpec:
    """Everything that defines a sweep's points (and nothing about how it runs).

    ``workloads`` are resolved :class:`Workload` objects, so workers (local or on
    a cluster) never read workload files. ``sets`` are fixed ``ACCEL.PARAM=VALUE``
    overrides, applied before the axes, as ``run --set`` applies them.
    """

    workloads: tuple[Workload, ...]
    accelerators: tuple[str, ...]
    seq_lens: tuple[int, ...]
    batches: tuple[int, ...]
    sets: tuple[str, ...] = ()
    axes: tuple[Axis, ...] = ()
    constraints: tuple[str, ...] = ()
    objectives: tuple[str, ...] = ()
    strict_plugins: bool = False
    _sizes: tuple[int, ...] = field(default=(), compare=False, repr=False)
    _digest: str = field(default="", compare=False, repr=False)

    def __post_init__(self) -> None:
        sizes = []
        for a in self.accelerators:
            n = 1
            for ax in self.axes_of(a):
                n *= len(ax.values)
            sizes.append(n)
        object.__setattr__(self, "_sizes", tuple(sizes))

    def axes_of(self, accelerator: str) -> tuple[Axis, ...]:
        return tuple(ax for ax in self.axes if ax.accelerator == accelerator)

    @property
    def group_size(self) -> int:
        """Points per (workload, seq_len, batch): the designs of every accelerator."""
        return sum(self._sizes)

    @property
    def total(self) -> int:
        return len(self.workloads) * len(self.seq_lens) * len(self.batches) * self.group_size

    def to_dict(self) -> dict[str, Any]:
        return {
            "workloads": [w.name for w in self.workloads],
            "workload_definitions": [w.to_dict() for w in self.workloads],
            "accelerators": list(self.accelerators),
            "seq_lens": list(self.seq_lens),
            "batches": list(self.batches),
            "set": list(self.sets),
            "grid": [ax.to_dict() for ax in self.axes],
            "constraints": list(self.constraints),
            "objectives": list(self.objectives),
        }

    def digest(self) -> str:
        """Identity of the points and their order (what ``--resume`` checks); computed once."""
        if self._digest:
            return self._digest
        d = self.to_dict()
        blob = json.dumps({k: d[k] for k in ("workload_definitions", "accelerators", "seq_lens",
                                             "batches", "set", "grid")}, sort_keys=True)
        digest = hashlib.sha256(blob.encode()).hexdigest()[:16]
        object.__setattr__(self, "_digest", digest)
        return digest

    def decode(self, index: int) -> tuple[int, int, int, int, tuple[int, ...]]:
        """Point ``index`` as (workload, seq_len, batch, accelerator, axis value) indices."""
        g = self.group_size
        group, offset = divmod(index, g)
        rest, bi = divmod(group, len(self.batches))
        wi, si = divmod(rest, len(self.seq_lens))
        ai = 0
        while offset >= self._sizes[ai]:
            offset -= self._sizes[ai]
            ai += 1
        axes = self.axes_of(self.accelerators[ai])
        digits = [0] * len(axes)
        for k in range(len(axes) - 1, -1, -1):
            offset, digits[k] = divmod(offset, len(axes[k].values))
        return wi, si, bi, ai, tuple(digits)

    def iter_range(self, start: int, stop: int) -> Iterator[tuple[int, int, int, int, tuple[int, ...]]]:
        """Decoded points ``start`` to ``stop - 1`` (an odometer: no division per point)."""
        if start >= stop:
            return
        wi, si, bi, ai, digits = self.decode(start)
        d = list(digits)
        nw, ns, nb, na = len(self.workloads), len(self.seq_lens), len(self.batches), len(self.accelerators)
        radices = [len(ax.values) for ax in self.axes_of(self.accelerators[ai])]
        for _ in range(start, stop):
            yield wi, si, bi, ai, tuple(d)
            k = len(d) - 1
            while k >= 0:
                d[k] += 1
                if d[k] < radices[k]:
                    break
                d[k] = 0
                k -= 1
            if k >= 0:
                continue
            ai += 1
            if ai == na:
                ai = 0
                bi += 1
                if bi == nb:
                    bi = 0
                    si += 1
                    if si == ns:
                        si = 0
                        wi = (wi + 1) % nw
            radices = [len(ax.values) for ax in self.axes_of(self.accelerators[ai])]
            d = [0] * len(radices)


@dataclass
class SweepFile:
    """What a sweep file holds (before names are resolved)."""

    workloads: list[str] = field(default_factory=list)
    accelerators: list[str] = field(default_factory=list)
    seq_lens: list[int] = field(default_factory=list)
    batches: list[int] = field(default_factory=list)
    sets: list[str] = field(default_factory=list)
    grid: list[str] = field(default_factory=list)
    constraints: list[str] = field(default_factory=list)
    objectives: list[str] = field(default_factory=list)


_FILE_KEYS = {"schema_version", "workloads", "accelerators", "seq_lens", "batches", "set", "grid",
              "constraints", "objectives"}


def is_sweep_file(path: str) -> bool:
    """A ``.toml`` argument is a sweep file when it has a ``grid`` key (a ``[grid]`` table;
    anything else there is then the sweep file's error, not a workload's)."""
    p = Path(path)
    if p.suffix != ".toml" or not p.is_file():
        return False
    try:
        doc = load_toml(p)
    except UsageError:
        return False
    return "grid" in doc  # (a [grid] that is not a table is then the sweep file's own error)


def _str_list(doc: Mapping[str, Any], key: str, origin: str) -> list[str]:
    v = doc.get(key, [])
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise UsageError(f"{origin}: {key!r} must be a list of strings")
    return list(v)


def _int_list(doc: Mapping[str, Any], key: str, origin: str) -> list[int]:
    v = doc.get(key, [])
    if isinstance(v, int) and not isinstance(v, bool):
        v = [v]
    if not isinstance(v, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in v):
        raise UsageError(f"{origin}: {key!r} must be a list of integers")
    return list(v)


def _toml_value_text(v: Any, origin: str, key: str) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, str)):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    raise UsageError(f"{origin}: grid {key!r}: {v!r} is not a number, string or boolean")


def load_sweep_file(path: Path | str) -> SweepFile:
    """Read a sweep file (see docs/sweeps.md); every mistake is a one-line :class:`UsageError`."""
    origin = str(path)
    doc = load_toml(path)
    check_schema_version(doc, SWEEP_SCHEMA_VERSION, origin)
    unknown = set(doc) - _FILE_KEYS
    if unknown:
        raise UsageError(f"{origin}: unknown keys {sorted(unknown)} (expected some of "
                         f"{', '.join(sorted(_FILE_KEYS))})")
    grid = doc.get("grid", {})
    if not isinstance(grid, Mapping):
        raise UsageError(f"{origin}: [grid] must be a table of \"ACCEL.PARAM\" = values")
    items: list[str] = []
    for key, spec in grid.items():
        if isinstance(spec, Mapping):  # [grid.hastily] adc_bits = [...] written as a sub-table
            for param, sub in spec.items():
                items.append(_grid_item(f"{key}.{param}", sub, origin))
        else:
            items.append(_grid_item(key, spec, origin))
    return SweepFile(
        workloads=_str_list(doc, "workloads", origin),
        accelerators=_str_list(doc, "accelerators", origin),
        seq_lens=_int_list(doc, "seq_lens", origin),
        batches=_int_list(doc, "batches", origin),
        sets=_str_list(doc, "set", origin),
        grid=items,
        constraints=_str_list(doc, "constraints", origin),
        objectives=_str_list(doc, "objectives", origin),
    )


def _grid_item(key: str, spec: Any, origin: str) -> str:
    if isinstance(spec, list):
        if not spec:
            raise UsageError(f"{origin}: grid {key!r} has no values")
        texts = [_toml_value_text(v, origin, key) for v in spec]
        for v in spec:
            if isinstance(v, str) and "," in v:
                raise UsageError(f"{origin}: grid {key!r}: {v!r} holds a comma; a list holds one "
                                 "value per element (a string with commas is a list itself)")
        return f"{key}=" + ",".join(texts)
    if isinstance(spec, str):
        return f"{key}={spec}"
    return f"{key}={_toml_value_text(spec, origin, key)}"
