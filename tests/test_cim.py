"""The CIM cost model v2: components, mapping, capacity, softmax mapping, schedules, monotonicity."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hastily_bench.plugins import cim
from hypothesis import given, settings
from hypothesis import strategies as st

from hastily_bench.api import build_graph, configured_accelerator, estimate_point, op_graph
from hastily_bench.cim.components import survey_adc_energy_j

GOLDEN = Path(__file__).parent / "golden"


def _params(host, acc: str = "hastily", **overrides: str):  # type: ignore[no-untyped-def]
    return configured_accelerator(host, acc, {acc: overrides} if overrides else None)


def _result(host, acc: str, workload: str, seq: int, batch: int = 1, **overrides: str):  # type: ignore[no-untyped-def]
    reg, params = _params(host, acc, **overrides)
    return estimate_point(reg, params, build_graph(host.workload(workload), seq, batch))


def _softmax_row(host, acc: str, **overrides: str) -> float:  # type: ignore[no-untyped-def]
    reg, p = _params(host, acc, **overrides)
    r = estimate_point(reg, p, op_graph("softmax", host.workload("bert-base"), seq_len=8192, rows=1))
    assert r.ok, r.error
    return r.latency_s


def test_t_mvm_from_the_macro(host) -> None:
    _, p = _params(host)
    c = cim.chip(p)
    front = 1e-9 + 1e-9  # 1-bit DAC + one sample-and-hold cycle
    convert = 64 / p.f("adc_sample_rate_hz")  # one ADC per array, 64 columns, at ref_bits
    assert c.macro.mvm_s(8) == pytest.approx(front + 8 * max(front, convert) + 1e-9)
    r = _result(host, "hastily", "bert-base", 128)
    assert r.extra["t_mvm_s"] == pytest.approx(c.macro.mvm_s(8))


def test_mapping_of_bert_base(host) -> None:
    _, p = _params(host)
    g = build_graph(host.workload("bert-base"), 1024, 1)
    m = cim.map_model(g, p, cim.chip(p), cim.SCHEDULES["pipeline"])
    # 64x64 INT8 blocks, one UCLM (8 one-bit arrays) each: (12*36 + 12*12 + 12*48 + 48*12) per layer
    assert m.weight_macros == 12 * 1728
    # K^T and V of 12 heads, 16 blocks each; two layers alive in the pipeline, one in the matrix
    assert m.kv_macros == 2 * 2 * 12 * 16
    assert cim.map_model(g, p, cim.chip(p), cim.SCHEDULES["matrix"]).kv_macros == 2 * 12 * 16
    assert not m.scaled and m.streamed_weight_bytes == 0


def test_capacity_policies(host) -> None:
    # stream (the default): a chip of the preset's size streams the weights that do not fit
    r = _result(host, "hastily", "bert-large", 512)
    assert r.ok and r.extra["capacity_policy"] == "stream" and r.extra["chip_scaled"] is False
    assert r.extra["streamed_weight_bytes"] > 0
    assert any(c.op == "weight_streaming" and c.category == "memory" for c in r.breakdown)
    # scale: the chip grows and says so, in the result and in its area
    s = _result(host, "hastily", "bert-large", 512, capacity="scale", max_area_mm2="5000")
    assert s.ok and s.extra["chip_scaled"] is True and s.area_mm2 > r.area_mm2
    assert any("SCALED" in n for n in s.notes)
    assert s.latency_s < r.latency_s  # no streaming
    # a scaled chip beyond one reticle, or the refusing policy: unsupported with the numbers
    big = _result(host, "hastily", "bert-large", 512, capacity="scale")
    assert big.status == "unsupported" and "max_area_mm2" in big.error
    no = _result(host, "hastily", "bert-large", 512, capacity="unsupported")
    assert no.status == "unsupported" and "needs" in no.error and "macros" in no.error


def test_tops_have_a_ceiling(host) -> None:
    """Long sequences do not buy throughput by silently growing the chip (issue: 3,138 TOPS)."""
    r = _result(host, "hastily", "bert-base", 65536)
    assert r.status == "unsupported" or r.tops < 300


def test_pipeline_latency_emerges_as_n_plus_one_l_tmvm(host) -> None:
    for workload, layers, seq in (("bert-base", 12, 512), ("bert-base", 12, 1024),
                                  ("bert-large", 24, 512)):
        r = _result(host, "hastily", workload, seq, capacity="scale", max_area_mm2="5000")
        # the excess: pipeline fill, the lookups that borrow the K^T arrays, and at l = 1024
        # the softmax stage (8 chunks of 13 cycles per token on 9 cores) just above T_MVM
        assert 1.0 < r.latency_s / ((layers + 1) * seq * r.extra["t_mvm_s"]) < 1.2
    # nothing forces the rule: at long sequences the softmax becomes the bottleneck stage
    r = _result(host, "hastily", "bert-base", 4096)
    assert r.latency_s / (13 * 4096 * r.extra["t_mvm_s"]) > 1.5


def test_memory_is_linear_for_hastily_and_quadratic_for_the_baseline(host) -> None:
    h = [_result(host, "hastily", "bert-base", s).memory_bytes for s in (1024, 2048, 4096)]
    b = [_result(host, "baseline-cim", "bert-base", s).memory_bytes for s in (1024, 2048, 4096)]
    assert h[1] / h[0] == pytest.approx(2.0, rel=0.01) and h[2] / h[1] == pytest.approx(2.0, rel=0.01)
    assert b[2] / b[1] == pytest.approx(4.0, rel=0.1) and b[1] / b[0] > 3.5


def test_stored_scores_spill_off_chip_beyond_the_global_buffer(host) -> None:
    fits = _result(host, "baseline-cim", "bert-base", 1024)
    spills = _result(host, "baseline-cim", "bert-base", 2048)
    assert fits.extra["scores_offchip_bytes"] == 0 and spills.extra["scores_offchip_bytes"] > 0
    # the global buffer is part of the chip whatever the schedule: the same chip, the same area
    assert fits.area_mm2 == _result(host, "hastily", "bert-base", 1024).area_mm2


def test_ablation_walks_from_baseline_to_hastily(host) -> None:
    steps = host.accelerator("hastily").spec.ablation
    assert [label for label, _ in steps][0] == "baseline" and steps[-1][1] == {}
    lat = [_result(host, "hastily", "bert-base", 1024, **dict(s)).latency_s for _, s in steps]
    base = _result(host, "baseline-cim", "bert-base", 1024).latency_s
    assert lat[0] == pytest.approx(base)  # the baseline is the hastily model with features off
    assert lat[-1] == min(lat) and lat[-2] / lat[-1] > 4  # the pipeline is the big step


def test_softmax_study_of_fig7(host) -> None:
    base = _softmax_row(host, "baseline-cim")
    lut = _softmax_row(host, "hastily", multicore_softmax="false")
    multi = _softmax_row(host, "hastily")
    for value, paper in ((base, 22.13e-6), (lut, 6e-6), (multi, 1.36e-6)):
        assert value == pytest.approx(paper, rel=0.15)
    assert base / lut > 3 and lut / multi > 4


def test_softmax_mapping_is_derived_from_the_mapping(host) -> None:
    reg, p = _params(host)
    g = op_graph("softmax", host.workload("bert-base"), seq_len=8192, rows=1)
    r = estimate_point(reg, p, g)
    R = p.i("softmax_cores_per_row")
    assert r.extra["softmax_row_cores"] == min(R, 8192 // 64)
    assert r.extra["softmax_spread"] == r.extra["softmax_row_cores"]
    assert r.extra["softmax_per_core"] == math.ceil(8192 / R)
    assert r.extra["softmax_tree_levels"] == math.ceil(math.log2(min(R, 128)))
    # per 16-element chunk: max, subtract, sum, normalise + the fixed-point table exponent
    # (mul, floor, shift, mask, shift) on the VFU, and a 4-cycle lookup
    assert r.extra["softmax_cycles_per_chunk"] == 4 + 5 + 4
    _, pb = _params(host, "baseline-cim")
    rb = estimate_point(reg, pb, g)
    assert rb.extra["softmax_spread"] == 1
    degree = pb.i("vfu_exp_poly_degree")
    assert rb.extra["softmax_cycles_per_chunk"] == 4 + 3 + 2 * degree + 1


def test_adc_bits_follow_the_survey_model(host) -> None:
    lo, hi = (_result(host, "hastily", "bert-base", 1024, adc_bits=str(b)) for b in (6, 8))
    assert hi.energy_j > lo.energy_j and hi.area_mm2 > lo.area_mm2
    # the macro is ADC-bound at 6 bits: a SAR ADC converts bit by bit, so 8 bits is slower
    _, p = _params(host)
    assert cim.chip(p).macro.adc_bound()
    assert hi.latency_s > lo.latency_s
    # energy per conversion as the cited model scales it (4x per bit, and the rate law)
    _, p8 = _params(host, adc_bits="8")
    a6, a8 = cim.chip(p).macro.adc, cim.chip(p8).macro.adc
    expected = survey_adc_energy_j(8, a8.rate_hz) / survey_adc_energy_j(6, a6.rate_hz)
    assert a8.energy_j / a6.energy_j == pytest.approx(expected)
    assert a8.rate_hz == pytest.approx(a6.rate_hz * 6 / 8)


def test_lut_entries_change_the_table(host) -> None:
    _, p = _params(host)
    _, p64 = _params(host, array_lut_entries="64")
    assert cim.chip(p).array.lut_rows == 32 and cim.chip(p64).array.lut_rows == 16
    r = _result(host, "hastily", "bert-base", 512)
    r64 = _result(host, "hastily", "bert-base", 512, array_lut_entries="64")
    assert r.extra["lut_rows"] == 32 and r64.extra["lut_rows"] == 16
    assert r64.extra["lut_table_error_bound"] == pytest.approx(2 * r.extra["lut_table_error_bound"], rel=0.01)
    reg, _ = _params(host)
    assert reg.spec.arithmetic(p64).lut_entries == 64
    # a table larger than one array's rows spans several arrays: fewer copies per core
    _, p2k = _params(host, array_lut_entries="2048")
    assert cim.chip(p2k).array.lut_arrays == 8
    big = _result(host, "hastily", "bert-base", 512, array_lut_entries="2048")
    assert big.ok and big.extra["lut_arrays"] == 8 and big.extra["lut_table_error_bound"] < r.extra[
        "lut_table_error_bound"]


def test_static_energy_is_leakage_of_the_chip_in_use(host) -> None:
    gated = _result(host, "hastily", "bert-base", 1024)
    ungated = _result(host, "hastily", "bert-base", 1024, power_gating="false")
    assert 0 < gated.static_energy_j < ungated.static_energy_j
    assert ungated.static_energy_j == pytest.approx(ungated.extra["leakage_w"] * ungated.latency_s)


def test_published_energy_efficiency(host) -> None:
    h = _result(host, "hastily", "bert-base", 1024)
    assert h.extra["adc_energy_share"] > 0.5  # ADC energy dominates, as the paper reports


@settings(max_examples=40, deadline=None)
@given(acc=st.sampled_from(["hastily", "baseline-cim"]), seq=st.integers(1, 8191),
       step=st.integers(1, 64), batch=st.integers(1, 3))
def test_monotone_in_the_work(host, acc: str, seq: int, step: int, batch: int) -> None:
    """Latency and energy never fall when the sequence or the batch grows."""
    a = _result(host, acc, "bert-base", seq, batch)
    b = _result(host, acc, "bert-base", min(8192, seq + step), batch)
    c = _result(host, acc, "bert-base", seq, batch + 1)
    for x, y in ((a, b), (a, c)):
        if x.ok and y.ok:
            assert y.latency_s >= x.latency_s * (1 - 1e-12)
            assert y.energy_j >= x.energy_j * (1 - 1e-12)


def test_monotone_over_a_dense_range(host) -> None:
    """The issue's artefact (BERT-Base, l = 3520 vs 3521) and a dense scan of both chips."""
    for acc in ("hastily", "baseline-cim"):
        prev = None
        for seq in range(3400, 3600, 7):
            r = _result(host, acc, "bert-base", seq)
            if prev is not None:
                assert r.latency_s >= prev.latency_s and r.energy_j >= prev.energy_j, (acc, seq)
            prev = r


def test_op_level_graphs(host) -> None:
    reg, p = _params(host)
    w = host.workload("bert-base")
    sm = estimate_point(reg, p, op_graph("softmax", w, seq_len=1024))
    att = estimate_point(reg, p, op_graph("attention", w, seq_len=1024))
    mvm = estimate_point(reg, p, op_graph("mvm", w, seq_len=1, rows=64, cols=64))
    assert sm.ok and att.ok and mvm.ok
    assert att.latency_s > sm.latency_s
    assert mvm.latency_s == pytest.approx(cim.chip(p).macro.mvm_s(8))


def test_schedules_are_strategies(host) -> None:
    assert set(cim.SCHEDULES) == {"pipeline", "matrix"}
    _, p = _params(host)
    assert set(p["schedule"].choices or ()) == set(cim.SCHEDULES)
    from hastily_bench.errors import UsageError

    with pytest.raises(UsageError, match="lut_exp=true needs a lookup table"):
        _result(host, "hastily", "bert-base", 128, lut_exp="true", array_lut_entries="0")


def _golden_points(host) -> dict[str, object]:  # type: ignore[no-untyped-def]
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


def test_op_softmax_rows_are_monotone_and_meet_the_layer(host) -> None:
    """More score rows never take less time; all rows of a layer equal the streamed layer."""
    reg, p = _params(host)
    w = host.workload("bert-base")
    prev = 0.0
    for rows in (1, 2, 11, 12, 13, 100, 1023, 1024, 1025, 8191, 12 * 1024):
        r = estimate_point(reg, p, op_graph("softmax", w, seq_len=1024, rows=rows))
        assert r.ok and r.latency_s >= prev, rows
        prev = r.latency_s
    full = estimate_point(reg, p, op_graph("softmax", w, seq_len=1024))
    assert full.latency_s == pytest.approx(prev)


def test_op_level_graphs_run_on_the_chip_that_holds_the_model(host) -> None:
    reg, p = _params(host)
    att = estimate_point(reg, p, op_graph("attention", host.workload("bert-base"), seq_len=2048))
    run = _result(host, "hastily", "bert-base", 2048)
    assert att.extra["uclms_weights"] == run.extra["uclms_weights"] == 12 * 1728
    # streaming the weights is the model's cost, not an op's
    assert not any(c.op == "weight_streaming" for c in att.breakdown)


def test_softmax_rows_longer_than_r_cores_hold_use_more_cores(host) -> None:
    reg, p = _params(host)
    R = p.i("softmax_cores_per_row")
    long = estimate_point(reg, p, op_graph("softmax", host.workload("bert-tiny"), seq_len=65536, rows=1))
    assert long.ok, long.error
    assert long.extra["softmax_row_cores"] == max(R, 65536 // 64 // 16)
    assert long.extra["softmax_per_core"] == 16 * 64  # a full core of one head's blocks


def test_other_table_sizes_are_not_measured_by_the_128_entry_kernels(host) -> None:
    reg, p = _params(host, array_lut_entries="64")
    r = estimate_point(reg, p, build_graph(host.workload("bert-tiny"), 64, 1), numerics="sample")
    assert r.ok and r.attn_rel_error is None
    assert any("128-entry" in n for n in r.notes)
    reg, p = _params(host)
    r = estimate_point(reg, p, build_graph(host.workload("bert-tiny"), 64, 1), numerics="sample")
    assert r.attn_rel_error is not None


def test_shared_weights_are_held_once(host) -> None:
    """ALBERT repeats one layer's weights: a CIM chip holds them once."""
    import dataclasses

    base = host.workload("bert-base")
    albert = dataclasses.replace(base, name="albert-like", weight_layers=1)
    reg, p = _params(host)
    a = estimate_point(reg, p, build_graph(albert, 512, 1))
    b = estimate_point(reg, p, build_graph(base, 512, 1))
    assert a.extra["uclms_weights"] == 1728 and b.extra["uclms_weights"] == 12 * 1728
    assert a.ops == b.ops  # the same work


def test_a_third_schedule_needs_no_edit_of_the_others(host, monkeypatch: pytest.MonkeyPatch) -> None:
    """A schedule is a strategy: register a new one and pick it with the parameter's choices."""
    import dataclasses
    from typing import ClassVar

    from hastily_bench.params import ParamSet

    @dataclasses.dataclass(frozen=True)
    class Serial(cim.Schedule):
        """Op by op like `matrix`, but scores stay in flight like `pipeline` (one row at a time)."""

        name: ClassVar[str] = "serial"

        def latencies(self, graph, stages):  # type: ignore[no-untyped-def]
            return cim.MatrixSchedule().latencies(graph, stages)

        def memory_bytes(self, graph, p):  # type: ignore[no-untyped-def]
            return cim.PipelineSchedule().memory_bytes(graph, p)

        def softmax_stage(self, op, sm, ctx, stage):  # type: ignore[no-untyped-def]
            stage.occupancy_s, stage.fill_s = sm.row_s, 0.0
            return stage

    monkeypatch.setitem(cim.SCHEDULES, "serial", Serial())
    reg, p = _params(host)
    sched = dataclasses.replace(p["schedule"], value="serial",
                                choices=(*(p["schedule"].choices or ()), "serial"))
    p2 = ParamSet([sched if q.name == "schedule" else q for q in p.values()])
    g = build_graph(host.workload("bert-base"), 512, 1)
    r = estimate_point(reg, p2, g)
    assert r.ok and r.extra["schedule"] == "serial"
    pipe, matrix = estimate_point(reg, p, g), _result(host, "hastily", "bert-base", 512, schedule="matrix")
    assert pipe.latency_s < r.latency_s and r.memory_bytes == pipe.memory_bytes < matrix.memory_bytes


# -- memoisation: a sweep shares chips, mappings and stages between points ------------------

#: Overrides that touch the chip, the mapping, the softmax mapping and the model's own
#: parameters, so every memo key is exercised with neighbours that differ in one place.
_MEMO_AXES = {
    "adc_bits": ["4", "6", "8"],
    "vfu_lanes": ["8", "32"],
    "clock_hz": ["1e9", "1.5e9"],
    "softmax_cores_per_row": ["4", "12"],
    "score_bytes": ["1", "2"],
    "multicore_softmax": ["true", "false"],
    "lut_exp": ["true", "false"],
    "schedule": ["pipeline", "matrix"],
    "input_bits": ["4", "8"],
    "layernorm_vfu_ops": ["4", "9"],
    "capacity": ["stream", "scale"],
    # the arrays' shape and the macro's arrays fix the model's macro counts (memoised apart)
    "array_rows": ["64", "128"],
    "chip_arrays_per_macro": ["8", "4"],
    "array_adcs": ["1", "4"],
    # the matrix schedule stores scores in the global buffer: its size and energy enter the
    # attention products' energies (memoised per chip with these in the key)
    "global_buffer_bytes": ["67108864", "1048576"],
    "global_buffer_energy_j_per_byte": ["0.54e-12", "2e-12"],
}


def test_memoised_estimates_equal_fresh_ones(host) -> None:  # type: ignore[no-untyped-def]
    """Points evaluated in one process, in an order where each shares caches with the
    previous ones, equal the same points each evaluated with every cache emptied."""
    import random

    rng = random.Random(7)
    points = [({k: rng.choice(v) for k, v in _MEMO_AXES.items()}, rng.choice([128, 512]),
               rng.choice(["hastily", "baseline-cim"])) for _ in range(60)]
    # neighbours that differ in one parameter only, to hit the shared entries
    points += [({**o, k: v}, seq, acc) for (o, seq, acc) in points[:20]
               for k, vs in list(_MEMO_AXES.items())[:6] for v in vs[:1]]
    graphs = {seq: build_graph(host.workload("bert-base"), seq) for seq in (128, 512)}

    def one(o: dict[str, str], seq: int, acc: str) -> dict[str, object]:
        reg, p = configured_accelerator(host, acc, {acc: o})
        return estimate_point(reg, p, graphs[seq]).to_dict()

    cim.clear_caches()
    warm = [one(*pt) for pt in points]
    fresh = []
    for pt in points:
        cim.clear_caches()
        fresh.append(one(*pt))
    assert warm == fresh
    assert len({json.dumps(r, sort_keys=True) for r in warm}) > 40  # the points differ
    # the stored scores of the matrix schedule: points that differ in the global buffer only
    g = build_graph(host.workload("bert-base"), 1024)
    pairs = [{"schedule": "matrix", "global_buffer_bytes": b, "global_buffer_energy_j_per_byte": e}
             for b in ("67108864", "8388608") for e in ("0.54e-12", "5e-12")]

    def at_1024(o: dict[str, str]) -> dict[str, object]:
        reg, p = configured_accelerator(host, "hastily", {"hastily": o})
        return estimate_point(reg, p, g).to_dict()

    cim.clear_caches()
    warm = [at_1024(o) for o in pairs]
    fresh = []
    for o in pairs:
        cim.clear_caches()
        fresh.append(at_1024(o))
    assert warm == fresh and len({r["energy_j"] for r in warm}) == len(pairs)  # type: ignore[misc]


def test_chips_are_shared_between_points_that_agree_on_the_chip(host) -> None:  # type: ignore[no-untyped-def]
    cim.clear_caches()
    a, b = _params(host, softmax_cores_per_row="4")[1], _params(host, softmax_cores_per_row="12")[1]
    assert cim.chip(a) is cim.chip(b)
    assert cim.chip(_params(host, adc_bits="4")[1]) is not cim.chip(a)
