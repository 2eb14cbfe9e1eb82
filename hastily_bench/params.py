"""Accelerator parameters: every value carries its unit and where it came from.

A model is only as honest as its inputs, so an accelerator never holds a bare
constant: each number is a :class:`Param` with a unit and a *source*
(``paper``, ``puma-sim``, ``datasheet``, ``assumed``, ``fitted``, ``derived``,
``measured``) and a note saying which document or figure it comes from. Presets
are TOML files read by :func:`load_params`; users override single values with
``--set ACCEL.PARAM=VALUE`` (parsed by :meth:`ParamSet.override`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Iterator, Mapping, Sequence, ValuesView
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from . import io as hio
from .errors import UnknownParameter, UsageError, suggest

PARAMS_SCHEMA_VERSION = 1

SOURCES = frozenset(
    {"paper", "puma-sim", "datasheet", "assumed", "fitted", "derived", "measured", "user"}
)

Value = bool | int | float | str


@dataclass(frozen=True)
class Param:
    """One named model input.

    Parameters
    ----------
    name
        Identifier used in ``--set``; lower_snake_case with the unit in the name
        where it has one (``clock_hz``, ``adc_energy_j``).
    value
        ``bool``, ``int``, ``float`` or ``str``; overrides must have the same type.
    unit
        Unit text (``"s"``, ``"W"``, ``"mm2"``, ``"bits"``); ``""`` when dimensionless.
    source
        One of :data:`SOURCES`.
    note
        Where the value comes from: document, section, figure fitted to.
    description
        What the parameter means in the model.
    choices
        Allowed values for string parameters.
    minimum, maximum
        Inclusive bounds for numeric parameters.
    informational
        The model reads it only to describe results (a reference value such as the
        paper's chip area): changing it changes no estimate. Every other parameter
        must change some output (tested for the built-ins).
    """

    name: str
    value: Value
    unit: str = ""
    source: str = "assumed"
    note: str = ""
    description: str = ""
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    informational: bool = False

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(
                f"parameter {self.name!r}: source {self.source!r} is not one of {sorted(SOURCES)}"
            )
        self.check(self.value)

    def check(self, value: Value) -> None:
        """Raise :class:`UsageError` when ``value`` is not allowed for this parameter."""
        if isinstance(value, float) and not math.isfinite(value):
            raise UsageError(f"parameter {self.name!r}: value must be finite, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise UsageError(
                f"parameter {self.name!r}: {value!r} is not one of {', '.join(self.choices)}"
            )
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if self.minimum is not None and value < self.minimum:
                raise UsageError(f"parameter {self.name!r}: {value!r} is below {self.minimum!r}")
            if self.maximum is not None and value > self.maximum:
                raise UsageError(f"parameter {self.name!r}: {value!r} is above {self.maximum!r}")

    def parse(self, text: str) -> Value:
        """Parse ``text`` as a value of this parameter's type (for ``--set``)."""
        current = self.value
        raw = text.strip()
        value: Value
        if isinstance(current, bool):
            low = raw.lower()
            if low in {"true", "1", "yes", "on"}:
                value = True
            elif low in {"false", "0", "no", "off"}:
                value = False
            else:
                raise UsageError(f"parameter {self.name!r} takes true/false, got {text!r}")
        elif isinstance(current, int):
            try:
                value = hio.ascii_int(raw)
            except ValueError:
                raise UsageError(f"parameter {self.name!r} takes an integer, got {text!r}") from None
        elif isinstance(current, float):
            try:
                value = hio.ascii_float(raw)
            except ValueError:
                raise UsageError(f"parameter {self.name!r} takes a number, got {text!r}") from None
        else:
            value = raw
        self.check(value)
        return value


class ParamSet(Mapping[str, Param]):
    """An ordered, immutable set of :class:`Param`, looked up by name."""

    __slots__ = ("_params", "_json", "_hash", "_memo", "_sorted", "_names", "_base", "_swapped", "_segs")

    def __init__(self, params: Mapping[str, Param] | list[Param] | tuple[Param, ...]) -> None:
        if isinstance(params, Mapping):
            items = dict(params)
        else:
            items = {}
            for p in params:
                if p.name in items:
                    raise ValueError(f"parameter {p.name!r} defined twice")
                items[p.name] = p
        self._params: dict[str, Param] = items
        self._json: dict[str, str] | None = None  # name -> compact JSON of the value, filled lazily
        self._hash: int | None = None
        self._memo: dict[int, tuple[Sequence[str], tuple[Value, ...]]] | None = None  # values_of results
        self._sorted: list[str] | None = None  # the names, sorted (digest); shared by copies
        self._names: frozenset[str] | None = None  # names(); shared by copies
        # a copy made by replacing(): the set it was made from and the names it swapped
        # (its JSON and its keys are the base's with those values in their places)
        self._base: ParamSet | None = None
        self._swapped: tuple[str, ...] = ()
        # on a base: what its copies that swap the same names share (see _segments)
        self._segs: dict[object, Any] | None = None

    def __getitem__(self, name: str) -> Param:
        try:
            return self._params[name]
        except KeyError:
            raise UnknownParameter(
                f"unknown parameter {name!r}{suggest(name, self._params)}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __contains__(self, name: object) -> bool:
        return name in self._params

    def __len__(self) -> int:
        return len(self._params)

    def __repr__(self) -> str:
        return f"ParamSet({', '.join(f'{k}={p.value!r}' for k, p in self._params.items())})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ParamSet) and self._params == other._params

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # never pickle the cached hash: string hashes differ between processes
        return (_rebuild_param_set, (self._params, self._json))

    def __hash__(self) -> int:
        # names and values only (equal sets have equal values, so this agrees with __eq__),
        # cached: models memoise on the parameter set, and hashing every Param's notes and
        # descriptions per call cost more than some models' arithmetic
        h = self._hash
        if h is None:
            h = self._hash = hash(tuple([(k, p.value) for k, p in self._params.items()]))
        return h

    # typed accessors keep model code short and fail loudly on a type mix-up; they are on
    # every model's hot path, so they read the dict directly and test exact types
    def _value(self, name: str) -> Value:
        try:
            return self._params[name].value
        except KeyError:
            raise UnknownParameter(f"unknown parameter {name!r}{suggest(name, self._params)}") from None

    def f(self, name: str) -> float:
        """Value of a numeric parameter as ``float``."""
        try:  # inlined _value: this is the hottest call of every model
            v = self._params[name].value
        except KeyError:
            v = self._value(name)
        t = type(v)
        if t is float:
            return v  # type: ignore[return-value]
        if t is int:
            return float(v)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError(f"parameter {name!r} is not numeric: {v!r}")
        return float(v)

    def i(self, name: str) -> int:
        """Value of an integer parameter."""
        try:
            v = self._params[name].value
        except KeyError:
            v = self._value(name)
        if type(v) is int:
            return v
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"parameter {name!r} is not an integer: {v!r}")
        return v

    def b(self, name: str) -> bool:
        """Value of a boolean parameter."""
        v = self._value(name)
        if not isinstance(v, bool):
            raise TypeError(f"parameter {name!r} is not a boolean: {v!r}")
        return v

    def s(self, name: str) -> str:
        """Value of a string parameter."""
        v = self._value(name)
        if not isinstance(v, str):
            raise TypeError(f"parameter {name!r} is not a string: {v!r}")
        return v

    def values(self) -> ValuesView[Param]:
        return self._params.values()

    def names(self) -> frozenset[str]:
        """The parameter names (a set, for comparisons against what a model reads)."""
        names = self._names
        if names is None:
            names = self._names = frozenset(self._params)
        return names

    def values_of(self, names: Sequence[str]) -> tuple[Value, ...]:
        """The values of ``names``, in that order: a cache key for what depends on them only.

        Models memoise what a few parameters determine (a chip, a mapping) on this key
        instead of on the whole set, so design points that differ elsewhere share it.
        The answer for a tuple of names is kept with the set (models ask several times).
        """
        # kept by the identity of the names (models pass module constants: hashing a tuple
        # of 89 names per look-up costs more than the look-up); the entry holds the tuple, so
        # its id is not reused while the entry lives
        memo = self._memo
        if memo is not None:
            kept = memo.get(id(names))
            if kept is not None and kept[0] is names:
                return kept[1]
        d = self._params
        base = self._base
        if base is not None and type(names) is tuple:
            # the base's answer with the swapped values in their places (a sweep's points
            # ask for the same long keys: the chip's names, say)
            v = base.values_of(names)
            places = base._places(names, self._swapped)
            if places:
                patched = list(v)
                for name, i in places:
                    patched[i] = d[name].value
                v = tuple(patched)
        else:
            try:
                v = tuple([d[n].value for n in names])
            except KeyError:
                missing = next(n for n in names if n not in d)
                raise UnknownParameter(f"unknown parameter {missing!r}{suggest(missing, d)}") from None
        if type(names) is tuple:
            if memo is None:
                memo = self._memo = {}
            if len(memo) >= 64:
                memo.clear()
            memo[id(names)] = (names, v)
        return v

    def _places(self, names: tuple[str, ...], swapped: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
        """``(name, index in names)`` of each swapped name among ``names`` (kept per pair)."""
        segs = self._segs
        if segs is None:
            segs = self._segs = {}
        key = (id(names), swapped, "places")  # (the entry holds the names: see values_of)
        kept = segs.get(key)
        if kept is None or kept[0] is not names:
            if len(segs) >= 256:  # a caller that builds its names per call must not grow it
                segs.clear()
            where = set(swapped)
            kept = segs[key] = (names, tuple((n, i) for i, n in enumerate(names) if n in where))
        return kept[1]

    def as_dict(self) -> dict[str, Value]:
        """``{name: value}``, in definition order (what results store)."""
        return {k: p.value for k, p in self._params.items()}

    def value_view(self) -> Mapping[str, Value]:
        """A read-only ``{name: value}`` over this set, without a copy (results keep it)."""
        return _ValueView(self)

    @staticmethod
    def _overridden(p: Param, value: Value | str, source: str) -> Param:
        name = p.name
        if isinstance(value, str) and not isinstance(p.value, str):
            new_value = p.parse(value)
        else:
            if type(value) is not type(p.value) and not (
                isinstance(p.value, float) and isinstance(value, int) and not isinstance(value, bool)
            ):
                raise UsageError(
                    f"parameter {name!r} takes {type(p.value).__name__}, got {value!r}"
                )
            new_value = float(value) if isinstance(p.value, float) else value
            p.check(new_value)
        return replace(p, value=new_value, source=source, note=f"set by user (was {p.value!r})")

    def override(self, name: str, value: Value | str, *, source: str = "user") -> ParamSet:
        """Return a copy with ``name`` set to ``value`` (a string is parsed to the type)."""
        return self.replacing([self._overridden(self[name], value, source)])

    def with_values(self, values: Mapping[str, Value], *, source: str = "user") -> ParamSet:
        """Apply several overrides in order (one copy, not one per value)."""
        items = self._params.copy()
        for k, v in values.items():
            if k not in items:
                raise UnknownParameter(f"unknown parameter {k!r}{suggest(k, items)}")
            # a later value of the same name sees the earlier one, as chained overrides would
            items[k] = self._overridden(items[k], v, source)
        out = ParamSet.__new__(ParamSet)
        out._params = items
        out._json = None
        out._hash = None
        out._memo = None
        out._sorted = self._sorted
        out._names = self._names
        out._base = None
        out._swapped = ()
        out._segs = None
        return out

    def replacing(self, params: Sequence[Param]) -> ParamSet:
        """A copy with each of ``params`` in place of the parameter of the same name.

        The fast path for sweeps: the :class:`Param` objects are built (and checked)
        once per value, then swapped in per point. Every name must exist already.
        """
        items = self._params.copy()
        frags = self._json.copy() if self._json is not None else None
        if self._sorted is None:  # once for the base of a sweep, shared by its copies
            self._sorted = sorted(items)
            self._names = frozenset(items)
        for p in params:
            if p.name not in items:
                raise UsageError(f"unknown parameter {p.name!r}{suggest(p.name, items)}")
            items[p.name] = p
            if frags is not None:
                frags[p.name] = _member_json(p.name, p.value)  # keeps its place
        out = ParamSet.__new__(ParamSet)
        out._params = items
        out._json = frags
        out._hash = None
        out._memo = None
        out._sorted = self._sorted  # same names
        out._names = self._names
        # a copy of a copy is a plain set: only one level of sharing
        root = self._base is None and frags is not None
        out._base = self if root else None
        out._swapped = tuple(dict.fromkeys(p.name for p in params)) if root else ()
        out._segs = None
        return out

    def _segments(self, swapped: tuple[str, ...], order: str) -> tuple[list[str], tuple[str, ...]]:
        """This set's JSON members in ``order`` ("definition" or "sorted") joined between
        the places of the ``swapped`` names: ``(pieces, names)`` such that a copy swapping
        them joins ``pieces[0], member(names[0]), pieces[1], ...`` (kept per names)."""
        segs = self._segs
        if segs is None:
            segs = self._segs = {}
        key = (swapped, order)
        hit = segs.get(key)
        if hit is None:
            if len(segs) >= 256:
                segs.clear()
            frags = self.values_json()
            keys = list(frags) if order == "definition" else self._sorted or sorted(frags)
            where = set(swapped)
            pieces: list[str] = []
            names: list[str] = []
            run: list[str] = []
            for k in keys:
                if k in where:
                    pieces.append(",".join(run))
                    names.append(k)
                    run = []
                else:
                    run.append(frags[k])
            pieces.append(",".join(run))
            hit = segs[key] = (pieces, tuple(names))
        return hit

    def _joined(self, order: str) -> str:
        """The members joined with commas in ``order``; a copy of a base joins the base's
        unchanged runs with its own few members."""
        base = self._base
        frags = self.values_json()
        if base is not None:
            pieces, names = base._segments(self._swapped, order)
            out = [pieces[0]]
            for name, piece in zip(names, pieces[1:], strict=True):
                out.append(frags[name])
                out.append(piece)
            return ",".join([x for x in out if x])
        if order == "definition":
            return ",".join(frags.values())
        keys = self._sorted
        if keys is None or len(keys) != len(frags):
            keys = self._sorted = sorted(frags)
        return ",".join([frags[k] for k in keys])

    def values_json(self) -> dict[str, str]:
        """``{name: '"name":VALUE'}`` (compact JSON members) in definition order, cached.

        What :meth:`digest` hashes and what a results row holds under ``params``;
        copies made by :meth:`replacing` share the members of unchanged values.
        """
        frags = self._json
        if frags is None or len(frags) != len(self._params):
            old, dumps = frags or {}, json.dumps
            frags = self._json = {k: old[k] if k in old else f"{_key_json(k)}:{dumps(p.value)}"
                                  for k, p in self._params.items()}
        return frags

    def to_json(self) -> str:
        """``json.dumps(self.as_dict(), separators=(",", ":"))`` from the cached members."""
        return "{" + self._joined("definition") + "}"

    def digest(self, extra: str = "") -> str:
        """Short stable hash of the values (and ``extra``, e.g. plugin version)."""
        # == json.dumps([self.as_dict(), extra], sort_keys=True, separators=(",", ":")), built
        # from the cached value fragments (a sweep changes a few values per point)
        blob = f"[{{{self._joined('sorted')}}},{_extra_json(extra)}]"
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


class _ValueView(Mapping[str, Value]):
    """:meth:`ParamSet.value_view`: names to values, read-only, over an immutable set."""

    __slots__ = ("_set",)

    def __init__(self, params: ParamSet) -> None:
        self._set = params

    def __getitem__(self, name: str) -> Value:
        return self._set[name].value

    def __iter__(self) -> Iterator[str]:
        return iter(self._set)

    def __len__(self) -> int:
        return len(self._set)

    def __repr__(self) -> str:
        return repr(self._set.as_dict())


def _rebuild_param_set(params: dict[str, Param], frags: dict[str, str] | None) -> ParamSet:
    out = ParamSet.__new__(ParamSet)
    out._params = params
    out._json = frags
    out._hash = None
    out._memo = None
    out._sorted = None
    out._names = None
    out._base = None
    out._swapped = ()
    out._segs = None
    return out


@functools.lru_cache(maxsize=256)
def _extra_json(extra: str) -> str:
    """``json.dumps(extra)`` (every point's digest hashes its plugin's version)."""
    return json.dumps(extra)


@functools.lru_cache(maxsize=4096)
def _key_json(name: str) -> str:
    return json.dumps(name)


def _member_json(name: str, value: Value) -> str:
    """``"name":VALUE``: a sweep swaps the same few values in and out of every point."""
    if value == 0 and type(value) is float:  # 0.0 and -0.0 are one key but two texts
        return f"{_key_json(name)}:{json.dumps(value)}"
    return _cached_member_json(name, value)


@functools.lru_cache(maxsize=8192, typed=True)  # typed: 1, 1.0 and True print differently
def _cached_member_json(name: str, value: Value) -> str:
    return f"{_key_json(name)}:{json.dumps(value)}"


_PARAM_KEYS = {"value", "unit", "source", "note", "description", "choices", "min", "max",
               "informational"}


def params_from_mapping(table: Mapping[str, Any], *, origin: str) -> ParamSet:
    """Build a :class:`ParamSet` from ``{name: {value=..., unit=..., source=...}}``."""
    params: list[Param] = []
    for name, spec in table.items():
        if not isinstance(spec, Mapping) or "value" not in spec:
            raise UsageError(f"{origin}: parameter {name!r} must be a table with a 'value'")
        unknown = set(spec) - _PARAM_KEYS
        if unknown:
            raise UsageError(f"{origin}: parameter {name!r} has unknown keys {sorted(unknown)}")
        source = spec.get("source", "assumed")
        if source not in SOURCES:
            raise UsageError(
                f"{origin}: parameter {name!r} has source {source!r}, expected one of "
                f"{', '.join(sorted(SOURCES))}"
            )
        choices = spec.get("choices")
        try:
            params.append(
                Param(
                    name=name,
                    value=spec["value"],
                    unit=str(spec.get("unit", "")),
                    source=source,
                    note=str(spec.get("note", "")),
                    description=str(spec.get("description", "")),
                    choices=tuple(choices) if choices is not None else None,
                    minimum=spec.get("min"),
                    maximum=spec.get("max"),
                    informational=bool(spec.get("informational", False)),
                )
            )
        except UsageError as exc:
            raise UsageError(f"{origin}: {exc}") from None
    return ParamSet(params)


def load_toml(path: Path | str) -> dict[str, Any]:
    """Read a TOML file, turning every failure into one-line :class:`UsageError`.

    The limits (size, encoding, nesting, number of digits) are :mod:`hastily_bench.io`'s.
    """
    return hio.load_toml(path)


def load_json(path: Path | str) -> Any:
    """Read a JSON file, turning every failure into one-line :class:`UsageError`."""
    return hio.load_json(path)


def load_package_toml(package: str, filename: str, *, schema_version: int = 1) -> dict[str, Any]:
    """Read a TOML data file shipped inside ``package`` and check its ``schema_version``.

    For plugins' presets: ``load_package_toml("my_plugin", "presets.toml")``.
    """
    path = Path(str(resources.files(package).joinpath(filename)))
    doc = load_toml(path)
    check_schema_version(doc, schema_version, f"{package}/{filename}")
    return doc


def check_schema_version(doc: Mapping[str, Any], expected: int, origin: str) -> None:
    """Refuse a file without, or with a newer, ``schema_version``."""
    version = doc.get("schema_version")
    if version is None:
        raise UsageError(f"{origin}: missing 'schema_version' (expected {expected})")
    if type(version) is not int or version != expected:  # (true == 1 and 1.0 == 1 in Python)
        raise UsageError(f"{origin}: schema_version {version!r} is not supported (expected {expected})")


def load_params(path: Path | str, table: str = "params") -> ParamSet:
    """Load a preset file: ``schema_version = 1`` and a ``[params]`` table of parameters."""
    doc = load_toml(path)
    check_schema_version(doc, PARAMS_SCHEMA_VERSION, str(path))
    section = doc.get(table)
    if not isinstance(section, Mapping):
        raise UsageError(f"{path}: missing [{table}] table")
    return params_from_mapping(section, origin=str(path))
