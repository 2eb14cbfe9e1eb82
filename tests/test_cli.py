"""The command line: outputs, exit codes, and one-line errors for every bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from hastily_bench.results import results_schema

FAST = ("--numerics", "off")


def test_run_default_prints_the_comparison(cli) -> None:
    r = cli("run", "bert-base", "-l", "128", "-l", "1024", *FAST)
    assert r.code == 0, r
    for name in ("hastily", "baseline-cim", "a40-hf-bnb", "a40-tensorrt"):
        assert name in r.out
    assert "seq_len 1024" in r.out and "speedup" in r.out and "breakdown" in r.out
    assert re.search(r"hastily: chip \d+ mm2 \(\d\.\d\dx the paper's 330 mm2\)", r.out)


def test_default_sequence_lengths(cli) -> None:
    r = cli("run", "bert-tiny", "-a", "hastily", "--format", "json", *FAST)
    doc = json.loads(r.out)
    assert [x["seq_len"] for x in doc["results"]] == [128, 256, 512, 1024, 2048, 4096]


def test_json_validates_against_schema_and_is_deterministic(cli) -> None:
    args = ("run", "bert-base", "bert-large", "-a", "a40-tensorrt", "-a", "a100-40gb-tensorrt",
            "--format", "json")
    first, second = cli(*args), cli(*args)
    assert first.code == 0 and second.code == 0
    a, b = json.loads(first.out), json.loads(second.out)
    jsonschema.validate(a, results_schema())
    assert json.dumps(a["results"]) == json.dumps(b["results"])
    assert a["metadata"]["tool"] == "hastily-bench"
    r0 = a["results"][0]
    assert r0["tops"] == pytest.approx(r0["ops"] / r0["latency_s"] / 1e12)
    assert r0["tops_per_w"] == pytest.approx(r0["ops"] / r0["energy_j"] / 1e12)
    assert sum(c["latency_s"] for c in r0["breakdown"]) == pytest.approx(r0["latency_s"])
    assert sum(c["energy_j"] for c in r0["breakdown"]) == pytest.approx(r0["energy_j"])


def test_csv_and_markdown(cli) -> None:
    r = cli("run", "bert-tiny", "-l", "128", "--format", "csv", *FAST)
    lines = r.out.strip().splitlines()
    assert lines[0].startswith("workload,accelerator,seq_len,batch,status")
    assert len(lines) == 1 + 4
    m = cli("run", "bert-tiny", "-l", "128", "--format", "markdown", *FAST)
    assert "| `hastily` |" in m.out and "### bert-tiny, seq_len 128, batch 1" in m.out


def test_output_file_is_written_atomically(cli, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    r = cli("run", "bert-tiny", "-l", "64", "-o", str(out), *FAST)
    assert r.code == 0 and r.out == ""
    assert json.loads(out.read_text())["schema_version"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary left behind


def test_set_changes_a_parameter(cli) -> None:
    base = json.loads(cli("run", "bert-base", "-a", "hastily", "-l", "512", "-f", "json", *FAST).out)
    slow = json.loads(cli("run", "bert-base", "-a", "hastily", "-l", "512", "-f", "json",
                          "--set", "hastily.clock_hz=5e8", *FAST).out)
    assert slow["results"][0]["latency_s"] > base["results"][0]["latency_s"]
    assert slow["results"][0]["params"]["clock_hz"] == 5e8
    assert slow["results"][0]["params_hash"] != base["results"][0]["params_hash"]


def _write(tmp_path: Path, name: str, text: str) -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


BAD_INPUTS = [
    (("run", "bert-bse"), "unknown workload 'bert-bse' (did you mean 'bert-base'"),
    (("run", "bert-base", "-a", "hastly"), "unknown accelerator 'hastly' (did you mean 'hastily'"),
    (("run", "bert-base", "-l", "0"), "sequence length must be >= 1"),
    (("run", "bert-base", "-l", "10000000"), "sequence length 10000000 exceeds the limit 262144"),
    (("run", "bert-base", "-b", "-1"), "batch must be >= 1"),
    (("run", "bert-base", "-b", "100000"), "exceeds the limit 4096"),
    (("run", "bert-base", "-l", "abc"), "'--seq-len'"),
    (("run", "bert-base", "--set", "nosuch.clock_hz=1"), "unknown accelerator 'nosuch'"),
    (("run", "bert-base", "--set", "hastily.clock=1"), "unknown parameter 'clock' (did you mean 'clock_hz'"),
    (("run", "bert-base", "--set", "hastily.clock_hz=fast"), "takes a number"),
    (("run", "bert-base", "--set", "hastily.lut_exp=2"), "takes true/false"),
    (("run", "bert-base", "--set", "hastily.lanes"), "expected ACCELERATOR.PARAM=VALUE"),
    (("run", "bert-base", "-a", "hastily", "--set", "a40-tensorrt.idle_w=3"), "not part of this run"),
    (("run", "bert-base", "-o", "/nonexistent-dir/x.json"), "does not exist"),
    (("run", "bert-base", "--format", "xml"), "'xml' is not one of"),
    (("accelerators", "--detail", "hastilyy"), "did you mean 'hastily'"),
    (("run", "missing.toml"), "no such file"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_is_one_line_exit_2(cli, args: tuple[str, ...], message: str) -> None:
    r = cli(*args, *FAST) if args[0] == "run" else cli(*args)
    assert r.code == 2, r
    assert message in r.err
    assert r.err.count("\n") == 1 and "Traceback" not in r.err
    assert r.out == ""


@pytest.mark.parametrize(("name", "text", "message"), [
    ("bad.toml", "schema_version = 1\nlayers = [", "malformed TOML"),
    ("nofield.toml", "schema_version = 1\nhidden = 64\nheads = 4\n", "missing field 'layers'"),
    ("float.toml", "schema_version = 1\nlayers = 1.5\nhidden = 64\nheads = 4\n", "must be an integer"),
    ("neg.toml", "schema_version = 1\nlayers = -1\nhidden = 64\nheads = 4\n", "layers must be >= 1"),
    ("div.toml", "schema_version = 1\nlayers = 1\nhidden = 63\nheads = 4\n", "not divisible"),
    ("bad.json", "{oops", "malformed JSON"),
])
def test_bad_workload_files(cli, tmp_path: Path, name: str, text: str, message: str) -> None:
    out = tmp_path / "out.json"
    r = cli("run", _write(tmp_path, name, text), "-o", str(out), *FAST)
    assert r.code == 2 and message in r.err and r.err.count("\n") == 1
    assert not out.exists()


def test_workload_toml_and_hf_config_paths(cli, tmp_path: Path) -> None:
    toml = _write(tmp_path, "mine.toml",
                  'schema_version = 1\nname = "mine"\nlayers = 2\nhidden = 64\nheads = 2\n')
    cfg = _write(tmp_path, "config.json", json.dumps({
        "model_type": "distilbert", "n_layers": 6, "dim": 768, "n_heads": 12, "hidden_dim": 3072}))
    r = cli("run", toml, cfg, "-a", "hastily", "-l", "128", "-f", "json", *FAST)
    assert r.code == 0, r
    names = [x["workload"] for x in json.loads(r.out)["results"]]
    assert names == ["mine", tmp_path.name]


def test_listing_commands(cli) -> None:
    w = cli("workloads")
    assert w.code == 0 and "bert-large" in w.out and "minilm-l6" in w.out
    a = cli("accelerators")
    assert a.code == 0 and "a40-hf-bnb" in a.out and "h100-sxm-tensorrt" in a.out
    d = cli("accelerators", "--detail", "hastily")
    assert d.code == 0 and "adc_energy_scale" in d.out and "fitted" in d.out and "puma-sim" in d.out
    p = cli("plugins", "--format", "json")
    plugins = {x["name"]: x for x in json.loads(p.out)}
    assert plugins["cim"]["status"] == "loaded" and plugins["gpu"]["distribution"] == "hastily-bench"
    assert plugins["cim"]["hooks"] == ["hastily_register_accelerators"]
    v = cli("--version")
    assert v.code == 0 and v.out.startswith("hastily-bench ")


def test_accelerator_listing_json_has_units_and_sources(cli) -> None:
    r = cli("accelerators", "--format", "json")
    for acc in json.loads(r.out):
        for name, p in acc["params"].items():
            assert p["source"] in {"paper", "puma-sim", "datasheet", "assumed", "fitted",
                                   "derived", "measured"}, (acc["name"], name)


def test_calibrate_meets_the_tensorrt_target(cli) -> None:
    r = cli("calibrate", "--format", "json")
    doc = json.loads(r.out)
    assert sum(row["fitted"] for row in doc["rows"]) == 40
    assert doc["geomean_abs_error"] <= 0.15


def test_calibrate_refit_recovers_the_stored_values(cli) -> None:
    r = cli("calibrate", "--fit", "kernel_overhead_cycles", "--format", "json")
    fitted = json.loads(r.out)["fitted"]["kernel_overhead_cycles"]
    assert fitted == pytest.approx(9195.0, rel=0.05)


def test_calibrate_rejects_bad_files(cli, tmp_path: Path) -> None:
    p = _write(tmp_path, "m.csv", "gpu,latency\nx,1\n")
    r = cli("calibrate", p)
    assert r.code == 2 and "missing columns" in r.err


def test_op_command(cli) -> None:
    r = cli("op", "softmax", "--length", "2048", "-f", "json")
    doc = json.loads(r.out)
    assert {x["accelerator"] for x in doc["results"]} == {"hastily", "baseline-cim", "a40-hf-bnb",
                                                          "a40-tensorrt"}
    assert all(x["status"] == "ok" for x in doc["results"])
    t = cli("op", "mvm", "-l", "1", "--rows", "64", "--cols", "64", "-a", "hastily")
    assert t.code == 0 and "hastily" in t.out
    bad = cli("op", "conv")
    assert bad.code == 2


def test_more_bad_inputs_are_one_line_errors(cli, tmp_path: Path) -> None:
    cases = [
        (("run", "bert-base", "--baseline", "a40-hf-bnbb", *FAST), "did you mean 'a40-hf-bnb'"),
        (("run", "bert-base", "-a", "hastily", "--baseline", "a40-tensorrt", *FAST),
         "not one of this run's accelerators"),
        (("run", "bert-base", "-a", "a40-hf-bnb", "--set", "a40-hf-bnb.idle_w=1000", *FAST),
         "a40-hf-bnb: idle_w (1000 W) exceeds tdp_w (300 W)"),
        (("op", "mvm", "--rows", "0"), "--rows must be between 1"),
        (("compare", "a.json", "b.json", "-f", "csv"), "'csv' is not one of 'table', 'markdown', 'json'"),
        (("calibrate", "--fit", "fused_attention"), "only positive numeric parameters"),
    ]
    for args, message in cases:
        r = cli(*args)
        assert r.code == 2 and message in r.err and r.err.count("\n") == 1, (args, r)
    bad = tmp_path / "latin1.csv"
    bad.write_bytes("accelerator,workload,seq_len,batch,latency_ms\nä,\xe4\n".encode("latin-1"))
    r = cli("calibrate", str(bad))
    assert r.code == 2 and "not a UTF-8 text file" in r.err


def test_workload_names_must_be_unique(cli, tmp_path: Path) -> None:
    twice = cli("run", "bert-tiny", "bert-tiny", "-a", "hastily", "-l", "128", "-f", "csv", *FAST)
    assert twice.code == 0 and len(twice.out.strip().splitlines()) == 2  # given twice, run once
    clash = _write(tmp_path, "mine.toml",
                   'schema_version = 1\nname = "bert-tiny"\nlayers = 1\nhidden = 64\nheads = 2\n')
    r = cli("run", "bert-tiny", clash, *FAST)
    assert r.code == 2 and "two workloads are named 'bert-tiny'" in r.err


def test_save_directory_is_checked_before_anything_is_written(cli, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = tmp_path / "o.json"
    r = cli("run", "bert-tiny", "-l", "128", "-o", str(out), "--save", str(blocker / "sub"), *FAST)
    assert r.code == 2 and "--save" in r.err
    assert not out.exists()


def test_gpu_energy_without_idle_power_is_noted(cli) -> None:
    r = cli("run", "bert-base", "-l", "512", *FAST)
    assert "a40-hf-bnb: energy excludes idle power" in r.out


def test_ctrl_c_while_the_command_imports_is_one_line(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Ctrl-C in the first fraction of a second (the imports) gives exit 130 and one line,
    not an import traceback."""
    import sys

    from hastily_bench import console

    class Interrupting:
        def find_spec(self, name: str, path: object = None, target: object = None) -> None:
            if name == "hastily_bench.cli":
                raise KeyboardInterrupt

    monkeypatch.delitem(sys.modules, "hastily_bench.cli", raising=False)
    monkeypatch.setattr(sys, "meta_path", [Interrupting(), *sys.meta_path])
    with pytest.raises(SystemExit) as info:
        console.main()
    assert info.value.code == 130
    assert capsys.readouterr().err == "hastily-bench: interrupted\n"
