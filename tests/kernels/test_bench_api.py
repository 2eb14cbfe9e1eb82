"""hastily_bench.bench: the API runs, the report is JSON-ready, the table renders."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from hastily_bench import bench, kernels


def test_run_bench_small_and_render(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench, "_SETTLE_S", 0.0)  # the pause between libraries: not needed here
    paths = kernels.simd_paths()
    report = bench.run_bench(seq_lens=(64,), heads=2, head_dim=16, repeats=1, warmup=0,
                             include=("numpy", "onnxruntime"), simd_paths=paths or None,
                             peak_s=0.002)
    d = json.loads(json.dumps(report.to_dict()))
    assert d["schema_version"] == bench.SCHEMA_VERSION
    assert d["host"]["kernels_backend"] == kernels.backend()
    assert d["host"]["kernels_simd"] == kernels.simd()
    impls = {(r["kernel"], r["impl"]) for r in d["rows"]}
    assert ("attention", "hastily int8 lut") in impls and ("softmax", "numpy float32") in impls
    assert ("softmax", "memory int32->float32") in impls
    for path in paths or ("none",):
        lut = report.row("attention", "hastily int8 lut", 64, simd_path=path)
        assert lut.status == "ok" and lut.gops and lut.ratio_vs_numpy
        sm = report.row("softmax", "hastily int32 lut", 64, simd_path=path)
        assert sm.status == "ok" and sm.ns_per_element and sm.pct_of_peak
        if kernels.COMPILED:
            assert lut.pct_of_peak and d["peaks"]["int8_gops"][path] > 0
    assert report.row("attention", "numpy float32", 64).ratio_vs_numpy == 1.0
    assert report.row("softmax", "memory int32->float32", 64).pct_of_peak == pytest.approx(100.0)
    console = Console(record=True, width=200)
    bench.render_bench(report, console)
    text = console.export_text()
    assert "hastily int8 lut" in text and "x NumPy" in text and "% of peak" in text


def test_run_bench_rejects_unknown_baseline() -> None:
    with pytest.raises(ValueError, match="^include"):
        bench.run_bench(seq_lens=(8,), include=("tensorflow",))


@pytest.mark.skipif(not kernels.COMPILED, reason="needs the compiled kernels")
def test_run_bench_rejects_unavailable_simd_path() -> None:
    with pytest.raises(ValueError, match="^simd_paths: 'sse9'"):
        bench.run_bench(seq_lens=(8,), simd_paths=("sse9",))


@pytest.mark.skipif(not kernels.COMPILED, reason="needs the compiled kernels")
def test_measure_peaks_every_path() -> None:
    peaks = bench.measure_peaks(n_threads=1, target_s=0.002, repeats=1)
    assert peaks is not None and peaks.n_threads == 1
    assert set(peaks.int8_gops) == set(kernels.simd_paths())
    assert all(v > 0 for v in (*peaks.int8_gops.values(), *peaks.fp32_gops.values()))
    assert peaks.fp32_best_gops == max(peaks.fp32_gops.values())
