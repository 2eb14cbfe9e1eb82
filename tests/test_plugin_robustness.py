"""Broken plugins are named, reported and skipped; they never take the tool down or print numbers."""

from __future__ import annotations

import json
import math
import re
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest

from hastily_bench import host as host_module
from hastily_bench.api import (
    AcceleratorSpec,
    Arithmetic,
    Estimate,
    OpCost,
    OpGraph,
    ParamSet,
    Unsupported,
    configured_accelerator,
    estimate_point,
    fixed_arithmetic,
    hookimpl,
)
from hastily_bench.cli import main
from hastily_bench.errors import PluginError, UsageError
from hastily_bench.host import DISABLE_AUTOLOAD_ENV, ENTRY_POINT_GROUP, PluginHost
from hastily_bench.params import Param
from hastily_bench.testing import make_host, tiny_graph

EstimateImpl = Callable[[OpGraph, ParamSet], Estimate]


def good_estimate(graph: OpGraph, params: ParamSet) -> Estimate:
    return Estimate.from_breakdown(
        [OpCost("all", graph.ops / 1e13, graph.ops * 1e-12, "matmul")], memory_bytes=graph.tokens
    )


def accel_plugin(
    name: str = "toy",
    estimate: EstimateImpl = good_estimate,
    *,
    module: str = "toy_plugin",
    arithmetic: Any = None,
) -> types.ModuleType:
    """A plugin module registering one accelerator ``name`` with ``estimate``."""
    mod = types.ModuleType(module)
    spec = AcceleratorSpec(
        name=name,
        description="test accelerator",
        params=ParamSet([Param("clock_hz", 1e9, unit="Hz", source="assumed")]),
        estimate=estimate,
        arithmetic=arithmetic or fixed_arithmetic(Arithmetic()),
    )

    @hookimpl
    def hastily_register_accelerators(register: Callable[[AcceleratorSpec], None]) -> None:
        register(spec)

    mod.hastily_register_accelerators = hastily_register_accelerators  # type: ignore[attr-defined]
    return mod


# -- fake entry points --------------------------------------------------------------------


@dataclass
class FakeDist:
    name: str
    version: str


@dataclass
class FakeEntryPoint:
    """What PluginHost uses of importlib.metadata.EntryPoint: name, dist, load()."""

    name: str
    dist: FakeDist
    target: Any = None
    error: BaseException | None = None
    loads: int = 0

    def load(self) -> Any:
        self.loads += 1
        if self.error is not None:
            raise self.error
        return self.target


@pytest.fixture()
def entry_points(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[FakeEntryPoint]]:
    """The list of entry points the host will see in the ``hastily_bench`` group."""
    fakes: list[FakeEntryPoint] = []
    real = host_module.metadata.entry_points

    def fake(**kw: Any) -> Any:
        if kw.get("group") == ENTRY_POINT_GROUP:
            return list(fakes)
        return real(**kw)

    monkeypatch.setattr(host_module.metadata, "entry_points", fake)
    monkeypatch.delenv(DISABLE_AUTOLOAD_ENV, raising=False)
    yield fakes


def cli(*args: str) -> int:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    assert isinstance(info.value.code, int)
    return info.value.code


def info_of(host: PluginHost, name: str) -> host_module.PluginInfo:
    return next(i for i in host.plugins() if i.name == name)


# -- loading ---------------------------------------------------------------------------


def test_import_error_is_reported_with_distribution_and_skipped(
    entry_points: list[FakeEntryPoint],
) -> None:
    entry_points.append(
        FakeEntryPoint(
            "broken",
            FakeDist("broken-dist", "1.2.3"),
            error=ImportError("No module named 'numpyy'"),
        )
    )
    entry_points.append(FakeEntryPoint("fine", FakeDist("fine-dist", "0.1"), target=accel_plugin()))
    host = PluginHost()
    broken = info_of(host, "broken")
    assert (broken.status, broken.distribution, broken.version) == (
        "failed",
        "broken-dist",
        "1.2.3",
    )
    assert broken.error == "failed to load: ImportError: No module named 'numpyy'"
    assert broken.label == "plugin 'broken' (broken-dist 1.2.3)"
    assert info_of(host, "fine").status == "loaded"
    assert {"toy", "a40-tensorrt"} <= {a.name for a in host.accelerators()}


def test_import_error_is_fatal_when_strict(entry_points: list[FakeEntryPoint]) -> None:
    entry_points.append(
        FakeEntryPoint("broken", FakeDist("broken-dist", "1.2.3"), error=ImportError("boom"))
    )
    with pytest.raises(
        PluginError,
        match=r"plugin 'broken' \(broken-dist 1\.2\.3\) failed to load: "
        r"ImportError: boom; fix or uninstall it, or drop --strict-plugins",
    ):
        PluginHost(strict=True)


def test_cli_lists_failed_plugin_and_strict_flag_makes_it_exit_2(
    entry_points: list[FakeEntryPoint], capsys: pytest.CaptureFixture[str]
) -> None:
    entry_points.append(
        FakeEntryPoint(
            "broken", FakeDist("broken-dist", "1.2.3"), error=SyntaxError("invalid syntax")
        )
    )
    assert cli("plugins", "--format", "json") == 0
    rows = {p["name"]: p for p in json.loads(capsys.readouterr().out)}
    assert rows["broken"]["status"] == "failed" and rows["broken"]["distribution"] == "broken-dist"
    assert rows["gpu"]["status"] == "loaded"
    # the run still works without the broken plugin ...
    assert (
        cli(
            "run", "bert-base", "-a", "a40-tensorrt", "-l", "128", "--numerics", "off", "-f", "json"
        )
        == 0
    )
    capsys.readouterr()
    # ... and --strict-plugins turns it into one line on stderr, exit 2
    assert cli("--strict-plugins", "accelerators") == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "hastily-bench: plugin error: plugin 'broken' (broken-dist 1.2.3) failed to load"
    )
    assert err.count("\n") == 1


def test_autoload_disabled_by_environment(
    entry_points: list[FakeEntryPoint], monkeypatch: pytest.MonkeyPatch
) -> None:
    ep = FakeEntryPoint("toy", FakeDist("toy-dist", "1.0"), target=accel_plugin())
    entry_points.append(ep)
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "1")
    host = PluginHost()
    assert ep.loads == 0
    toy = info_of(host, "toy")
    assert toy.status == "disabled" and DISABLE_AUTOLOAD_ENV in toy.error
    assert "toy" not in [a.name for a in host.accelerators()]
    monkeypatch.delenv(DISABLE_AUTOLOAD_ENV)
    assert "toy" in [a.name for a in PluginHost().accelerators()] and ep.loads == 1


# -- hook contract -----------------------------------------------------------------------


def test_hook_with_wrong_argument_name_fails_named(entry_points: list[FakeEntryPoint]) -> None:
    mod = types.ModuleType("typo_args")

    @hookimpl
    def hastily_register_accelerators(registr: Any) -> None:
        raise AssertionError("must never be called")

    mod.hastily_register_accelerators = hastily_register_accelerators  # type: ignore[attr-defined]
    entry_points.append(FakeEntryPoint("typo", FakeDist("typo-dist", "0.0.1"), target=mod))
    info = info_of(PluginHost(), "typo")
    assert info.status == "failed" and info.distribution == "typo-dist"
    assert info.error.startswith("has an invalid hook:") and "registr" in info.error
    with pytest.raises(
        PluginError, match=r"plugin 'typo' \(typo-dist 0\.0\.1\) has an invalid hook"
    ):
        PluginHost(strict=True)


def test_misspelt_hook_name_fails_named() -> None:
    mod = types.ModuleType("misspelt")

    @hookimpl
    def hastily_register_acclerators(register: Any) -> None:
        raise AssertionError("must never be called")

    mod.hastily_register_acclerators = hastily_register_acclerators  # type: ignore[attr-defined]
    host = make_host(mod, strict=False)
    info = info_of(host, "misspelt")
    assert info.status == "failed" and "hastily_register_acclerators" in info.error
    with pytest.raises(PluginError, match="hastily_register_acclerators"):
        make_host(mod)


def test_hook_that_raises_fails_the_plugin_not_the_host() -> None:
    mod = types.ModuleType("raiser")

    @hookimpl
    def hastily_register_accelerators(register: Any) -> None:
        raise RuntimeError("preset file missing")

    mod.hastily_register_accelerators = hastily_register_accelerators  # type: ignore[attr-defined]
    host = make_host(mod, accel_plugin(), strict=False)
    info = info_of(host, "raiser")
    assert info.status == "failed"
    assert (
        info.error == "raised in hastily_register_accelerators: RuntimeError: preset file missing"
    )
    assert [a.name for a in host.accelerators()] == ["toy"]


def test_registering_something_else_is_a_plugin_error() -> None:
    mod = types.ModuleType("wrongtype")

    @hookimpl
    def hastily_register_accelerators(register: Any) -> None:
        register({"name": "dict-accel"})

    mod.hastily_register_accelerators = hastily_register_accelerators  # type: ignore[attr-defined]
    with pytest.raises(PluginError, match="registered .*'dict-accel'.*, not an AcceleratorSpec"):
        make_host(mod)


@pytest.mark.parametrize("name", ["toy|v2", "toy `x`", "", "toy\nv2", " toy"])
def test_accelerator_names_that_break_tables_or_results_files_are_refused(name: str) -> None:
    """A name lands in tables, Markdown and results files read back later: one the reader
    would refuse is refused when the plugin registers it."""
    with pytest.raises(PluginError, match="accelerator name"):
        make_host(accel_plugin(name))


def test_ablation_labels_follow_the_name_rule() -> None:
    mod = accel_plugin("toy")
    spec = replace(mod.hastily_register_accelerators.__closure__[0].cell_contents,  # type: ignore[attr-defined]
                   ablation=(("ok step", {}), ("bad|step", {})))

    @hookimpl
    def hastily_register_accelerators(register: Callable[[AcceleratorSpec], None]) -> None:
        register(spec)

    mod.hastily_register_accelerators = hastily_register_accelerators  # type: ignore[attr-defined]
    with pytest.raises(PluginError, match=re.escape("ablation step name 'bad|step' contains '|'")):
        make_host(mod)


def test_duplicate_accelerator_names_name_both_plugins() -> None:
    first, second = (
        accel_plugin("twin", module="first_mod"),
        accel_plugin("twin", module="second_mod"),
    )
    with pytest.raises(
        PluginError,
        match=r"accelerator 'twin' is claimed by two plugins: "
        r"plugin 'first_mod' .* and plugin 'second_mod'",
    ):
        make_host(first, second)


def test_duplicate_of_a_builtin_from_an_entry_point_is_exit_2(
    entry_points: list[FakeEntryPoint], capsys: pytest.CaptureFixture[str]
) -> None:
    entry_points.append(
        FakeEntryPoint("dup", FakeDist("dup-dist", "2.0"), target=accel_plugin("a40-tensorrt"))
    )
    assert cli("accelerators") == 2
    err = capsys.readouterr().err
    assert (
        "accelerator 'a40-tensorrt' is claimed by two plugins: plugin 'gpu' (hastily-bench" in err
    )
    assert "plugin 'dup' (dup-dist 2.0)" in err and err.count("\n") == 1


# -- estimates ---------------------------------------------------------------------------


def raising(graph: OpGraph, params: ParamSet) -> Estimate:
    raise ZeroDivisionError("float division by zero")


def returning(latency: float, energy: float = 1e-3, memory: int = 1) -> EstimateImpl:
    def estimate(graph: OpGraph, params: ParamSet) -> Estimate:
        return Estimate(latency, energy, memory, (OpCost("all", latency, energy, "matmul"),))

    return estimate


def point(plugin: types.ModuleType, name: str = "toy") -> Any:
    host = make_host(plugin)
    reg, params = configured_accelerator(host, name)
    return estimate_point(reg, params, tiny_graph(), numerics="off")


def test_raising_estimate_gives_error_result_naming_plugin() -> None:
    r = point(accel_plugin(estimate=raising))
    assert r.status == "error"
    assert r.error == (
        "plugin 'toy_plugin' (<in-process> ) raised ZeroDivisionError: float division by zero"
    )
    assert r.latency_s is None and r.tops is None


@pytest.mark.parametrize(
    ("estimate", "message"),
    [
        (returning(math.nan), "latency_s is nan"),
        (returning(math.inf), "latency_s is inf"),
        (returning(-1e-3), "breakdown['all'].latency_s is -0.001, must be >= 0"),
        (returning(0.0), "latency_s is 0.0, must be > 0"),
        (returning(1e-3, energy=-1.0), "energy_j is -1.0, must be >= 0"),
        (returning(1e-3, energy=math.nan), "energy_j is nan"),
        (returning(1e-3, memory=-5), "memory_bytes is -5, must be an integer >= 0"),
        (returning(1e-3, memory=1.5), "memory_bytes is 1.5"),  # type: ignore[arg-type]
        (lambda g, p: {"latency_s": 1.0}, "returned dict, not an Estimate"),
        (
            lambda g, p: Estimate(1.0, 1.0, 1, (OpCost("a", 0.5, 1.0, "matmul"),)),
            "breakdown latencies sum to 0.5",
        ),
    ],
)
def test_impossible_numbers_give_error_result_naming_plugin(
    estimate: EstimateImpl, message: str
) -> None:
    r = point(accel_plugin(estimate=estimate))
    assert r.status == "error"
    assert r.error.startswith("plugin 'toy_plugin' (<in-process> ): ")
    assert message in r.error
    assert (r.latency_s, r.energy_j, r.tops, r.tops_per_w, r.memory_bytes) == (None,) * 5


def test_bad_arithmetic_gives_error_result() -> None:
    r = point(accel_plugin(arithmetic=lambda params: "int8"))
    assert r.status == "error" and "arithmetic() returned 'int8', not an Arithmetic" in r.error


def test_unsupported_is_not_an_error() -> None:
    def refuse(graph: OpGraph, params: ParamSet) -> Estimate:
        raise Unsupported("needs seq_len >= 4096")

    r = point(accel_plugin(estimate=refuse))
    assert (r.status, r.error) == ("unsupported", "needs seq_len >= 4096")


def test_cli_run_with_raising_and_nan_plugins_exits_3_and_prints_no_numbers(
    entry_points: list[FakeEntryPoint], capsys: pytest.CaptureFixture[str]
) -> None:
    entry_points.append(
        FakeEntryPoint(
            "raiser",
            FakeDist("raiser-dist", "0.3"),
            target=accel_plugin("raiser-accel", raising, module="m1"),
        )
    )
    entry_points.append(
        FakeEntryPoint(
            "nanny",
            FakeDist("nanny-dist", "0.4"),
            target=accel_plugin("nan-accel", returning(math.nan), module="m2"),
        )
    )
    args = [
        "run",
        "bert-base",
        "-a",
        "raiser-accel",
        "-a",
        "nan-accel",
        "-a",
        "a40-tensorrt",
        "-l",
        "128",
        "--numerics",
        "off",
    ]
    assert cli(*args, "-f", "json") == 3
    captured = capsys.readouterr()
    results = {r["accelerator"]: r for r in json.loads(captured.out)["results"]}
    assert results["a40-tensorrt"]["status"] == "ok"
    for name, label in (
        ("raiser-accel", "plugin 'raiser' (raiser-dist 0.3)"),
        ("nan-accel", "plugin 'nanny' (nanny-dist 0.4)"),
    ):
        assert results[name]["status"] == "error" and results[name]["error"].startswith(label)
        assert results[name]["latency_s"] is None and results[name]["tops"] is None
        assert f"hastily-bench: error: {name} on bert-base l=128 b=1: {label}" in captured.err
    # the table shows the error instead of numbers
    assert cli(*args, "-f", "markdown") == 3
    md = capsys.readouterr().out
    nan_row = next(line for line in md.splitlines() if "`nan-accel`" in line)
    assert "nan" not in nan_row.replace("nan-accel", "").replace("nanny", "").split("error:")[0]
    assert "error: plugin 'nanny' (nanny-dist 0.4): breakdown['all'].latency_s is nan" in nan_row


# -- faults stay in their row (issue: the op graph as a typed contract) -------------------


def test_system_exit_in_estimate_is_an_error_row_not_a_silent_exit(
    entry_points: list[FakeEntryPoint], capsys: pytest.CaptureFixture[str]
) -> None:
    def exits(graph: OpGraph, params: ParamSet) -> Estimate:
        raise SystemExit(0)

    entry_points.append(FakeEntryPoint("quitter", FakeDist("quitter-dist", "1.0"),
                                       target=accel_plugin("quitter", exits, module="mq")))
    code = cli("run", "bert-base", "-a", "quitter", "-a", "a40-tensorrt", "-l", "128",
               "--numerics", "off", "-f", "json")
    out = capsys.readouterr()
    assert code == 3
    rows = {r["accelerator"]: r for r in json.loads(out.out)["results"]}
    assert rows["a40-tensorrt"]["status"] == "ok"
    assert rows["quitter"]["status"] == "error"
    assert rows["quitter"]["error"] == "plugin 'quitter' (quitter-dist 1.0) raised SystemExit: 0"


def _with_extra(extra: dict[Any, Any]) -> EstimateImpl:
    def estimate(graph: OpGraph, params: ParamSet) -> Estimate:
        return replace(good_estimate(graph, params), extra=extra)
    return estimate


@pytest.mark.parametrize(("extra", "message"), [
    ({("a", 1): 1.0}, "extra has the key ('a', 1): keys must be strings"),
    ({"n": 10**150}, "extra['n'] is an integer beyond +-(2^63 - 1)"),
    ({"n": -(10**5000)}, "extra['n'] is an integer beyond +-(2^63 - 1)"),
])
def test_extra_that_no_row_can_hold_is_the_plugins_error(extra: dict[Any, Any], message: str) -> None:
    """A key JSON cannot write, or an integer the readers refuse (or Python cannot print),
    is the plugin's error in its row: it once failed the whole sweep or run when printed."""
    r = point(accel_plugin(estimate=_with_extra(extra)))
    assert r.status == "error" and message in (r.error or ""), r.error
    assert r.json_line()  # the row prints


def test_an_exception_that_cannot_print_itself_is_still_an_error_row() -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise ValueError("no")

    def estimate(graph: OpGraph, params: ParamSet) -> Estimate:
        raise Unprintable()

    r = point(accel_plugin(estimate=estimate))
    assert r.status == "error" and "raised Unprintable: <Unprintable whose str() fails>" in (r.error or "")


def test_sigterm_inside_a_plugin_stops_the_run_and_is_no_error_row() -> None:
    """SIGTERM becomes Terminated (a SystemExit, exit 143) while the command runs: a plugin
    running at that moment must not turn it into its own error row (a sweep terminated
    during its probe once carried on to exit 0)."""
    import os
    import signal

    from hastily_bench.errors import Terminated
    from hastily_bench.io import terminate_as_exit

    def estimate(graph: OpGraph, params: ParamSet) -> Estimate:
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("the signal handler raises first")

    plugin = accel_plugin(estimate=estimate)
    with terminate_as_exit(), pytest.raises(Terminated) as info:
        point(plugin)
    assert info.value.code == 143


def test_misspelt_parameter_inside_estimate_is_the_plugins_error_row() -> None:
    def misspelt(graph: OpGraph, params: ParamSet) -> Estimate:
        params.f("clock_hzz")
        raise AssertionError("unreachable")

    r = point(accel_plugin(estimate=misspelt))
    assert r.status == "error"
    assert "raised UnknownParameter: unknown parameter 'clock_hzz'" in (r.error or "")


def test_arithmetic_returning_a_string_does_not_crash_listings(
    entry_points: list[FakeEntryPoint], capsys: pytest.CaptureFixture[str]
) -> None:
    entry_points.append(FakeEntryPoint("strarith", FakeDist("s-dist", "1.0"), target=accel_plugin(
        "strarith", module="ms", arithmetic=lambda params: "int8")))
    for args in (("accelerators",), ("accelerators", "--detail", "strarith")):
        assert cli(*args) == 0
        assert "error:" in capsys.readouterr().out
    assert cli("accelerators", "-f", "json") == 0
    row = next(r for r in json.loads(capsys.readouterr().out) if r["name"] == "strarith")
    assert row["arithmetic"] == "error: arithmetic() returned 'int8', not an Arithmetic"
    assert cli("run", "bert-tiny", "-a", "strarith", "-l", "16", "--numerics", "off") == 3


def test_plugin_that_registers_then_raises_leaves_nothing_runnable() -> None:
    mod = types.ModuleType("halfway")
    good = accel_plugin("half-accel")

    @hookimpl
    def hastily_register_accelerators(register: Any) -> None:
        good.hastily_register_accelerators(register)  # type: ignore[attr-defined]
        raise RuntimeError("second preset missing")

    mod.hastily_register_accelerators = hastily_register_accelerators  # type: ignore[attr-defined]
    host = make_host(mod, strict=False)
    assert info_of(host, "halfway").status == "failed"
    assert info_of(host, "halfway").accelerators == []
    with pytest.raises(UsageError, match="unknown accelerator 'half-accel'.*"
                       "plugin 'halfway' .* failed to load: raised in "
                       "hastily_register_accelerators: RuntimeError: second preset missing"):
        host.accelerator("half-accel")


def test_registering_something_else_is_reported_and_skipped_unless_strict(
    entry_points: list[FakeEntryPoint], capsys: pytest.CaptureFixture[str]
) -> None:
    mod = types.ModuleType("wrongtype")

    @hookimpl
    def hastily_register_accelerators(register: Any) -> None:
        register({"name": "dict-accel"})

    mod.hastily_register_accelerators = hastily_register_accelerators  # type: ignore[attr-defined]
    entry_points.append(FakeEntryPoint("wrongtype", FakeDist("w-dist", "2.0"), target=mod))
    assert cli("run", "bert-base", "-a", "a40-tensorrt", "-l", "128", "--numerics", "off",
               "-f", "json") == 0
    capsys.readouterr()
    assert cli("--strict-plugins", "run", "bert-base", "-a", "a40-tensorrt") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not an AcceleratorSpec" in err and "w-dist 2.0" in err


def test_valid_workload_hook_survives_a_failing_accelerator_hook(
    entry_points: list[FakeEntryPoint], capsys: pytest.CaptureFixture[str]
) -> None:
    from hastily_bench.workload import Workload

    mod = types.ModuleType("isaac_plugin")

    @hookimpl
    def hastily_register_workloads(register: Any) -> None:
        register(Workload("isaac-net", 2, 64, 4, 128))

    @hookimpl
    def hastily_register_accelerators(register: Any) -> None:
        raise ImportError("No module named 'isaac_core'")

    mod.hastily_register_workloads = hastily_register_workloads  # type: ignore[attr-defined]
    mod.hastily_register_accelerators = hastily_register_accelerators  # type: ignore[attr-defined]
    entry_points.append(FakeEntryPoint("isaac", FakeDist("isaac-accel", "0.1.0"), target=mod))
    assert cli("run", "bert-base", "-a", "isaac") == 2
    err = capsys.readouterr().err
    assert "unknown accelerator 'isaac'" in err
    assert "plugin 'isaac' (isaac-accel 0.1.0) failed to load" in err and "isaac_core" in err
    assert cli("run", "isaac-net", "-a", "a40-tensorrt", "-l", "16", "--numerics", "off",
               "-f", "json") == 0
    capsys.readouterr()
    assert cli("plugins", "-f", "json") == 0
    rows = {p["name"]: p for p in json.loads(capsys.readouterr().out)}
    assert rows["isaac"]["workloads"] == ["isaac-net"] and rows["isaac"]["status"] == "failed"
    assert "bert-base" in rows["gpu"]["workloads"] or rows["gpu"]["accelerators"]
    assert cli("plugins") == 0
    assert "isaac-net" in capsys.readouterr().out


def test_denormal_latency_is_an_error_row_never_infinity_in_json(
    entry_points: list[FakeEntryPoint], capsys: pytest.CaptureFixture[str]
) -> None:
    entry_points.append(FakeEntryPoint("tiny", FakeDist("t-dist", "1.0"), target=accel_plugin(
        "tiny-latency", returning(5e-324), module="mt")))
    assert cli("run", "bert-base", "-a", "tiny-latency", "-l", "128", "--numerics", "off",
               "-f", "json") == 3
    text = capsys.readouterr().out
    assert "Infinity" not in text
    row = json.loads(text)["results"][0]
    assert row["status"] == "error" and "derived tops is inf" in row["error"]


def test_debug_keeps_the_plugins_traceback(
    entry_points: list[FakeEntryPoint], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HASTILY_DEBUG", raising=False)
    entry_points.append(FakeEntryPoint("raiser", FakeDist("r-dist", "0.3"),
                                       target=accel_plugin("raiser-accel", raising, module="mr")))
    args = ("run", "bert-tiny", "-a", "raiser-accel", "-l", "16", "--numerics", "off", "-f", "json")
    assert cli(*args) == 3
    assert "Traceback" not in capsys.readouterr().out
    assert cli("--debug", *args) == 3
    row = json.loads(capsys.readouterr().out)["results"][0]
    assert "Traceback (most recent call last)" in row["error"] and "def raising" not in row["error"]
    assert "ZeroDivisionError" in row["error"].splitlines()[-1]


def test_a_recursing_plugins_debug_row_is_the_same_at_any_stack_depth(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The repeat count of a RecursionError's traceback depended on how deep the worker's stack
    was (-j 1, -j 2 and Dask gave three rows): the frames are cut to a fixed number."""
    from hastily_bench import api

    def recursing(graph: OpGraph, params: ParamSet) -> Estimate:
        return recursing(graph, params)

    monkeypatch.setattr(api, "_debug", True)
    plugin = accel_plugin(estimate=recursing)

    def at(depth: int) -> str:
        return at(depth - 1) if depth else str(point(plugin).error)

    shallow, deep = at(0), at(150)
    assert shallow == deep and "RecursionError" in shallow.splitlines()[-1]
    assert "[Previous line repeated" in shallow


def test_nan_errors_name_the_op_and_field() -> None:
    def nan_op(graph: OpGraph, params: ParamSet) -> Estimate:
        return Estimate(1.0, math.nan, 1, (OpCost("ffn_up", 1.0, math.nan, "matmul"),))

    r = point(accel_plugin(estimate=nan_op))
    assert r.status == "error" and "breakdown['ffn_up'].energy_j is nan" in (r.error or "")


def test_unknown_category_and_static_energy_are_checked() -> None:
    def bad_cat(graph: OpGraph, params: ParamSet) -> Estimate:
        return Estimate.from_breakdown([OpCost("x", 1.0, 1.0, "mvm")], memory_bytes=0)

    r = point(accel_plugin(estimate=bad_cat))
    assert r.status == "error" and "category is 'mvm', not one of matmul" in (r.error or "")

    def with_static(graph: OpGraph, params: ParamSet) -> Estimate:
        return Estimate.from_breakdown([OpCost("x", 1.0, 1.0, "matmul")], memory_bytes=0,
                                       static_energy_j=0.5, area_mm2=2.0)

    r = point(accel_plugin(estimate=with_static))
    assert r.ok and r.energy_j == 1.5 and r.static_energy_j == 0.5
    assert r.area_mm2 == 2.0 and r.tops_per_mm2 == pytest.approx(r.tops / 2.0)


def test_misspelt_parameter_in_check_params_is_the_plugins_row_not_exit_2() -> None:
    import dataclasses

    from hastily_bench.api import RunRequest, run

    mod = accel_plugin("typo-accel", module="mtypo")
    spec = mod.hastily_register_accelerators  # type: ignore[attr-defined]

    class Wrapped:
        @hookimpl
        def hastily_register_accelerators(self, register: Any) -> None:
            def capture(s: AcceleratorSpec) -> None:
                register(dataclasses.replace(s, check_params=lambda p: p.f("clokc_hz")))
            spec(capture)

    host = make_host(Wrapped(), accel_plugin("fine", module="mfine"))
    doc = run(RunRequest(["bert-tiny"], ["typo-accel", "fine"], [128], numerics="off"), host=host)
    rows = {r.accelerator: r for r in doc.results}
    assert rows["fine"].ok
    assert rows["typo-accel"].status == "error"
    assert "unknown parameter 'clokc_hz'" in (rows["typo-accel"].error or "")


@pytest.mark.parametrize(("estimate", "message"), [
    (lambda g, p: Estimate(1.0, 1.0, 10**400, (OpCost("a", 1.0, 1.0, "matmul"),)), "more than 2^63"),
    (lambda g, p: Estimate(1.0, 1.0, 1, (OpCost("a", 1.0, 1.0, "matmul"),), notes="abc"),
     "notes is 'abc'"),
])
def test_results_that_could_not_be_read_back_are_errors(estimate: Any, message: str) -> None:
    r = point(accel_plugin(estimate=estimate))
    assert r.status == "error" and message in (r.error or "")
