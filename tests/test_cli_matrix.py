"""Every subcommand x every --format it lists x (stdout, -o file), with a failing accelerator.

The exit status must not depend on the format or the destination (issue 12, cases 9 and 10):
a command that hides error rows in one format but not another misleads a CI gate.
"""

from __future__ import annotations

import json
import re
import types
import typing
from collections.abc import Callable
from enum import Enum
from pathlib import Path

import pytest

from hastily_bench import cli as cli_module
from hastily_bench.accelerator import AcceleratorSpec, Arithmetic, Estimate, fixed_arithmetic
from hastily_bench.api import RunRequest, run
from hastily_bench.hookspecs import hookimpl
from hastily_bench.host import PluginHost
from hastily_bench.params import Param, ParamSet

FAILING = "failing-accel"


def _failing_plugin() -> types.ModuleType:
    """An in-process plugin whose one accelerator raises in every estimate."""
    mod = types.ModuleType("failing_plugin")

    def estimate(graph: object, params: ParamSet) -> Estimate:
        raise RuntimeError("model exploded")

    spec = AcceleratorSpec(
        name=FAILING, description="always fails",
        params=ParamSet([Param("clock_hz", 1e9, unit="Hz", source="assumed")]),
        estimate=estimate, arithmetic=fixed_arithmetic(Arithmetic()),
    )

    @hookimpl
    def hastily_register_accelerators(register: Callable[[AcceleratorSpec], None]) -> None:
        register(spec)

    mod.hastily_register_accelerators = hastily_register_accelerators  # type: ignore[attr-defined]
    return mod


@pytest.fixture
def failing_cli(cli, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The in-process CLI with the built-ins plus the failing accelerator."""
    plugin = _failing_plugin()

    def host(*, strict: bool = False) -> PluginHost:
        return PluginHost(autoload=False, strict=strict, extra_plugins=[("failing_plugin", plugin)])

    monkeypatch.setattr(cli_module, "PluginHost", host)
    return cli


def _formats(command: str) -> list[str]:
    """The formats a command's --help lists (what it must support, nothing more)."""
    hints = typing.get_type_hints(getattr(cli_module, command), include_extras=True)
    base = typing.get_args(hints["fmt"])[0]  # Annotated[X, ...] -> X
    enum = next(a for a in (typing.get_args(base) or (base,))
                if isinstance(a, type) and issubclass(a, Enum))
    return [m.value for m in enum]


def _matrix(cli, tmp_path: Path, command: str, args: list[str], *, output_flag: str | None = "-o",
            extra: Callable[[str], list[str]] = lambda fmt: []) -> set[int]:  # type: ignore[no-untyped-def]
    codes: dict[tuple[str, str], int] = {}
    for fmt in _formats(command):
        destinations = ["stdout"] + (["file"] if output_flag else [])
        for dest in destinations:
            out = tmp_path / f"{command}-{fmt}.out"
            argv = [command, *args, "--format", fmt, *extra(fmt)]
            if dest == "file":
                argv += [output_flag, str(out)]  # type: ignore[list-item]
            r = cli(*argv)
            codes[fmt, dest] = r.code
            assert "Traceback" not in r.err, (argv, r)
            if dest == "file" and r.code in (0, 1, 3):
                assert out.is_file() and out.stat().st_size > 0, (argv, r)
    assert len(set(codes.values())) == 1, codes
    return set(codes.values())


def test_listed_formats_are_the_supported_ones() -> None:
    assert _formats("run") == _formats("op") == ["table", "json", "csv", "markdown"]
    for command in ("workloads", "accelerators", "plugins", "calibrate", "bench", "sweep"):
        assert _formats(command) == ["table", "json"], command
    for command in ("compare", "reproduce"):
        assert sorted(_formats(command)) == ["json", "markdown", "table"], command


@pytest.mark.parametrize("command", ["workloads", "plugins", "accelerators", "calibrate", "reproduce",
                                     "sweep"])
def test_unlisted_format_is_refused_not_ignored(cli, command: str) -> None:
    r = cli(command, *(["bert-tiny"] if command == "sweep" else []), "--format", "csv")
    assert r.code == 2 and "'csv' is not one of" in r.err and r.out == ""


def test_run_matrix_exits_3_everywhere(failing_cli, tmp_path: Path) -> None:
    args = ["bert-tiny", "-a", FAILING, "-a", "hastily", "-l", "128", "--numerics", "off"]
    assert _matrix(failing_cli, tmp_path, "run", args) == {3}


def test_op_matrix_exits_3_everywhere_with_a_line_on_stderr(failing_cli, tmp_path: Path) -> None:
    args = ["attention", "-w", "bert-tiny", "-a", FAILING, "-a", "hastily", "-l", "128"]
    assert _matrix(failing_cli, tmp_path, "op", args) == {3}
    r = failing_cli("op", *args, "-f", "json")
    assert re.search(rf"error: {FAILING} on bert-tiny .*model exploded", r.err)


def test_compare_matrix(failing_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = run(RunRequest(workloads=["bert-tiny"], accelerators=["hastily"], seq_lens=[128],
                          numerics="off"))
    (tmp_path / "base.json").write_text(base.to_json())
    head = json.loads(base.to_json())
    r0 = head["results"][0]
    r0.update(status="error", error="model exploded", latency_s=None, tops=None,
              inferences_per_s=None, energy_j=None, energy_per_inference_j=None, tops_per_w=None)
    (tmp_path / "head.json").write_text(json.dumps(head))
    args = [str(tmp_path / "base.json"), str(tmp_path / "head.json")]
    assert _matrix(failing_cli, tmp_path, "compare", args) == {1}  # ok -> error regressed


def test_listing_matrix(failing_cli, tmp_path: Path) -> None:
    for command in ("workloads", "accelerators", "plugins"):
        assert _matrix(failing_cli, tmp_path, command, [], output_flag=None) == {0}


def test_calibrate_matrix_refuses_the_failing_model_the_same_way(failing_cli, tmp_path: Path) -> None:
    csv = tmp_path / "m.csv"
    csv.write_text(f"accelerator,workload,seq_len,batch,latency_ms\n{FAILING},bert-tiny,128,1,1.0\n")
    assert _matrix(failing_cli, tmp_path, "calibrate", [str(csv)], output_flag=None) == {2}


def test_reproduce_matrix(failing_cli, tmp_path: Path) -> None:
    claims = tmp_path / "claims.toml"
    claims.write_text(
        'schema_version = 1\n[sweep]\nworkloads = ["bert-tiny"]\nseq_lens = [128]\nbatches = [1]\n'
        '[[claims]]\nid = "x"\nclaim = "tiny TOPS"\nsource = "test"\nkind = "value"\n'
        f'metric = "tops"\naccelerator = "{FAILING}"\nworkload = "bert-tiny"\nseq_len = 128\n'
        "headline = true\npublished = 1.0\ntolerance = 0.1\n")
    codes = _matrix(failing_cli, tmp_path, "reproduce", ["--claims", str(claims), "--check"],
                    output_flag="--results")
    assert len(codes) == 1 and codes <= {1, 2, 3}


def test_bench_matrix(cli, tmp_path: Path) -> None:
    args = ["-l", "16", "--heads", "1", "--head-dim", "8", "--repeats", "1", "--warmup", "0"]
    assert _matrix(cli, tmp_path, "bench", args) == {0}


def test_sweep_matrix(failing_cli, tmp_path: Path) -> None:
    args = ["bert-tiny", "-a", FAILING, "-a", "hastily", "-l", "128", "--jobs", "1",
            "--overwrite"]
    codes = set()
    for fmt in _formats("sweep"):
        r = failing_cli("sweep", *args, "-o", str(tmp_path / f"s-{fmt}.jsonl"), "--format", fmt)
        assert "Traceback" not in r.err, r
        codes.add(r.code)
    assert codes == {3}
    r = failing_cli("sweep", *args, "-o", "-")
    assert r.code == 2 and "the rows go to a file" in r.err
