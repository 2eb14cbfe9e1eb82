"""hastily_bench.testing (helpers for plugin authors) and the tutorial docs/plugins.md."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import math
import re
import sys
import tomllib
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hastily_bench.plugins import gpu

from hastily_bench.api import (
    AcceleratorSpec,
    Arithmetic,
    Estimate,
    OpCost,
    OpGraph,
    Param,
    ParamSet,
    Unsupported,
    build_graph,
    default_category,
    fixed_arithmetic,
    hookimpl,
)
from hastily_bench.errors import PluginError
from hastily_bench.host import BUILTIN_PLUGINS
from hastily_bench.testing import (
    check_accelerator_spec,
    check_estimate,
    make_host,
    tiny_graph,
    tiny_workload,
)

DOCS = Path(__file__).parents[1] / "docs" / "plugins.md"


def linear(graph: OpGraph, params: ParamSet) -> Estimate:
    """A well-behaved model: 1 ns per MAC-thousand, 1 pJ per MAC."""
    return Estimate.from_breakdown(
        [
            OpCost(
                op.name,
                graph.layers * (op.macs + op.elements) * 1e-12,
                graph.layers * (op.macs + op.elements) * 1e-12,
                default_category(op),
            )
            for op in graph.layer_ops
        ],
        memory_bytes=graph.tokens * graph.workload.hidden,
    )


def spec(estimate: Callable[[OpGraph, ParamSet], Any] = linear, **kw: Any) -> AcceleratorSpec:
    fields: dict[str, Any] = {
        "name": "good-accel",
        "description": "a test accelerator",
        "params": ParamSet(
            [
                Param("clock_hz", 1e9, unit="Hz", source="assumed"),
                Param("efficiency", 0.5, source="fitted"),
                Param("mode", "fast", choices=("fast", "slow")),
            ]
        ),
        "estimate": estimate,
        "arithmetic": fixed_arithmetic(Arithmetic()),
    }
    fields.update(kw)
    return AcceleratorSpec(**fields)


# -- make_host ---------------------------------------------------------------------------


def plugin_module(name: str, accel: str) -> types.ModuleType:
    mod = types.ModuleType(name)
    s = spec(name=accel)

    @hookimpl
    def hastily_register_accelerators(register: Callable[[AcceleratorSpec], None]) -> None:
        register(s)

    mod.hastily_register_accelerators = hastily_register_accelerators  # type: ignore[attr-defined]
    return mod


def test_make_host_has_only_the_given_plugins() -> None:
    host = make_host(plugin_module("one", "one-accel"), plugin_module("two", "two-accel"))
    assert [a.name for a in host.accelerators()] == ["one-accel", "two-accel"]
    assert [(p.name, p.status, p.builtin) for p in host.plugins()] == [
        ("one", "loaded", False),
        ("two", "loaded", False),
    ]
    assert "bert-base" in host.workload_names()


def test_make_host_builtins_and_unique_names() -> None:
    class Obj:
        @hookimpl
        def hastily_register_accelerators(
            self, register: Callable[[AcceleratorSpec], None]
        ) -> None:
            register(spec(name="obj-accel"))

    class Other:
        @hookimpl
        def hastily_register_accelerators(
            self, register: Callable[[AcceleratorSpec], None]
        ) -> None:
            register(spec(name="other-accel"))

    Other.__name__ = "Obj"  # a clash of names must not be a clash of plugins
    host = make_host(Obj(), Other(), builtins=True)
    assert [p.name for p in host.plugins()] == [*sorted(BUILTIN_PLUGINS), "Obj", "Obj-2"]
    assert {"obj-accel", "other-accel", "a40-tensorrt"} <= {a.name for a in host.accelerators()}
    with pytest.raises(ValueError, match="passed twice"):
        make_host(gpu, gpu)


def test_make_host_autoload_off_ignores_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    import hastily_bench.host as host_module

    calls: list[object] = []
    monkeypatch.setattr(host_module.metadata, "entry_points", lambda **kw: calls.append(kw) or [])
    make_host()
    assert calls == [{"group": "hastily_bench"}]  # only listed (as disabled), never loaded
    make_host(autoload=True)
    assert calls[-1] == {"group": "hastily_bench"} and len(calls) == 2


def test_make_host_strict_by_default() -> None:
    broken = types.ModuleType("broken")

    @hookimpl
    def hastily_register_acelerators(register: Any) -> None:
        raise AssertionError("never called")

    broken.hastily_register_acelerators = hastily_register_acelerators  # type: ignore[attr-defined]
    with pytest.raises(PluginError, match="hastily_register_acelerators"):
        make_host(broken)
    assert [p.status for p in make_host(broken, strict=False).plugins()] == ["failed"]


# -- tiny workload -------------------------------------------------------------------------


def test_tiny_graph() -> None:
    w = tiny_workload()
    assert (w.name, w.layers, w.hidden, w.heads, w.ffn, w.precision) == (
        "tiny",
        2,
        64,
        4,
        256,
        "int8",
    )
    g = tiny_graph()
    assert (g.seq_len, g.batch, g.tokens) == (16, 1, 16)
    assert g.op("qkv_proj").macs == 16 * 64 * 192
    assert tiny_graph(32, 2).op("attn_scores").instances == 8
    assert g == build_graph(w, 16, 1)


# -- check_estimate ------------------------------------------------------------------------


def test_check_estimate_accepts_good_models_and_returns_the_estimate() -> None:
    est = check_estimate(spec())
    assert est == linear(tiny_graph(), spec().params)
    for reg in make_host(gpu).accelerators()[:6]:
        check_estimate(reg.spec, build_graph(make_host(gpu).workload("bert-base"), 128))


def scaled(
    factor_latency: float = 1.0, factor_energy: float = 1.0
) -> Callable[[OpGraph, ParamSet], Estimate]:
    def estimate(graph: OpGraph, params: ParamSet) -> Estimate:
        e = linear(graph, params)
        return Estimate.from_breakdown(
            [
                OpCost(c.op, c.latency_s * factor_latency, c.energy_j * factor_energy, c.category)
                for c in e.breakdown
            ],
            memory_bytes=e.memory_bytes,
        )

    return estimate


def single(
    latency: float, energy: float = 1e-6, memory: Any = 0, breakdown: Any = None
) -> Callable[..., Estimate]:
    def estimate(graph: OpGraph, params: ParamSet) -> Estimate:
        bd = breakdown if breakdown is not None else (OpCost("all", latency, energy, "matmul"),)
        return Estimate(latency, energy, memory, bd)

    return estimate


def shrinking(graph: OpGraph, params: ParamSet) -> Estimate:
    t = 1.0 / graph.seq_len
    return Estimate(t, 0.0, 0, (OpCost("all", t, 0.0, "matmul"),))


@pytest.mark.parametrize(
    ("estimate", "message"),
    [
        (scaled(1e18), r"latency_s = .* is outside 1e-12\.\.1e\+06 s \(seconds, not cycles"),
        (scaled(1e-9), r"is outside 1e-12"),
        (scaled(1.0, 1e15), r"energy_j = .* is over 1e\+06 J \(joules, not pJ\?\)"),
        (single(math.nan), r"latency_s is nan, must be finite and >= 0"),
        (single(1e-3, -1e-6), r"energy_j is -1e-06, must be finite"),
        (single(1e-3, math.inf), r"energy_j is inf"),
        (single(1e-3, memory=1.0), r"memory_bytes is 1\.0, must be an int"),
        (single(1e-3, memory=True), r"memory_bytes is True, must be an int"),
        (single(1e-3, memory=-1), r"memory_bytes is -1, must be >= 0"),
        (single(1e-3, breakdown=()), r"breakdown is empty"),
        (single(1e-3, breakdown=(("all", 1e-3, 1e-6),)), r"breakdown\[0\] is .*, not an OpCost"),
        (single(1e-3, breakdown=(OpCost("", 1e-3, 1e-6, "matmul"),)), r"breakdown\[0\] has no op name"),
        (single(1e-3, breakdown=(OpCost("a", 5e-4, 1e-6, "matmul"),)), r"breakdown latencies sum to 0\.0005"),
        (
            single(1e-3, breakdown=(OpCost("a", 1e-3, math.nan, "matmul"),)),
            r"breakdown\['a'\]\.energy_j is nan",
        ),
        (lambda g, p: (1e-3, 1e-6), r"estimate returned tuple, not an Estimate"),
        (shrinking, r"latency falls as the sequence grows: 0\.0625 s at l=16, 0\.03125 s at l=32"),
    ],
)
def test_check_estimate_catches(estimate: Callable[..., Any], message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        check_estimate(spec(estimate))


def test_check_estimate_lists_every_problem() -> None:
    with pytest.raises(AssertionError) as info:
        check_estimate(spec(single(math.nan, -1.0, memory=-2)))
    text = str(info.value)
    assert text.startswith("good-accel: estimate for tiny l=16 b=1:\n  - ")
    assert text.count("\n  - ") == 5
    assert "energy_j is -1.0" in text and "memory_bytes is -2, must be >= 0" in text
    assert "breakdown['all'].latency_s is nan" in text


def test_check_estimate_sweep_details() -> None:
    seen: list[int] = []

    def capped(graph: OpGraph, params: ParamSet) -> Estimate:
        seen.append(graph.seq_len)
        if graph.seq_len > 32:
            raise Unsupported("too long")
        return linear(graph, params)

    check_estimate(spec(capped))
    # the sweep stops at the first unsupported point; then the five op-level graphs at l=16
    assert seen == [16, 32, 64, 16, 16, 16, 1, 16]

    def broken_at_long(graph: OpGraph, params: ParamSet) -> Estimate:
        return single(math.nan)(graph, params) if graph.seq_len >= 64 else linear(graph, params)

    with pytest.raises(AssertionError, match="l=64: latency_s is nan"):
        check_estimate(spec(broken_at_long))

    def refuse(graph: OpGraph, params: ParamSet) -> Estimate:
        raise Unsupported("never")

    with pytest.raises(Unsupported):
        check_estimate(spec(refuse))


def test_check_estimate_uses_given_graph_and_params() -> None:
    seen: list[tuple[int, int, str]] = []

    def spy(graph: OpGraph, params: ParamSet) -> Estimate:
        seen.append((graph.seq_len, graph.batch, params.s("mode")))
        return linear(graph, params)

    s = spec(spy)
    check_estimate(s, tiny_graph(8, 3), s.params.override("mode", "slow"))
    assert seen[:4] == [(8, 3, "slow"), (16, 3, "slow"), (32, 3, "slow"), (64, 3, "slow")]
    # then the op-level graphs at the given point (the single-vector mvm at l = 1, b = 1)
    assert seen[4:] == [(8, 3, "slow")] * 3 + [(1, 1, "slow"), (8, 3, "slow")]


# -- check_accelerator_spec -------------------------------------------------------------------


def test_check_accelerator_spec_accepts_builtins() -> None:
    check_accelerator_spec(spec())
    for reg in make_host(gpu).accelerators():
        check_accelerator_spec(reg.spec)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": "Good_Accel"}, r"name 'Good_Accel' must be lowercase words joined by dashes"),
        ({"name": "-x"}, r"name '-x'"),
        ({"description": ""}, r"description must be one non-empty line"),
        ({"description": "two\nlines"}, r"description must be one non-empty line"),
        ({"default": "yes"}, r"default is 'yes', must be a bool"),
        ({"estimate": None}, r"estimate is not callable"),
        ({"params": {"clock_hz": 1}}, r"params is dict, not a ParamSet"),
        (
            {"params": ParamSet([Param("latency_s", 1e-9)])},
            r"'latency_s': its name promises a unit",
        ),
        (
            {"params": ParamSet([Param("ClockHz", 1e9, unit="Hz")])},
            r"'ClockHz': name must be lower_snake_case",
        ),
        (
            {"arithmetic": lambda p: "int8"},
            r"arithmetic\(params\) returned 'int8', not an Arithmetic",
        ),
        ({"arithmetic": lambda p: p.s("missing")}, r"arithmetic\(params\) raised UnknownParameter"),
    ],
)
def test_check_accelerator_spec_catches(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        check_accelerator_spec(dataclasses.replace(spec(), **changes))


def test_check_accelerator_spec_rejects_other_objects_and_bad_values() -> None:
    with pytest.raises(AssertionError, match="is not an AcceleratorSpec"):
        check_accelerator_spec("good-accel")  # type: ignore[arg-type]
    p = Param("ratio", 0.5, minimum=0.0, maximum=1.0)
    object.__setattr__(p, "value", 2.0)  # a value its own bounds reject
    with pytest.raises(AssertionError, match=r"'ratio': default value rejected .*above 1\.0"):
        check_accelerator_spec(dataclasses.replace(spec(), params=ParamSet([p])))


# -- docs/plugins.md: every snippet runs ----------------------------------------------------------

FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.DOTALL | re.MULTILINE)
PATH_COMMENT = re.compile(r"^# ([\w./-]+\.(?:py|toml))\n")


@pytest.fixture()
def clean_toy_modules() -> Iterator[None]:
    yield
    for name in [
        m for m in sys.modules if m == "toy_accel" or m.startswith(("toy_accel.", "test_toy"))
    ]:
        del sys.modules[name]


def test_plugins_tutorial_snippets_run(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    clean_toy_modules: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    blocks = FENCE.findall(DOCS.read_text(encoding="utf-8"))
    assert len(blocks) >= 12
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    session: dict[str, Any] = {"__name__": "__tutorial__"}
    files: list[Path] = []
    ran = 0
    for lang, body in blocks:
        m = PATH_COMMENT.match(body)
        if lang == "toml":
            tomllib.loads(body)
        if m and lang in ("python", "toml"):
            path = tmp_path / m[1]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(body, encoding="utf-8")
            files.append(path)
            importlib.invalidate_caches()
        elif lang == "python":
            exec(compile(body, f"{DOCS.name}:block{ran}", "exec"), session)  # noqa: S102
            ran += 1
    assert ran >= 5 and {p.name for p in files} >= {
        "model.py",
        "plugin.py",
        "toy.toml",
        "test_toy.py",
    }
    out = capsys.readouterr().out
    assert "accelerator 'toy-roofline' is claimed by two plugins" in out
    assert "(joules, not pJ?)" in out
    # the tutorial's test file, run as pytest would
    test_file = tmp_path / "tests" / "test_toy.py"
    mod_spec = importlib.util.spec_from_file_location("test_toy", test_file)
    assert mod_spec is not None and mod_spec.loader is not None
    module = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(module)
    tests = [getattr(module, n) for n in dir(module) if n.startswith("test_")]
    assert len(tests) == 4
    for test in tests:
        test()
    # what the tutorial says the pyproject declares is what the example package declares
    pyproject = tomllib.loads((tmp_path / "pyproject.toml").read_text())
    assert pyproject["project"]["entry-points"]["hastily_bench"] == {"toy": "toy_accel.plugin"}


def test_check_estimate_tries_op_level_graphs() -> None:
    """A model that divides by its weight products passes on full graphs, not on op graphs."""

    def per_weight_matmul(graph: OpGraph, params: ParamSet) -> Estimate:
        weights = [op for op in graph.layer_ops if getattr(op, "weight_stationary", False)]
        share = 1.0 / len(weights)  # ZeroDivisionError on a softmax-only graph
        return Estimate.from_breakdown(
            [OpCost(op.name, share * 1e-3, 1e-6, default_category(op)) for op in graph.layer_ops],
            memory_bytes=0)

    with pytest.raises(AssertionError, match=r"op softmax: raised ZeroDivisionError"):
        check_estimate(spec(per_weight_matmul))
