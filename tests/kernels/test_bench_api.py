"""hastily_bench.bench: the API runs, the report is JSON-ready, the table renders."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from hastily_bench import bench, kernels


def test_run_bench_small_and_render() -> None:
    report = bench.run_bench(seq_lens=(64,), heads=2, head_dim=16, repeats=1, warmup=0,
                             include=("numpy", "onnxruntime"))
    d = json.loads(json.dumps(report.to_dict()))
    assert d["schema_version"] == bench.SCHEMA_VERSION
    assert d["host"]["kernels_backend"] == kernels.backend()
    impls = {(r["kernel"], r["impl"]) for r in d["rows"]}
    assert ("attention", "hastily int8 lut") in impls and ("softmax", "numpy float32") in impls
    lut = report.row("attention", "hastily int8 lut", 64)
    assert lut.status == "ok" and lut.gops and lut.ratio_vs_numpy
    assert report.row("attention", "numpy float32", 64).ratio_vs_numpy == 1.0
    console = Console(record=True, width=160)
    bench.render_bench(report, console)
    text = console.export_text()
    assert "hastily int8 lut" in text and "x NumPy" in text


def test_run_bench_rejects_unknown_baseline() -> None:
    with pytest.raises(ValueError, match="^include"):
        bench.run_bench(seq_lens=(8,), include=("tensorflow",))
