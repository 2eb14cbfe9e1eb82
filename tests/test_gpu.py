"""The GPU model: devices as hardware, the clock law, memory capacity, bounds, the paper's A40."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hastily_bench.api import build_graph, configured_accelerator, estimate_point

BOARDS = ("a40", "a100-40gb", "a100-80gb", "a30", "a10", "t4", "l4", "l40s", "h100-sxm",
          "h100-pcie", "h200")


def _result(host, acc: str, workload: str, seq: int, batch: int = 1, **overrides: str):
    reg, params = configured_accelerator(host, acc, {acc: overrides} if overrides else None)
    return estimate_point(reg, params, build_graph(host.workload(workload), seq, batch))


def _peak_tops(host, acc: str, fmt: str = "int8") -> float:
    p = host.accelerator(acc).spec.params
    return p.i("sm_count") * p.i(f"{fmt}_ops_per_clock_per_sm") * p.f("boost_clock_mhz") * 1e6 / 1e12


# --- the paper's A40 --------------------------------------------------------------


def test_hf_bnb_reproduces_the_papers_a40_point(host) -> None:
    r = _result(host, "a40-hf-bnb", "bert-base", 1024)
    assert r.tops == pytest.approx(19.0, rel=0.05)
    assert 0.3 <= r.tops_per_w <= 0.9


def test_hf_bnb_tops_per_w_over_the_papers_sweep(host) -> None:
    # paper: 0.3-0.9 TOPS/W (nvidia-smi minus idle) over BERT-Base/Large, l = 128..4096,
    # batch 1 and 2. The model's lowest point (BERT-Base, l = 4096) sits at 0.299:
    # docs/model.md says why; 1% under the paper's bound is inside the assumed DRAM energy.
    values = [_result(host, "a40-hf-bnb", w, seq, b).tops_per_w
              for w in ("bert-base", "bert-large") for seq in (128, 512, 1024, 4096) for b in (1, 2)]
    assert min(values) >= 0.3 * 0.99
    assert max(values) <= 0.9


# --- devices as hardware ----------------------------------------------------------


@pytest.mark.parametrize(("device", "int8_tops", "fp16_tflops"), [
    ("a40", 299.3, 149.7), ("a100-40gb", 624.0, 312.0), ("a30", 330.0, 165.0),
    ("a10", 250.0, 125.0), ("t4", 130.0, 65.0), ("l4", 242.5, 121.0), ("l40s", 733.0, 362.0),
])
def test_derived_peaks_match_the_datasheets(host, device: str, int8_tops: float,
                                            fp16_tflops: float) -> None:
    assert _peak_tops(host, f"{device}-roofline") == pytest.approx(int8_tops, rel=0.015)
    assert _peak_tops(host, f"{device}-roofline", "fp16") == pytest.approx(fp16_tflops, rel=0.015)


def test_every_device_parameter_has_a_source_and_bounds(host) -> None:
    for board in BOARDS:
        params = host.accelerator(f"{board}-tensorrt").spec.params
        for p in params.values():
            assert p.source in {"datasheet", "derived", "assumed", "fitted", "paper"}, (board, p.name)
            if isinstance(p.value, (int, float)) and not isinstance(p.value, bool):
                assert p.minimum is not None, (board, p.name)


def test_roofline_is_a_lower_bound_on_latency(host) -> None:
    for stack in ("tensorrt", "hf-bnb", "tensorrt-fp16"):
        for seq in (128, 2048):
            assert (_result(host, f"a100-40gb-{stack}", "bert-base", seq).latency_s
                    >= _result(host, "a100-40gb-roofline", "bert-base", seq).latency_s)


def test_roofline_is_compute_or_bandwidth_bound(host) -> None:
    r = _result(host, "h100-sxm-roofline", "bert-large", 512, 8)
    ideal = r.ops / (_peak_tops(host, "h100-sxm-roofline") * 1e12)
    assert r.latency_s >= ideal
    assert r.latency_s < 3 * ideal  # large batch: close to peak


def test_fp16_is_slower_than_int8_on_a_compute_bound_point(host) -> None:
    for board in ("a100-40gb", "t4", "l40s"):
        i8 = _result(host, f"{board}-tensorrt", "bert-large", 384, 64).latency_s
        f16 = _result(host, f"{board}-tensorrt-fp16", "bert-large", 384, 64).latency_s
        assert 1.3 < f16 / i8 < 2.5


def test_current_boards(host) -> None:
    # H100 PCIe and H200: datasheet presets; the H200 is the H100 SXM's compute with more,
    # faster memory, so it is never slower and holds what the H100 cannot.
    for board in ("h100-pcie", "h200"):
        r = _result(host, f"{board}-tensorrt", "bert-large", 384, 32)
        assert r.status == "ok" and r.tops > 0
    for seq, batch in ((128, 1), (4096, 8)):
        h100 = _result(host, "h100-sxm-tensorrt", "bert-large", seq, batch).latency_s
        h200 = _result(host, "h200-tensorrt", "bert-large", seq, batch).latency_s
        assert h200 <= h100
    assert _result(host, "h100-pcie-tensorrt", "bert-large", 384, 32).latency_s > _result(
        host, "h100-sxm-tensorrt", "bert-large", 384, 32).latency_s
    big = _result(host, "h100-sxm-hf-bnb", "bert-large", 8192, 24)
    assert big.status == "unsupported"
    assert _result(host, "h200-hf-bnb", "bert-large", 8192, 24).status == "ok"


# --- the clock law ----------------------------------------------------------------


def test_a_70_w_board_cannot_hold_its_boost_clock_under_tensor_load(host) -> None:
    # the same law for every board: the T4's 70 W cannot feed 40 SMs at 1.59 GHz ...
    t4 = _result(host, "t4-tensorrt", "bert-large", 384, 64)
    assert t4.extra["clock_mhz"] < 0.75 * 1590
    # ... and given an A100's power it could
    fed = _result(host, "t4-tensorrt", "bert-large", 384, 64, tdp_w="400")
    assert fed.extra["clock_mhz"] == pytest.approx(1590)
    # a mostly launch-bound point draws less and runs faster
    assert _result(host, "t4-tensorrt", "bert-base", 128, 1).extra["clock_mhz"] > t4.extra["clock_mhz"]
    # the A100, the board the law is anchored on, holds its boost clock
    assert _result(host, "a100-40gb-tensorrt", "bert-large", 384, 128).extra["clock_mhz"] == 1410.0


def test_energy_scales_with_the_process_node(host) -> None:
    # one law: energy per SM-cycle ~ (process_nm / 7)^process_energy_exponent
    t4 = _result(host, "t4-roofline", "bert-large", 384, 8)
    flat = _result(host, "t4-roofline", "bert-large", 384, 8, process_energy_exponent="0")
    assert t4.energy_j > flat.energy_j  # 12 nm costs more than 7 nm
    l4 = _result(host, "l4-roofline", "bert-large", 384, 8)
    assert l4.energy_j < _result(host, "l4-roofline", "bert-large", 384, 8,
                                 process_energy_exponent="0").energy_j
    # at the 7 nm reference node the exponent changes nothing
    a100 = _result(host, "a100-40gb-roofline", "bert-large", 384, 8)
    assert a100.energy_j == _result(host, "a100-40gb-roofline", "bert-large", 384, 8,
                                    process_energy_exponent="0").energy_j


def test_full_load_clock_is_a_board_property(host) -> None:
    clocks = {b: _result(host, f"{b}-tensorrt", "bert-base", 128).extra["clock_full_load_mhz"]
              for b in ("a100-40gb", "t4", "l4", "a30", "h100-sxm")}
    boost = {"a100-40gb": 1410, "t4": 1590, "l4": 2040, "a30": 1440, "h100-sxm": 1980}
    ratio = {b: clocks[b] / boost[b] for b in clocks}
    assert ratio["t4"] < 0.6 and ratio["l4"] < 0.8
    assert ratio["a100-40gb"] > max(ratio["t4"], ratio["l4"])


def test_power_never_exceeds_the_limit(host) -> None:
    for board in ("t4", "l4", "a30", "l40s", "h100-sxm"):
        r = _result(host, f"{board}-tensorrt", "bert-large", 384, 128)
        tdp = host.accelerator(f"{board}-tensorrt").spec.params.f("tdp_w")
        assert r.energy_j / r.latency_s <= tdp * 1.001


def test_sm_count_one_is_not_faster_than_the_real_chip(host) -> None:
    real = _result(host, "a40-tensorrt", "bert-base", 512)
    one = _result(host, "a40-tensorrt", "bert-base", 512, sm_count="1")
    assert one.tops < real.tops / 10


POINTS = st.sampled_from([("bert-base", 128, 1), ("bert-base", 384, 8), ("bert-large", 128, 32),
                          ("bert-large", 1024, 2), ("bert-base", 2048, 1)])
ACCELS = st.sampled_from(["a40-tensorrt", "t4-tensorrt", "l4-tensorrt-fp16", "a100-40gb-hf-bnb",
                          "h100-pcie-tensorrt", "l40s-roofline"])
SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(acc=ACCELS, point=POINTS, sms=st.integers(1, 200), fewer=st.integers(1, 199))
def test_fewer_sms_are_never_faster(host, acc, point, sms, fewer) -> None:
    fewer = min(fewer, sms)
    many = _result(host, acc, *point, sm_count=str(sms))
    few = _result(host, acc, *point, sm_count=str(fewer))
    assert few.latency_s >= many.latency_s * (1 - 1e-9)


@SETTINGS
@given(acc=ACCELS, point=POINTS, bw=st.floats(10.0, 5000.0), more=st.floats(1.0, 10.0))
def test_more_bandwidth_is_never_slower(host, acc, point, bw, more) -> None:
    slow = _result(host, acc, *point, memory_bandwidth_gbs=repr(bw))
    fast = _result(host, acc, *point, memory_bandwidth_gbs=repr(bw * more))
    assert fast.latency_s <= slow.latency_s * (1 + 1e-9)


@SETTINGS
@given(acc=ACCELS, point=POINTS, tdp=st.floats(60.0, 1000.0), more=st.floats(1.0, 5.0))
def test_more_power_is_never_slower(host, acc, point, tdp, more) -> None:
    low = _result(host, acc, *point, tdp_w=repr(tdp))
    high = _result(host, acc, *point, tdp_w=repr(tdp * more))
    assert high.latency_s <= low.latency_s * (1 + 1e-6)


# --- memory, energy, bounds -------------------------------------------------------


def test_points_above_the_cards_memory_are_unsupported(host) -> None:
    r = _result(host, "a40-hf-bnb", "bert-base", 4096, 4096)
    assert r.status == "unsupported"
    assert "GB of GPU memory" in r.error and "but the card has 51.5 GB" in r.error
    t4 = _result(host, "t4-hf-bnb", "bert-base", 4096, 64)
    assert t4.status == "unsupported" and "17179869184 bytes" in t4.error
    # the same point fits where there is room
    assert _result(host, "a40-hf-bnb", "bert-base", 4096, 16).status == "ok"
    assert _result(host, "t4-hf-bnb", "bert-base", 4096, 4, memory_gib="1000").status == "ok"


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
    no_floor = _result(host, "a40-tensorrt", "bert-base", 512, activity_floor="0")
    idle = host.accelerator("a40-tensorrt").spec.params.f("idle_w")
    # the paper's convention subtracts P0 idle: idle power and the busy floor
    floor_j = with_idle.energy_j - no_floor.energy_j
    assert floor_j > 0
    assert with_idle.energy_j - without.energy_j == pytest.approx(idle * with_idle.latency_s + floor_j)


def test_wave_quantisation_slows_small_problems(host) -> None:
    # one wave serves both 64 and 128 tokens on a 108-SM GPU with 64x64 tiles
    t64 = _result(host, "a100-40gb-roofline", "bert-base", 64, tile_m="64", tile_n="64").latency_s
    t128 = _result(host, "a100-40gb-roofline", "bert-base", 128, tile_m="64", tile_n="64").latency_s
    assert t128 / t64 < 1.5
    assert math.isfinite(t64)


@pytest.mark.parametrize(("setting", "message"), [
    ("sm_count=0", "'sm_count': 0 is below 1"),
    ("sm_count=-3", "'sm_count': -3 is below 1"),
    ("idle_w=-100", "'idle_w': -100.0 is below 0.0"),
    ("tdp_w=0", "'tdp_w': 0.0 is below 0.001"),
    ("idle_w=400", "idle_w (400 W) exceeds tdp_w (300 W)"),
    ("base_clock_mhz=2000", "base_clock_mhz (2000) exceeds boost_clock_mhz (1740)"),
    ("memory_bandwidth_gbs=0", "is below 0.001"),
    ("compute_efficiency=0", "is below 0.001"),
    ("compute_efficiency=1.5", "is above 1.0"),
    ("int8_ops_per_clock_per_sm=0", "is below 1"),
    ("memory_gib=0", "is below 0.001"),
    ("process_nm=0", "is below 1.0"),
    ("dvfs_power_exponent=0.5", "is below 1.0"),
])
def test_bad_device_parameters_are_one_line_errors(cli, setting: str, message: str) -> None:
    r = cli("run", "bert-base", "-a", "a40-tensorrt", "-l", "128", "--set", f"a40-tensorrt.{setting}",
            "-f", "csv")
    assert r.code == 2 and message in r.err and r.err.count("\n") == 1, r
    assert r.out == ""


def test_power_and_clock_have_upper_bounds(cli) -> None:  # type: ignore[no-untyped-def]
    """A board power or clock beyond any real board is a typo, refused in one line."""
    for key, value in (("tdp_w", "1e9"), ("boost_clock_mhz", "1e7"), ("base_clock_mhz", "1e7")):
        r = cli("run", "bert-tiny", "-a", "a40-tensorrt", "--numerics", "off", "--set",
                f"a40-tensorrt.{key}={value}")
        assert r.code == 2 and f"'{key}'" in r.err and "above" in r.err, r
    r = cli("run", "bert-tiny", "-a", "hastily", "--numerics", "off", "--set", "hastily.clock_hz=1e12")
    assert r.code == 2 and "above" in r.err, r
