"""The CIM cost model: component formulas, mapping, schedules, memory, calibration."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hastily_bench.plugins import cim

from hastily_bench.api import build_graph, configured_accelerator, estimate_point, op_graph

GOLDEN = Path(__file__).parent / "golden"


def _params(host, acc: str = "hastily", **overrides):
    return configured_accelerator(host, acc, {acc: overrides} if overrides else None)


def _result(host, acc: str, workload: str, seq: int, batch: int = 1, **overrides: str):
    reg, params = _params(host, acc, **overrides)
    return estimate_point(reg, params, build_graph(host.workload(workload), seq, batch))


def test_t_mvm_from_components(host) -> None:
    _, p = _params(host)
    # 8 bit-serial steps; each converts 64 columns on one ADC per array
    t_front = 1e-9 + 1 * 1e-9  # DAC + one sample-and-hold cycle
    t_convert = 64 / p.f("adc_sample_rate_hz")
    expected = t_front + 8 * max(t_front, t_convert) + 1e-9  # + shift-and-add drain
    assert cim.t_mvm(p) == pytest.approx(expected)
    # halving ADC sharing halves the conversion time
    _, p2 = _params(host, adcs_per_array="2")
    assert cim.t_mvm(p2) == pytest.approx(t_front + 8 * max(t_front, t_convert / 2) + 1e-9)


def test_mvm_energy_counts_every_conversion(host) -> None:
    _, p = _params(host)
    adc, _ = cim.e_mvm(p)
    assert adc == pytest.approx(8 * 8 * 64 * p.f("adc_energy_j"))  # arrays x steps x columns


def test_mapping_of_bert_base(host) -> None:
    _, p = _params(host)
    g = build_graph(host.workload("bert-base"), 1024, 1)
    m = cim.map_graph(g, p)
    # 64x64 INT8 blocks, one UCLM each: (12*36 + 12*12 + 12*48 + 48*12) per layer
    assert m.weight_uclms == 12 * 1728
    # K^T and V of 12 heads: 16 blocks each, two layers alive in the pipeline
    assert m.kv_uclms == 2 * 2 * 12 * 16
    assert not m.scaled


def test_chip_that_does_not_fit(host) -> None:
    r = _result(host, "hastily", "bert-large", 512, scale_to_fit="false")
    assert r.status == "unsupported" and "UCLMs" in r.error
    r = _result(host, "hastily", "bert-large", 512)
    assert r.ok and r.extra["chip_scaled"] is True
    assert any("scaled from 186" in n for n in r.notes)
    assert any("the paper's 330 mm2" in n for n in r.notes)
    assert r.extra["uclms_required"] > r.extra["uclms_available"]


def test_pipeline_latency_emerges_as_n_plus_one_l_tmvm(host) -> None:
    for workload, layers in (("bert-base", 12), ("bert-large", 24)):
        for seq in (512, 1024):
            r = _result(host, "hastily", workload, seq)
            t = r.extra["t_mvm_s"]
            # the excess is pipeline fill and the lookups that borrow the arrays
            assert 1.0 < r.latency_s / ((layers + 1) * seq * t) < 1.10
    # nothing forces the rule: at long sequences the softmax becomes the bottleneck stage
    r = _result(host, "hastily", "bert-base", 4096)
    assert r.latency_s / (13 * 4096 * r.extra["t_mvm_s"]) > 1.2


def test_memory_is_linear_for_hastily_and_quadratic_for_the_baseline(host) -> None:
    h = [_result(host, "hastily", "bert-base", s).memory_bytes for s in (1024, 2048, 4096)]
    b = [_result(host, "baseline-cim", "bert-base", s).memory_bytes for s in (1024, 2048, 4096)]
    assert h[1] / h[0] == pytest.approx(2.0, rel=0.01) and h[2] / h[1] == pytest.approx(2.0, rel=0.01)
    assert b[2] / b[1] == pytest.approx(4.0, rel=0.1) and b[1] / b[0] > 3.5


def test_ablation_walks_from_baseline_to_hastily(host) -> None:
    steps = [
        {"lut_exp": "false", "multicore_softmax": "false", "fine_grained_pipeline": "false"},
        {"multicore_softmax": "false", "fine_grained_pipeline": "false"},
        {"fine_grained_pipeline": "false"},
        {},
    ]
    lat = [_result(host, "hastily", "bert-base", 2048, **s).latency_s for s in steps]
    base = _result(host, "baseline-cim", "bert-base", 2048).latency_s
    assert lat[0] == pytest.approx(base)  # the baseline is the hastily model with features off
    assert lat[3] == min(lat) and lat[2] / lat[3] > 4  # the pipeline is the big step
    # the features interact: without multi-core softmax the pipeline is softmax-bound
    no_multicore = _result(host, "hastily", "bert-base", 2048, multicore_softmax="false").latency_s
    assert no_multicore / lat[3] > 2


def test_table_exponent_costs_fewer_vfu_cycles_without_residual(host) -> None:
    # per element: max, subtract, scale, shift, sum, divide (+ r and a multiply for "linear")
    # against max, subtract, sum, divide and a 3-cycle transcendental exp on the VFU
    reg, p = _params(host, fine_grained_pipeline="false", multicore_softmax="false")
    g = op_graph("softmax", host.workload("bert-base"), seq_len=2048)
    lut_none = estimate_point(reg, p.override("exp_residual", "none"), g).latency_s
    exact = estimate_point(reg, p.override("lut_exp", "false"), g).latency_s
    lut_linear = estimate_point(reg, p, g).latency_s
    assert lut_none < exact < lut_linear


def test_exp_residual_changes_cost_and_arithmetic(host) -> None:
    reg, p_lin = _params(host)
    _, p_none = _params(host, exp_residual="none")
    assert reg.spec.arithmetic(p_lin).label() == "int8+lut(linear)"
    assert reg.spec.arithmetic(p_none).label() == "int8+lut(none)"
    e_lin = _result(host, "hastily", "bert-base", 1024).energy_j
    e_none = _result(host, "hastily", "bert-base", 1024, exp_residual="none").energy_j
    assert e_none < e_lin


@pytest.mark.parametrize(("acc", "workload", "seq", "target", "tol"), [
    ("hastily", "bert-base", 1024, 158.0, 0.10),
    ("hastily", "bert-large", 512, 263.0, 0.10),
    ("baseline-cim", "bert-base", 1024, 26.0, 0.15),
])
def test_published_throughput(host, acc: str, workload: str, seq: int, target: float, tol: float) -> None:
    assert _result(host, acc, workload, seq).tops == pytest.approx(target, rel=tol)


def test_published_energy_efficiency(host) -> None:
    h = _result(host, "hastily", "bert-base", 1024)
    b = _result(host, "baseline-cim", "bert-base", 1024)
    assert h.tops_per_w == pytest.approx(8.0, rel=0.20)
    assert b.tops_per_w == pytest.approx(h.tops_per_w, rel=0.15)
    assert h.extra["adc_energy_share"] > 0.5  # ADC energy dominates, as the paper reports


def test_speedup_ranges_overlap_the_papers(host) -> None:
    over_gpu, over_base = [], []
    for workload in ("bert-base", "bert-large"):
        for seq in (128, 256, 512, 1024, 2048, 4096):
            for batch in (1, 2):
                h = _result(host, "hastily", workload, seq, batch)
                over_gpu.append(_result(host, "a40-hf-bnb", workload, seq, batch).latency_s / h.latency_s)
                over_base.append(_result(host, "baseline-cim", workload, seq, batch).latency_s / h.latency_s)
    assert min(over_gpu) <= 9.8 and max(over_gpu) >= 4.4
    assert min(over_base) <= 5.9 and max(over_base) >= 1.7


def test_op_level_graphs(host) -> None:
    reg, p = _params(host)
    w = host.workload("bert-base")
    sm = estimate_point(reg, p, op_graph("softmax", w, seq_len=1024))
    att = estimate_point(reg, p, op_graph("attention", w, seq_len=1024))
    mvm = estimate_point(reg, p, op_graph("mvm", w, seq_len=1, rows=64, cols=64))
    assert sm.ok and att.ok and mvm.ok
    assert att.latency_s > sm.latency_s
    assert mvm.latency_s == pytest.approx(cim.t_mvm(p))


def _golden_points(host) -> dict[str, object]:
    out: dict[str, object] = {}
    for acc in ("hastily", "baseline-cim"):
        for workload, seq, batch in (("bert-base", 512, 1), ("bert-large", 1024, 2), ("bert-tiny", 128, 1)):
            r = _result(host, acc, workload, seq, batch)
            d = r.to_dict()
            out[f"{acc}/{workload}/{seq}/{batch}"] = {
                k: d[k] for k in ("latency_s", "energy_j", "memory_bytes", "tops", "tops_per_w",
                                  "breakdown", "extra", "static_energy_j", "area_mm2")}
    return out


def test_golden_presets(host, request: pytest.FixtureRequest) -> None:
    path = GOLDEN / "cim_presets.json"
    current = _golden_points(host)
    if request.config.getoption("--update-golden"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")
    expected = json.loads(path.read_text())
    assert expected.keys() == current.keys()
    for key, exp in expected.items():
        cur = json.loads(json.dumps(current[key]))
        for field in ("latency_s", "energy_j", "tops", "tops_per_w"):
            assert math.isclose(cur[field], exp[field], rel_tol=1e-9), (key, field)
        assert cur == exp, key


def test_batch_two_streams_twice_the_tokens_without_double_counting_softmax(host) -> None:
    for seq in (1024, 4096):
        b1 = _result(host, "hastily", "bert-base", seq, 1).latency_s
        b2 = _result(host, "hastily", "bert-base", seq, 2).latency_s
        assert 1.5 < b2 / b1 < 2.1  # twice the tokens; each still has h score rows


def test_lookups_borrow_arrays_only_in_the_pipeline(host) -> None:
    def qkv_latency(**overrides: str) -> float:
        r = _result(host, "hastily", "bert-base", 1024, **overrides)
        return next(c.latency_s for c in r.breakdown if c.op == "qkv_proj")

    matrix = {"fine_grained_pipeline": "false"}
    assert qkv_latency(**matrix) == qkv_latency(lut_exp="false", **matrix)
    assert qkv_latency() > qkv_latency(lut_exp="false")
