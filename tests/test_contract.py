"""The typed op-graph contract, checked on every built-in model and on the code itself."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from hastily_bench.api import (
    CATEGORIES,
    RMSNorm,
    build_graph,
    configured_accelerator,
    estimate_point,
)
from hastily_bench.graph import OpGraph, Rotary
from hastily_bench.params import Param

ROOT = Path(__file__).parents[1]
MODEL_FILES = sorted([*ROOT.glob("plugins/*.py"), *ROOT.glob("examples/*/src/*/*.py")])
#: Labels of the encoder builder's ops; a model that compares against them dispatches on names.
OP_LABELS = ("qkv_proj", "attn_scores", "attn_context", "out_proj", "ffn_up", "ffn_down",
             "add_layernorm", "gelu", "mvm", "layernorm")
# ("softmax" is also a breakdown category; comparisons of names are caught by the second check)


def test_model_files_exist() -> None:
    assert len(MODEL_FILES) >= 3  # cim, gpu, the example plugin


@pytest.mark.parametrize("path", MODEL_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_model_names_an_op_by_string(path: Path) -> None:
    text = path.read_text()
    labels = "|".join(OP_LABELS)
    quoted = re.findall(rf"""["']({labels})(_\d)?["']""", text)
    assert not quoted, f"{path.name} names ops by string: {quoted}"
    compared = re.findall(r"\.name\s*(==|!=|\bnot in\b|\bin\b)", text)
    assert not compared, f"{path.name} compares op names"


def _with_unknown_ops(graph: OpGraph) -> list[OpGraph]:
    """The graph with an RMSNorm in place of a LayerNorm, and with a Rotary op added."""
    ops = list(graph.layer_ops)
    i = next(i for i, op in enumerate(ops) if op.kind == "layernorm")
    ln = ops[i]
    rms = RMSNorm(name=ln.name, rows=ln.rows, row_len=ln.row_len, deps=ln.deps,  # type: ignore[attr-defined]
                  input_bytes=ln.input_bytes, output_bytes=ln.output_bytes)
    rotary = Rotary(name="rope", count=graph.tokens * graph.workload.hidden)
    return [dataclasses.replace(graph, layer_ops=(*ops[:i], rms, *ops[i + 1:])),
            dataclasses.replace(graph, layer_ops=(rotary, *ops))]


def test_unknown_op_types_are_unsupported_naming_the_op(host) -> None:
    graph = build_graph(host.workload("bert-base"), 128, 1)
    names = [a.name for a in host.accelerators()]
    assert {"hastily", "baseline-cim", "a40-tensorrt", "a40-hf-bnb"} <= set(names)
    for g, label in zip(_with_unknown_ops(graph), ("add_layernorm_1", "rope"), strict=True):
        for name in names:
            reg, params = configured_accelerator(host, name)
            r = estimate_point(reg, params, g)
            assert r.status == "unsupported", (name, r.status, r.error)
            assert f"op {label!r}" in (r.error or "")


def test_builtins_use_the_closed_category_set(host) -> None:
    graph = build_graph(host.workload("bert-base"), 256, 2)
    for reg in host.accelerators():
        reg_, params = configured_accelerator(host, reg.name)
        r = estimate_point(reg_, params, graph)
        assert r.ok, (reg.name, r.error)
        assert {c.category for c in r.breakdown} <= set(CATEGORIES), reg.name
        assert all(c.op != "static" for c in r.breakdown)


# -- every parameter counts ----------------------------------------------------------------

#: Parameters that act only away from the preset's operating point are also tried there: node
#: scaling (tech_vdd_v), the ADC's rate law (at another resolution than its anchor's), a table
#: spanning several arrays, a global buffer slow enough to bind, a reticle that binds, a power
#: limit that binds, a card too small for the model.
AWAY_FROM_REFERENCE = (
    {"tech_node_nm": "22"}, {"adc_bits": "8"}, {"array_lut_entries": "4096"},
    {"schedule": "matrix", "global_buffer_bytes_per_cycle": "64"},
    {"capacity": "scale", "max_area_mm2": "2000"}, {"tdp_w": "100"}, {"memory_gib": "0.25"},
    {"kernel_overhead_s": "1e-6"},
)
#: Parameters that cannot change this accelerator by construction, with the test that shows
#: they change others: the A100 is the 7 nm reference node of the GPU energy law,
#: (7 / 7)^x = 1 (tests/test_gpu.py::test_energy_scales_with_the_process_node).
NO_EFFECT_HERE = {("a100-40gb-roofline", "process_energy_exponent")}


def _other_value(p: Param) -> object:
    """A valid value different from the default (or None when there is none)."""
    v = p.value
    if isinstance(v, bool):
        return not v
    if p.choices:
        others = [c for c in p.choices if c != v]
        return others[0] if others else None
    if isinstance(v, int):
        for cand in (v * 2, v + 1, v - 1, max(1, v // 2)):
            try:
                p.check(cand)
            except Exception:  # noqa: BLE001
                continue
            if cand != v:
                return cand
        return None
    if isinstance(v, float):
        for cand in (v * 1.5, v * 0.5, v + 1.0, 0.5 if v == 0 else v * 0.9):
            try:
                p.check(cand)
            except Exception:  # noqa: BLE001
                continue
            if cand != v:
                return cand
    return None


def _contexts(params):  # type: ignore[no-untyped-def]
    """The preset, and the preset with each switch (bool or choice) flipped: a parameter may
    matter only when another one enables it (lookup costs only with the table exponent)."""
    flips = []
    for p in params.values():
        if isinstance(p.value, bool) or p.choices:
            other = _other_value(p)
            flips.append((p.name, str(other).lower() if isinstance(other, bool) else str(other)))
    out = [params]
    for i, (a, va) in enumerate(flips):
        out.append(params.override(a, va))
        out += [params.override(a, va).override(b, vb) for b, vb in flips[i + 1:]]
    names = params.as_dict()
    for away in AWAY_FROM_REFERENCE:
        if all(k in names for k in away):
            ctx = params
            for k, v in away.items():
                ctx = ctx.override(k, v)
            out.append(ctx)
            # and with each switch flipped (a table size matters only with the table on)
            out += [ctx.override(a, va) for a, va in flips if a not in away]
    return out


_BASE_FINGERPRINTS: dict[tuple[str, str], tuple] = {}


def _fingerprint(host, name: str, params) -> tuple:  # type: ignore[no-untyped-def]
    """Every output of two points for ``params`` (the status, numbers, facts and arithmetic)."""
    reg, _ = configured_accelerator(host, name)
    out = []
    for workload, seq, batch in (("bert-base", 1024, 1), ("bert-large", 512, 2)):
        try:
            reg.spec.check_params and reg.spec.check_params(params)
        except Exception as exc:  # noqa: BLE001 - a refused combination is an output too
            out.append(("refused", str(exc)))
            continue
        r = estimate_point(reg, params, build_graph(host.workload(workload), seq, batch))
        arith = reg.spec.arithmetic(params).label()
        # numbers and status only: `extra` echoes parameters back and would hide a dead one
        out.append((r.status, None if r.ok else r.error, r.latency_s, r.energy_j, r.memory_bytes,
                    r.area_mm2, r.static_energy_j, arith))
    return tuple(out)


def _changes_some_output(host, name: str, params, param: str, text: str) -> bool:  # type: ignore[no-untyped-def]
    """True at the first context (see :func:`_contexts`) where ``param=text`` changes an output."""
    for ctx in _contexts(params):
        key = (name, ctx.digest())
        if key not in _BASE_FINGERPRINTS:
            _BASE_FINGERPRINTS[key] = _fingerprint(host, name, ctx)
        if _fingerprint(host, name, ctx.override(param, text)) != _BASE_FINGERPRINTS[key]:
            return True
    return False


def _param_cases(host) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    cases = []
    for accel in ("hastily", "baseline-cim", "a40-tensorrt", "a40-hf-bnb", "a100-40gb-roofline"):
        for p in host.accelerator(accel).spec.params.values():
            if not p.informational and (accel, p.name) not in NO_EFFECT_HERE:
                cases.append((accel, p.name))
    return cases


def _cases() -> list[object]:
    from hastily_bench.host import PluginHost

    host = PluginHost(autoload=False)
    out: list[object] = []
    for accel, name in _param_cases(host):
        out.append(pytest.param(accel, name, id=f"{accel}.{name}"))
    return out


@pytest.mark.parametrize(("accel", "name"), _cases())
def test_every_parameter_changes_some_output(host, accel: str, name: str) -> None:
    spec = host.accelerator(accel).spec
    p = spec.params[name]
    other = _other_value(p)
    assert other is not None, f"{accel}.{name}: no other valid value to try"
    text = str(other).lower() if isinstance(other, bool) else str(other)
    assert _changes_some_output(host, accel, spec.params, name, text), \
        f"{accel}.{name}={other} changes no output"


# -- the core names no built-in ---------------------------------------------------------------

CORE = sorted(p for p in (ROOT / "hastily_bench").rglob("*.py"))


@pytest.mark.parametrize("path", CORE, ids=lambda p: str(p.relative_to(ROOT)))
def test_core_modules_name_no_builtin_accelerator(path: Path) -> None:
    text = path.read_text()
    found = re.findall(r"""["'](hastily|baseline-cim|a40-[a-z-]+|a100-[a-z0-9-]+)["']""", text)
    assert not found, f"{path.name} names built-in accelerators: {found}"
    if "kernels" in path.parts:
        return  # the kernels' own function is called lut_exp
    for switch in ("lut_exp", "multicore_softmax", "fine_grained_pipeline"):
        assert f'"{switch}"' not in text, f"{path.name} names the CIM plugin's parameter {switch}"


def test_default_baseline_comes_from_plugin_metadata(host) -> None:
    from hastily_bench.api import default_baseline

    assert default_baseline(host, ["hastily", "a40-tensorrt", "a40-hf-bnb"]) == "a40-hf-bnb"
    assert default_baseline(host, ["hastily", "a40-tensorrt"]) is None
    assert host.accelerator("hastily").spec.ablation[-1][1] == {}


def test_renaming_ops_changes_no_number(host) -> None:
    """Before the typed contract, renaming ``qkv_proj`` changed CIM latency by 7%."""
    g = build_graph(host.workload("bert-base"), 1024, 1)
    names = [op.name for op in g.layer_ops]
    renamed = dataclasses.replace(g, layer_ops=tuple(
        dataclasses.replace(op, name=f"op{i}", deps=tuple(
            dataclasses.replace(d, op=f"op{names.index(d.op)}") for d in op.deps))
        for i, op in enumerate(g.layer_ops)))
    for name in ("hastily", "baseline-cim", "a40-tensorrt", "a40-hf-bnb"):
        reg, params = configured_accelerator(host, name)
        a, b = estimate_point(reg, params, g), estimate_point(reg, params, renamed)
        assert a.ok and b.ok
        assert (a.latency_s, a.energy_j, a.memory_bytes) == (b.latency_s, b.energy_j, b.memory_bytes), name


# -- every preset parameter at its bounds: a result, a clean refusal, or unsupported --------


def _bound_values(p: Param) -> list[int | float]:
    """The parameter's own limits, or (where it has none) zero, a negative value and a huge one."""
    v = p.value
    out: list[float] = [b for b in (p.minimum, p.maximum) if b is not None]
    if p.minimum is None:
        out += [0, -1]
    if p.maximum is None:
        out.append(1e30)
    if isinstance(v, int):
        return sorted({int(min(max(x, -(2**62)), 2**62)) for x in out})
    return sorted({float(x) for x in out})


def test_every_preset_parameter_at_its_bounds_gives_no_error_row(host) -> None:  # type: ignore[no-untyped-def]
    """A value the parameter accepts must never make the model fail (an ``error`` row): a
    paper area of 0 once divided by zero, a GPU memory of 1e30 GiB overflowed the row's
    integer. Values the parameter or check_params refuse are the user's one-line error."""
    from hastily_bench.errors import UsageError

    g = build_graph(host.workload("bert-base"), 512, 1)
    checked = 0
    failures = []
    for reg in host.accelerators():
        base = reg.spec.params
        for p in base.values():
            if isinstance(p.value, bool) or not isinstance(p.value, (int, float)):
                continue
            for x in _bound_values(p):
                try:
                    q = base.override(p.name, x)
                    if reg.spec.check_params is not None:
                        reg.spec.check_params(q)
                except UsageError:
                    continue
                checked += 1
                r = estimate_point(reg, q, g)
                if r.status == "error":
                    failures.append(f"{reg.spec.name} {p.name}={x!r}: {r.error}")
    assert checked > 500
    assert not failures, "\n".join(failures[:10])
