"""Calibration of the GPU model: fitted on the A100 only, validated on boards it never saw."""

from __future__ import annotations

import json

import pytest

from hastily_bench.calibrate import (
    BUILTIN_DATASET,
    VALIDATION_DATASET,
    calibrate,
    load_measurements,
)


@pytest.fixture(scope="module")
def report(host):  # type: ignore[no-untyped-def]
    return calibrate(host)


def test_validation_data_has_sources_and_never_the_fitted_board(report) -> None:
    from importlib import resources

    text = resources.files("hastily_bench").joinpath(f"data/{VALIDATION_DATASET}").read_text()
    header = [ln for ln in text.splitlines() if ln.startswith("#")]
    assert any("NVIDIA/TensorRT" in ln for ln in header)
    assert any("7d2a70a18bb0e5cf76b9a82eb0db0fb20e89b034" in ln for ln in header)
    _, rows = load_measurements(builtin=VALIDATION_DATASET)
    _, fit_rows = load_measurements()
    assert {m.accelerator for m in fit_rows} == {"a100-40gb-tensorrt"}
    assert "a100-40gb-tensorrt" not in {m.accelerator for m in rows}
    assert {m.accelerator.split("-tensorrt")[0] for m in rows} == {"a100-40gb", "t4", "a30", "l4", "l40s"}


def test_a100_fit_and_unseen_boards(report) -> None:
    devices = {d.accelerator: d for d in report.devices()}
    a100 = devices.pop("a100-40gb-tensorrt")
    assert a100.fitted and a100.points == 40
    assert a100.geomean_abs_error <= 0.08
    assert len(devices) == 9
    for name, d in devices.items():
        assert not d.fitted, name
        assert d.geomean_abs_error <= 0.15, (name, d.geomean_abs_error)  # the goal
        assert abs(d.bias) <= 0.12, (name, d.bias)


def test_fit_uses_the_a100_rows_only(host) -> None:
    with_validation = calibrate(host, fit=["kernel_overhead_cycles"])
    a100_only = calibrate(host, BUILTIN_DATASET_PATH(), fit=["kernel_overhead_cycles"])
    assert with_validation.fitted == a100_only.fitted
    assert with_validation.fitted["kernel_overhead_cycles"] == pytest.approx(9195.0, rel=0.05)
    fitted_rows = [r for r in with_validation.rows if r.fitted]
    assert len(fitted_rows) == 40
    assert {r.measurement.accelerator for r in fitted_rows} == {"a100-40gb-tensorrt"}


def BUILTIN_DATASET_PATH() -> str:  # noqa: N802 - reads like the constant it wraps
    from importlib import resources

    return str(resources.files("hastily_bench").joinpath(f"data/{BUILTIN_DATASET}"))


def test_bias_and_worst_point(host, tmp_path) -> None:
    p = tmp_path / "m.csv"
    base = calibrate(host, BUILTIN_DATASET_PATH()).rows[:2]
    # the same two points measured 2x and 0.5x the model: bias cancels, error does not
    lines = ["accelerator,workload,seq_len,batch,latency_ms"]
    for r, k in zip(base, (2.0, 0.5), strict=True):
        m = r.measurement
        lines.append(f"{m.accelerator},{m.workload},{m.seq_len},{m.batch},{r.modelled_s * 1e3 * k!r}")
    p.write_text("\n".join(lines) + "\n")
    (d,) = calibrate(host, p).devices()
    assert d.points == 2 and not d.fitted
    assert d.bias == pytest.approx(0.0, abs=1e-9)
    assert d.geomean_abs_error == pytest.approx(1.0)
    assert d.worst.rel_error in (pytest.approx(-0.5), pytest.approx(1.0))


def test_cli_prints_fitted_and_unseen(cli) -> None:
    r = cli("calibrate")
    assert r.code == 0
    assert "fitted" in r.out and "unseen" in r.out and "t4-tensorrt-fp16" in r.out
    doc = json.loads(cli("calibrate", "--format", "json").out)
    a100 = next(d for d in doc["devices"] if d["accelerator"] == "a100-40gb-tensorrt")
    assert a100["fitted"] and a100["geomean_abs_error"] <= 0.08
    assert set(a100["worst"]) == {"workload", "seq_len", "batch", "rel_error"}
