"""Namespaced component parameters: flattening loader and the consumed-key check.

A preset groups parameters per component::

    [params.adc]
    bits = { value = 6, unit = "bits", source = "paper", note = "6-bit ADCs" }
    sample_rate_hz = { value = 5.67e9, unit = "Hz", source = "fitted" }

    [params.array]
    rows = { value = 64, unit = "rows", source = "paper" }

Group and key join with ``_`` into flat names (``adc_bits``,
``adc_sample_rate_hz``, ``array_rows``), so the result is an ordinary
:class:`~hastily_bench.params.ParamSet` and ``--set hastily.adc_bits=8`` works
unchanged. A table with a ``value`` key is a parameter; any other table is a
group (groups nest: ``[params.vfu.exp]`` gives ``vfu_exp_*``). Parameters may
also sit directly under ``[params]`` (model-level switches).

Every component declares the flat names it reads (``ADC.param_keys()``); a model
lists its components plus its own keys and calls :func:`check_consumed`, which
refuses a preset holding a key nothing reads (a misspelt key would otherwise be
silently ignored).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import UsageError, suggest
from ..params import (
    PARAMS_SCHEMA_VERSION,
    ParamSet,
    check_schema_version,
    load_toml,
    params_from_mapping,
)


def flatten_params(table: Mapping[str, Any], *, origin: str, prefix: str = "") -> dict[str, Any]:
    """``{group: {key: spec}}`` to ``{group_key: spec}`` (see the module docstring)."""
    out: dict[str, Any] = {}
    for key, spec in table.items():
        name = f"{prefix}_{key}" if prefix else str(key)
        if not isinstance(spec, Mapping):
            raise UsageError(f"{origin}: parameter {name!r} must be a table with a 'value' "
                             f"(or a group of such tables), got {spec!r}")
        if "value" in spec:
            items = {name: spec}
        else:
            if not spec:
                raise UsageError(f"{origin}: group {name!r} is empty")
            items = flatten_params(spec, origin=origin, prefix=name)
        for flat, s in items.items():
            if flat in out:
                raise UsageError(f"{origin}: parameter {flat!r} is defined twice "
                                 "(once in a group and once flat, or in two groups)")
            out[flat] = s
    return out


def load_component_params(
    table: Mapping[str, Any],
    origin: str,
    *,
    consumers: Iterable[Iterable[str]] | None = None,
) -> ParamSet:
    """Build a :class:`ParamSet` from a namespaced ``[params]`` table.

    Each value keeps its unit, source, note, description, choices and bounds,
    validated as :func:`~hastily_bench.params.params_from_mapping` does. With
    ``consumers`` (each an iterable of flat key names, e.g. ``ADC.param_keys()``
    or a :class:`~hastily_bench.cim.Chip`'s ``param_keys()``), loading also fails
    on a key none of them reads (:func:`check_consumed`).
    """
    params = params_from_mapping(flatten_params(table, origin=origin), origin=origin)
    if consumers is not None:
        check_consumed(params, consumers, origin=origin)
    return params


def check_consumed(params: Mapping[str, Any], consumers: Iterable[Iterable[str]], *, origin: str) -> None:
    """Raise one :class:`UsageError` naming the keys of ``params`` no consumer reads,
    or the keys a consumer needs that ``params`` lacks."""
    wanted: set[str] = set()
    for keys in consumers:
        wanted.update(keys)
    unused = [k for k in params if k not in wanted]
    if unused:
        hints = "".join(suggest(k, wanted) for k in unused[:1])
        raise UsageError(f"{origin}: parameter{'s' if len(unused) > 1 else ''} "
                         f"{', '.join(repr(k) for k in unused)} read by no component{hints}")
    missing = sorted(wanted - set(params))
    if missing:
        raise UsageError(f"{origin}: missing parameter{'s' if len(missing) > 1 else ''} "
                         f"{', '.join(repr(k) for k in missing)}")


def load_component_preset(
    path: Path | str,
    *,
    consumers: Iterable[Iterable[str]] | None = None,
    table: str = "params",
) -> ParamSet:
    """Read a preset file (``schema_version = 1`` and a namespaced ``[params]`` table)."""
    doc = load_toml(path)
    check_schema_version(doc, PARAMS_SCHEMA_VERSION, str(path))
    section = doc.get(table)
    if not isinstance(section, Mapping):
        raise UsageError(f"{path}: missing [{table}] table")
    return load_component_params(section, str(path), consumers=consumers)


def example_preset_path(name: str) -> Path:
    """Path of a preset shipped in ``hastily_bench/cim/presets/`` (``hastily-paper``: the paper's chip)."""
    path = Path(str(resources.files("hastily_bench.cim").joinpath("presets", f"{name}.toml")))
    if not path.is_file():
        raise UsageError(f"no CIM component preset named {name!r}")
    return path
