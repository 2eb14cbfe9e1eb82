"""Results: the one place where derived metrics are computed, and the JSON document.

A :class:`Result` is built from a plugin's :class:`~hastily_bench.accelerator.Estimate`
by :func:`result_from_estimate`, which validates the numbers (finite, non-negative,
breakdown summing to the totals) and derives ``tops``, ``inferences_per_s`` and
``tops_per_w``. The ``results`` array of a document depends only on the inputs of
the run, so two identical commands give byte-identical arrays; time stamps and
host facts live in ``metadata`` only.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from json.encoder import encode_basestring_ascii as _jstr  # the C writer json.dumps uses
from pathlib import Path
from typing import Any

from . import io as hio
from .accelerator import Estimate, OpCost
from .errors import PluginError, UsageError
from .graph import CATEGORIES

SCHEMA_VERSION = 1
STATUSES = ("ok", "error", "unsupported")
#: Relative tolerance for "breakdown sums to the totals".
SUM_RTOL = 1e-6

Json = dict[str, Any]


@dataclass(frozen=True)
class Result:
    """One (workload, accelerator, seq_len, batch) point."""

    workload: str
    accelerator: str
    plugin: str
    seq_len: int
    batch: int
    status: str
    ops: int
    latency_s: float | None = None
    energy_j: float | None = None
    memory_bytes: int | None = None
    tops: float | None = None
    inferences_per_s: float | None = None
    tops_per_w: float | None = None
    energy_per_inference_j: float | None = None
    attn_rel_error: float | None = None
    static_energy_j: float | None = None
    area_mm2: float | None = None
    tops_per_mm2: float | None = None
    arithmetic: str = ""
    breakdown: tuple[OpCost, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    params_hash: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    error: str | None = None
    #: Hash of the workload's shape and of the point (seq_len, batch); "" in older files.
    shape_hash: str = ""
    #: Hash of the op graph's counts (every op's MACs, bytes, instances); "" in older files.
    ops_hash: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def key(self) -> tuple[str, str, int, int]:
        """Identity used to match results across runs."""
        return (self.workload, self.accelerator, self.seq_len, self.batch)

    def to_dict(self, *, params: bool = True) -> Json:
        """The result as its JSON object; ``params=False`` leaves ``"params": null`` for a
        writer that prints the parameters from elsewhere (sweeps: from the parameter set's
        cached JSON)."""
        d: Json = {
            "workload": self.workload,
            "accelerator": self.accelerator,
            "plugin": self.plugin,
            "seq_len": self.seq_len,
            "batch": self.batch,
            "status": self.status,
            "ops": self.ops,
            "latency_s": self.latency_s,
            "tops": self.tops,
            "inferences_per_s": self.inferences_per_s,
            "energy_j": self.energy_j,
            "energy_per_inference_j": self.energy_per_inference_j,
            "tops_per_w": self.tops_per_w,
            "memory_bytes": self.memory_bytes,
            "attn_rel_error": self.attn_rel_error,
            "static_energy_j": self.static_energy_j,
            "area_mm2": self.area_mm2,
            "tops_per_mm2": self.tops_per_mm2,
            "arithmetic": self.arithmetic,
            "breakdown": [
                {"op": c.op, "category": c.category, "latency_s": c.latency_s,
                 "energy_j": c.energy_j}
                for c in self.breakdown
            ],
            "params": dict(self.params) if params else None,
            "params_hash": self.params_hash,
            "extra": dict(self.extra),
            "notes": list(self.notes),
        }
        if self.error is not None:
            d["error"] = self.error
        if self.shape_hash:
            d["shape_hash"] = self.shape_hash
        if self.ops_hash:
            d["ops_hash"] = self.ops_hash
        return d

    def json_line(self, params_json: str | None = None) -> str:
        """``to_dict()`` as compact JSON (``separators=(",", ":")``), equal to the standard
        encoder's text, written without building the dicts (a sweep writes millions).

        ``params_json`` is the ``params`` object's JSON when the caller has it already
        (a sweep's parameter sets keep their members encoded); values of a type the
        writer does not know fall back to the standard encoder.
        """
        try:
            return _json_line(self, params_json)
        except _Unusual:
            d = self.to_dict(params=params_json is None)
            if params_json is None:
                return _compact(d)
            return _compact({**d, "params": None}).replace(',"params":null,', f',"params":{params_json},', 1)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Result:
        """Read one result, refusing values that would make comparisons meaningless."""
        if not isinstance(d, Mapping):
            raise TypeError(f"a result must be an object, got {type(d).__name__}")
        problem = result_problem(d)
        if problem:
            raise TypeError(f"result {d.get('workload')!r}/{d.get('accelerator')!r}: {problem}")
        return cls(
            workload=d["workload"],
            accelerator=d["accelerator"],
            plugin=d.get("plugin", ""),
            seq_len=d["seq_len"],
            batch=d["batch"],
            status=d["status"],
            ops=d["ops"],
            latency_s=d.get("latency_s"),
            energy_j=d.get("energy_j"),
            memory_bytes=d.get("memory_bytes"),
            tops=d.get("tops"),
            inferences_per_s=d.get("inferences_per_s"),
            tops_per_w=d.get("tops_per_w"),
            energy_per_inference_j=d.get("energy_per_inference_j"),
            attn_rel_error=d.get("attn_rel_error"),
            static_energy_j=d.get("static_energy_j"),
            area_mm2=d.get("area_mm2"),
            tops_per_mm2=d.get("tops_per_mm2"),
            arithmetic=d.get("arithmetic", ""),
            breakdown=tuple(
                OpCost(op=c["op"], latency_s=c["latency_s"], energy_j=c["energy_j"],
                       category=c.get("category", ""))
                for c in d.get("breakdown", [])
            ),
            params=d.get("params", {}),
            params_hash=d.get("params_hash", ""),
            extra=d.get("extra", {}),
            notes=tuple(d.get("notes", ())),
            error=d.get("error"),
            shape_hash=d.get("shape_hash", ""),
            ops_hash=d.get("ops_hash", ""),
        )


_compact = json.JSONEncoder(separators=(",", ":")).encode


class _Unusual(Exception):
    """A value :func:`_json_line` leaves to the standard encoder."""


#: Texts of recent floats: most numbers of a sweep's rows recur (a stage shared by many
#: designs), and a look-up costs a fifth of ``repr``.
_FLOAT_TEXT: dict[float, str] = {}


def _jv(v: object) -> str:
    """One JSON value as the standard encoder writes it (ASCII, finite numbers as repr)."""
    if type(v) is float:
        text = _FLOAT_TEXT.get(v)
        if text is not None:
            return text
        if v - v == 0.0:  # finite (inf - inf and nan - nan are nan)
            text = float.__repr__(v)
            if v:  # 0.0 and -0.0 are one key but two texts
                if len(_FLOAT_TEXT) >= 1 << 16:
                    _FLOAT_TEXT.clear()
                _FLOAT_TEXT[v] = text
            return text
        raise _Unusual
    if type(v) is str:
        return _jstr(v)
    if type(v) is int:
        return int.__repr__(v)
    if v is None:
        return "null"
    if type(v) is bool:
        return "true" if v else "false"
    raise _Unusual


def _jobj(d: Mapping[str, Any]) -> str:
    keys = tuple(d)
    template = _OBJECT_TEMPLATES.get(keys)
    if template is None:
        if not all(type(k) is str for k in keys):
            raise _Unusual
        if len(_OBJECT_TEMPLATES) >= 256:
            _OBJECT_TEMPLATES.clear()
        # '%' in a key is doubled: the template is filled with the % operator
        template = _OBJECT_TEMPLATES[keys] = "{" + ",".join(
            [_jstr(k).replace("%", "%%") + ":%s" for k in keys]) + "}"
    return template % _texts(d.values())


def _texts(values: Iterable[object]) -> tuple[str, ...]:
    """The JSON texts of ``values``: the common types inline (a recurring float's text from
    the memo), the rest by :func:`_jv`."""
    ft: dict[Any, str] = _FLOAT_TEXT
    return tuple([(ft.get(v) or _jv(v)) if (t := type(v)) is float
                  else int.__repr__(v) if t is int
                  else _jstr(v) if t is str else _jv(v)  # type: ignore[arg-type]
                  for v in values])


#: ``{"k1":%s,"k2":%s,...}`` per tuple of keys (a model's extra facts have a few shapes).
_OBJECT_TEMPLATES: dict[tuple[str, ...], str] = {}
#: ``{"op":...,"category":...,"latency_s":`` per (op, category).
_ENTRY_HEADS: dict[tuple[str, str], str] = {}

_TOP = ('{"workload":%s,"accelerator":%s,"plugin":%s,"seq_len":%s,"batch":%s,"status":%s,"ops":%s,'
        '"latency_s":%s,"tops":%s,"inferences_per_s":%s,"energy_j":%s,"energy_per_inference_j":%s,'
        '"tops_per_w":%s,"memory_bytes":%s,"attn_rel_error":%s,"static_energy_j":%s,"area_mm2":%s,'
        '"tops_per_mm2":%s,"arithmetic":%s,"breakdown":[')


def _entry_head(op: object, category: object) -> str:
    if type(op) is not str or type(category) is not str:
        raise _Unusual
    head = _ENTRY_HEADS.get((op, category))
    if head is None:
        if len(_ENTRY_HEADS) >= 4096:
            _ENTRY_HEADS.clear()
        head = _ENTRY_HEADS[(op, category)] = f'{{"op":{_jstr(op)},"category":{_jstr(category)},"latency_s":'
    return head


def _json_line(r: Result, params_json: str | None) -> str:
    ft = _FLOAT_TEXT
    heads = _ENTRY_HEADS
    parts = []
    for c in r.breakdown:
        head = heads.get((c.op, c.category)) if type(c.op) is str and type(c.category) is str else None
        lat, en = c.latency_s, c.energy_j
        parts.append(f'{head or _entry_head(c.op, c.category)}'
                     f'{(ft.get(lat) if type(lat) is float else None) or _jv(lat)},"energy_j":'
                     f'{(ft.get(en) if type(en) is float else None) or _jv(en)}}}')
    notes = ",".join([_jstr(n) if type(n) is str else _raise_unusual() for n in r.notes])
    top = (r.workload, r.accelerator, r.plugin, r.seq_len, r.batch, r.status, r.ops, r.latency_s, r.tops,
           r.inferences_per_s, r.energy_j, r.energy_per_inference_j, r.tops_per_w, r.memory_bytes,
           r.attn_rel_error, r.static_energy_j, r.area_mm2, r.tops_per_mm2, r.arithmetic)
    text = (_TOP % _texts(top)
            + ",".join(parts)
            + f'],"params":{_jobj(r.params) if params_json is None else params_json},'
              f'"params_hash":{_jv(r.params_hash)},"extra":{_jobj(r.extra)},"notes":[{notes}]')
    if r.error is not None:
        text += f',"error":{_jv(r.error)}'
    if r.shape_hash:
        text += f',"shape_hash":{_jv(r.shape_hash)}'
    if r.ops_hash:
        text += f',"ops_hash":{_jv(r.ops_hash)}'
    return text + "}"


def _raise_unusual() -> str:
    raise _Unusual


def result_problem(d: Mapping[str, Any]) -> str:
    """What makes the result object ``d`` unusable ('' when nothing): the checks of
    :meth:`Result.from_dict`, for readers that keep the dict (a sweep's rows)."""
    for key in ("workload", "accelerator"):
        name = d.get(key)
        if not isinstance(name, str):
            return f"{key!r} must be a string"
        # a name ends up in tables, Markdown bullets and headings: a hand-edited file
        # must not inject lines or cells there
        if not name or not name.isprintable() or "|" in name or "`" in name:
            return (f"{key!r} must be a non-empty name of printable characters without "
                    f"'|' or '`', got {name!r}")
    for key in ("seq_len", "batch", "ops"):
        v = d.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            return f"{key!r} must be a non-negative integer, got {v!r}"
    if d.get("status") not in STATUSES:
        return f"status {d.get('status')!r} is not one of {', '.join(STATUSES)}"
    for key in _METRICS:
        v = d.get(key)
        if v is None:
            if d["status"] == "ok" and key in _REQUIRED_WHEN_OK:
                return f"{key!r} is missing although status is ok"
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            return f"{key!r} must be a finite number >= 0, got {v!r}"
    if d["status"] == "ok" and d.get("latency_s") == 0:
        return "'latency_s' must be > 0 when status is ok"
    for key in ("error", "params_hash", "arithmetic", "plugin", "shape_hash", "ops_hash"):
        if d.get(key) is not None and not isinstance(d.get(key), str):
            return f"{key!r} must be a string, got {d.get(key)!r}"
    for key in ("params", "extra"):
        if not isinstance(d.get(key, {}), Mapping):
            return f"{key!r} must be an object, got {d.get(key)!r}"
    return ""


_METRICS = ("latency_s", "energy_j", "memory_bytes", "tops", "inferences_per_s", "tops_per_w",
            "energy_per_inference_j", "attn_rel_error", "static_energy_j", "area_mm2",
            "tops_per_mm2")
_REQUIRED_WHEN_OK = ("latency_s", "energy_j", "tops", "inferences_per_s")


def _check_number(label: str, value: object, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PluginError(f"{label} is {_safe_repr(value)}, not a number")
    v = float(value)
    if not math.isfinite(v):
        raise PluginError(f"{label} is {v!r}")
    if v < 0 or (positive and v == 0):
        raise PluginError(f"{label} is {v!r}, must be {'> 0' if positive else '>= 0'}")
    return v


#: Largest memory_bytes a result may hold (a signed 64-bit integer).
MAX_MEMORY_BYTES = 2**63 - 1
#: Largest magnitude of an integer in ``extra`` (JSON readers and NumPy stop at 64 bits).
MAX_EXTRA_INT = 2**63 - 1


def _safe_repr(v: object) -> str:
    """``repr(v)``, short, or a placeholder when the plugin's ``__repr__`` fails."""
    try:
        text = repr(v)
    except Exception:  # noqa: BLE001 - a plugin's object: its repr is its own fault
        return f"<{type(v).__name__} whose repr() fails>"
    return text if len(text) <= 200 else text[:200] + "..."


def validate_estimate(est: object) -> Estimate:
    """Raise :class:`PluginError` unless ``est`` is a well-formed :class:`Estimate`."""
    _validated_breakdown(est)
    assert isinstance(est, Estimate)
    return est


def _validated_breakdown(est: object) -> tuple[OpCost, ...]:
    """:func:`validate_estimate`; returns the breakdown with float fields (itself when every
    entry already has them: the common case, no copy)."""
    if not isinstance(est, Estimate):
        raise PluginError(f"returned {type(est).__name__}, not an Estimate")
    if isinstance(est.memory_bytes, bool) or not isinstance(est.memory_bytes, int) or est.memory_bytes < 0:
        raise PluginError(f"memory_bytes is {_safe_repr(est.memory_bytes)}, must be an integer >= 0")
    if est.memory_bytes > MAX_MEMORY_BYTES:  # JSON readers (and numpy) stop at 64 bits
        raise PluginError(f"memory_bytes is {est.memory_bytes}, more than 2^63 - 1")
    if not isinstance(est.notes, tuple) or not all(isinstance(n, str) for n in est.notes):
        raise PluginError(f"notes is {_safe_repr(est.notes)}, must be a tuple of strings")
    if not est.breakdown:
        raise PluginError("breakdown is empty")
    static = _check_number("static_energy_j", est.static_energy_j)
    if est.area_mm2 is not None:
        _check_number("area_mm2", est.area_mm2, positive=True)
    lat_sum, energy_sum = 0.0, static
    inf = math.inf
    plain = True
    for c in est.breakdown:
        if type(c) is OpCost and c.category in CATEGORIES and type(c.op) is str and c.op:
            # fast path (sweeps validate millions of rows): plain finite floats >= 0
            lat, en = c.latency_s, c.energy_j
            if type(lat) is float and type(en) is float and 0.0 <= lat < inf and 0.0 <= en < inf:
                lat_sum += lat
                energy_sum += en
                continue
        plain = False
        if not isinstance(c, OpCost):
            raise PluginError(f"breakdown holds {_safe_repr(c)}, not an OpCost")
        if not isinstance(c.op, str) or not c.op:
            raise PluginError(f"breakdown entry {_safe_repr(c)} has no op name")
        if c.category not in CATEGORIES:
            raise PluginError(f"breakdown[{c.op!r}].category is {c.category!r}, not one of "
                              f"{', '.join(CATEGORIES)}")
        lat_sum += _check_number(f"breakdown[{c.op!r}].latency_s", c.latency_s)
        energy_sum += _check_number(f"breakdown[{c.op!r}].energy_j", c.energy_j)
    # totals after the entries, so a NaN is reported where it starts (the op and field)
    latency = _check_number("latency_s", est.latency_s, positive=True)
    energy = _check_number("energy_j", est.energy_j)
    if not math.isclose(lat_sum, latency, rel_tol=SUM_RTOL):
        raise PluginError(f"breakdown latencies sum to {lat_sum!r}, total is {latency!r}")
    if not math.isclose(energy_sum, energy, rel_tol=SUM_RTOL, abs_tol=1e-30):
        raise PluginError(f"breakdown energies plus static_energy_j sum to {energy_sum!r}, "
                          f"total is {energy!r}")
    for k, v in est.extra.items():
        if type(k) is not str:
            raise PluginError(f"extra has the key {k!r}: keys must be strings")
        t = type(v)
        if t is float:
            if v - v == 0.0:  # type: ignore[operator]  # finite (inf - inf and nan - nan are nan)
                continue
        elif t is int:
            if -MAX_EXTRA_INT <= v <= MAX_EXTRA_INT:  # type: ignore[operator]
                continue
            raise PluginError(f"extra[{k!r}] is an integer beyond +-(2^63 - 1), which readers refuse")
        elif t is str or t is bool:
            continue
        if not isinstance(v, (bool, int, float, str)) or (isinstance(v, float) and not math.isfinite(v)):
            raise PluginError(f"extra[{k!r}] is {_safe_repr(v)}, not a finite scalar")
        if isinstance(v, int) and not isinstance(v, bool) and not -MAX_EXTRA_INT <= v <= MAX_EXTRA_INT:
            raise PluginError(f"extra[{k!r}] is an integer beyond +-(2^63 - 1), which readers refuse")
    if plain and type(est.breakdown) is tuple:
        return est.breakdown
    return tuple(OpCost(c.op, float(c.latency_s), float(c.energy_j), c.category) for c in est.breakdown)


def result_from_estimate(
    est: Estimate,
    *,
    workload: str,
    accelerator: str,
    plugin: str,
    seq_len: int,
    batch: int,
    ops: int,
    arithmetic: str,
    params: Mapping[str, Any],
    params_hash: str,
    attn_rel_error: float | None = None,
    shape_hash: str = "",
    ops_hash: str = "",
) -> Result:
    """Build an ``ok`` result, deriving every rate from the estimate's totals.

    Raises :class:`PluginError` when the estimate is malformed or a derived rate is
    not finite (a latency so small that TOPS overflows is the plugin's error).
    """
    breakdown = _validated_breakdown(est)
    latency, energy = float(est.latency_s), float(est.energy_j)
    area = None if est.area_mm2 is None else float(est.area_mm2)
    tops = ops / latency / 1e12
    derived = {"tops": tops, "inferences_per_s": batch / latency,
               "tops_per_w": (ops / energy / 1e12) if energy > 0 else None,
               "tops_per_mm2": tops / area if area else None}
    for key, value in derived.items():
        if value is not None and not math.isfinite(value):
            raise PluginError(f"derived {key} is {value!r} (latency_s={latency!r}, "
                              f"energy_j={energy!r}): not a finite number")
    return Result(
        workload=workload,
        accelerator=accelerator,
        plugin=plugin,
        seq_len=seq_len,
        batch=batch,
        status="ok",
        ops=ops,
        latency_s=latency,
        energy_j=energy,
        memory_bytes=int(est.memory_bytes),
        tops=tops,
        inferences_per_s=derived["inferences_per_s"],
        tops_per_w=derived["tops_per_w"],
        energy_per_inference_j=energy / batch,
        attn_rel_error=attn_rel_error,
        static_energy_j=float(est.static_energy_j),
        area_mm2=area,
        tops_per_mm2=derived["tops_per_mm2"],
        arithmetic=arithmetic,
        breakdown=breakdown,
        params=dict(params) if isinstance(params, MutableMapping) else params,  # (a read-only view is kept)
        params_hash=params_hash,
        extra=dict(est.extra),
        notes=tuple(est.notes),
        shape_hash=shape_hash,
        ops_hash=ops_hash,
    )


def failed_result(
    *,
    status: str,
    error: str,
    workload: str,
    accelerator: str,
    plugin: str,
    seq_len: int,
    batch: int,
    ops: int,
    params: Mapping[str, Any],
    params_hash: str,
    arithmetic: str = "",
    shape_hash: str = "",
    ops_hash: str = "",
) -> Result:
    """A result with ``status`` ``error`` or ``unsupported`` and no numbers."""
    assert status in ("error", "unsupported")
    return Result(
        workload=workload, accelerator=accelerator, plugin=plugin, seq_len=seq_len,
        batch=batch, status=status, ops=ops, params=dict(params), params_hash=params_hash,
        arithmetic=arithmetic, error=error, shape_hash=shape_hash, ops_hash=ops_hash,
    )


@dataclass(frozen=True)
class RunDocument:
    """A results file: ``{"schema_version", "metadata", "results"}``."""

    results: tuple[Result, ...]
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def has_errors(self) -> bool:
        return any(r.status == "error" for r in self.results)

    def to_dict(self) -> Json:
        return {
            "schema_version": SCHEMA_VERSION,
            "metadata": dict(self.metadata),
            "results": [r.to_dict() for r in self.results],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], *, origin: str = "results") -> RunDocument:
        if not isinstance(doc, Mapping):
            raise UsageError(f"{origin}: expected a JSON object")
        version = doc.get("schema_version")
        if version != SCHEMA_VERSION:
            raise UsageError(
                f"{origin}: schema_version {version!r} is not supported (expected {SCHEMA_VERSION})"
            )
        raw = doc.get("results")
        if not isinstance(raw, list):
            raise UsageError(f"{origin}: 'results' must be a list")
        try:
            results = tuple(Result.from_dict(r) for r in raw)
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"{origin}: malformed result ({exc})") from None
        metadata = doc.get("metadata", {})
        if not isinstance(metadata, Mapping):
            raise UsageError(f"{origin}: 'metadata' must be an object")
        return cls(results=results, metadata=dict(metadata))


def load_document(path: Path | str) -> RunDocument:
    """Read a results JSON file (or a sweep's ``.jsonl``), with one-line errors for every failure.

    The file is checked against the shipped JSON Schema (:func:`results_schema`) before
    it is turned into results, so a hand-edited file with a wrong type anywhere is refused
    naming the first offending field, never a traceback later.
    """
    if str(path).endswith(".jsonl"):
        from .sweep.runner import load_sweep_document

        return load_sweep_document(path)
    origin = str(path)
    doc = hio.load_json(path, what="results file")
    if isinstance(doc, Mapping) and doc.get("schema_version") != SCHEMA_VERSION:
        RunDocument.from_dict(doc, origin=origin)  # names the unsupported version
    check_against_schema(doc, origin)
    return RunDocument.from_dict(doc, origin=origin)


def check_against_schema(doc: Any, origin: str) -> None:
    """Raise a one-line :class:`UsageError` naming the first place ``doc`` breaks the schema."""
    import jsonschema

    error = jsonschema.exceptions.best_match(_validator().iter_errors(doc))
    if error is None:
        return
    where = "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    message = error.message if len(error.message) <= 200 else error.message[:200] + "..."
    raise UsageError(f"{origin}: not a valid results file: {where.lstrip('.') or 'document'}: "
                     f"{message}".replace("\n", " "))


@functools.cache
def _validator() -> Any:
    import jsonschema

    return jsonschema.Draft202012Validator(results_schema())


def results_schema() -> Json:
    """The JSON Schema (draft 2020-12) of a results document."""
    text = resources.files("hastily_bench").joinpath("schema/results.schema.json").read_text()
    schema: Json = json.loads(text)
    return schema


def check_output_path(path: Path | str) -> Path:
    """Refuse an output path that cannot be written, before any work is done.

    Kept for callers of the 0.x API; :func:`hastily_bench.io.output` is the full check.
    """
    hio.output(path)
    return Path(path)


def write_atomic(path: Path | str, text: str) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`hastily_bench.io.write_atomic`)."""
    hio.write_atomic(path, text)


def summarise_by_category(result: Result) -> dict[str, tuple[float, float]]:
    """``{category: (latency_s, energy_j)}`` of a result's breakdown, plus ``static`` energy."""
    out: dict[str, tuple[float, float]] = {}
    for c in result.breakdown:
        key = c.category or c.op
        lat, en = out.get(key, (0.0, 0.0))
        out[key] = (lat + c.latency_s, en + c.energy_j)
    if result.static_energy_j:
        out["static"] = (0.0, result.static_energy_j)
    return out


def index(results: Sequence[Result]) -> dict[tuple[str, str, int, int], Result]:
    return {r.key(): r for r in results}
