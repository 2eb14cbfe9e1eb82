from __future__ import annotations

import math

import pytest

from hastily_bench.api import build_graph, configured_accelerator, estimate_point


def _result(host, acc: str, workload: str, seq: int, batch: int = 1, **overrides: str):
    reg, params = configured_accelerator(host, acc, {acc: overrides} if overrides else None)
    return estimate_point(reg, params, build_graph(host.workload(workload), seq, batch))


def test_hf_bnb_reproduces_the_papers_a40_point(host) -> None:
    r = _result(host, "a40-hf-bnb", "bert-base", 1024)
    assert r.tops == pytest.approx(19.0, rel=0.05)
    assert 0.3 <= r.tops_per_w <= 0.9


def test_roofline_is_a_lower_bound_on_latency(host) -> None:
    for stack in ("tensorrt", "hf-bnb"):
        for seq in (128, 2048):
            assert (_result(host, f"a100-40gb-{stack}", "bert-base", seq).latency_s
                    >= _result(host, "a100-40gb-roofline", "bert-base", seq).latency_s)


def test_roofline_is_compute_or_bandwidth_bound(host) -> None:
    r = _result(host, "h100-sxm-roofline", "bert-large", 512, 8)
    params = host.accelerator("h100-sxm-roofline").spec.params
    ideal = r.ops / (params.f("peak_int8_tops") * 1e12)
    assert r.latency_s >= ideal
    assert r.latency_s < 3 * ideal  # large batch: close to peak


def test_unfused_attention_memory_is_quadratic(host) -> None:
    m1 = _result(host, "a40-hf-bnb", "bert-base", 2048).memory_bytes
    m2 = _result(host, "a40-hf-bnb", "bert-base", 4096).memory_bytes
    assert m2 / m1 == pytest.approx(4.0, rel=0.05)
    f1 = _result(host, "a40-tensorrt", "bert-base", 2048).memory_bytes
    f2 = _result(host, "a40-tensorrt", "bert-base", 4096).memory_bytes
    assert f2 / f1 == pytest.approx(2.0, rel=0.05)


def test_idle_power_switch(host) -> None:
    with_idle = _result(host, "a40-tensorrt", "bert-base", 512)
    without = _result(host, "a40-tensorrt", "bert-base", 512, count_idle_power="false")
    idle = host.accelerator("a40-tensorrt").spec.params.f("idle_w")
    assert with_idle.energy_j - without.energy_j == pytest.approx(idle * with_idle.latency_s)


def test_wave_quantisation_slows_small_problems(host) -> None:
    # one wave serves both 64 and 128 tokens on a 108-SM GPU with 64x64 tiles
    t64 = _result(host, "a100-40gb-roofline", "bert-base", 64, tile_m="64", tile_n="64").latency_s
    t128 = _result(host, "a100-40gb-roofline", "bert-base", 128, tile_m="64", tile_n="64").latency_s
    assert t128 / t64 < 1.5
    assert math.isfinite(t64)
