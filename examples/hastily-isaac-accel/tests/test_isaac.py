"""Tests of the isaac-reram plugin (built on hastily_bench.cim), with hastily_bench.testing."""

from __future__ import annotations

import pytest
from hastily_isaac_accel import model, plugin

from hastily_bench.api import Chip, OpGraph, RMSNorm, Unsupported, build_graph, map_weights
from hastily_bench.testing import (
    check_accelerator_spec,
    check_estimate,
    make_host,
    tiny_graph,
    tiny_workload,
)


@pytest.fixture(scope="module")
def host():  # type: ignore[no-untyped-def]
    return make_host(plugin)


def test_spec_follows_conventions() -> None:
    check_accelerator_spec(plugin.spec())


@pytest.mark.parametrize("seq_len", [16, 128])
def test_estimate_is_sane(host, seq_len: int) -> None:  # type: ignore[no-untyped-def]
    spec = host.accelerator("isaac-reram").spec
    check_estimate(spec, tiny_graph(seq_len))
    check_estimate(spec, build_graph(host.workload("bert-base"), seq_len))


def test_the_chip_is_isaac_ce() -> None:
    chip = Chip.from_params(plugin.default_params())
    assert (chip.tiles, chip.cores, chip.macros, chip.arrays) == (168, 2016, 2016, 16128)
    assert (chip.array.rows, chip.array.cols, chip.array.cell_bits, chip.array.cell_kind) == (128, 128, 2, "reram")
    adc = chip.macro.adc
    assert adc.bits == 8 and adc.energy_j == pytest.approx(16e-3 / 8 / 1.28e9)  # ISAAC's anchor
    assert chip.area_breakdown()["adc"] == pytest.approx(168 * 12 * 0.0096)
    # 8 one-bit input steps, each converting 128 columns on one ADC at 1.28 GS/s (100 ns)
    front = 1e-9 + 1 / 1.2e9  # DAC + one-cycle sample-and-hold
    assert chip.macro.mvm_s(8) == pytest.approx(front + 8 * 100e-9 + 1 / 1.2e9)


def test_int8_weights_on_two_bit_cells_pack_two_blocks_per_ima() -> None:
    chip = Chip.from_params(plugin.default_params())
    m = map_weights(768, 2304, 8, chip.array, chip.macro.arrays, pack=True)
    assert (m.row_blocks, m.col_blocks, m.slices, m.arrays, m.macros) == (6, 18, 4, 432, 54)


def test_bert_base_needs_a_scaled_chip_or_is_unsupported(host) -> None:  # type: ignore[no-untyped-def]
    spec = host.accelerator("isaac-reram").spec
    graph = build_graph(host.workload("bert-base"), 128)
    est = spec.estimate(graph, spec.params)
    # 12 layers x 216 IMAs of weights + 24 of K/V: 2616 > 2016, so 218 tiles
    assert est.extra["imas_required"] == 12 * (54 + 18 + 72 + 72) + 24 == 2616
    assert est.extra["chip_scaled"] is True and est.extra["tiles"] == 218
    assert any("scaled from 168 to 218 tiles" in n for n in est.notes)
    strict = spec.params.override("model_scale_to_fit", "false")
    with pytest.raises(Unsupported, match="does not fit: 218 tiles needed, 168 available"):
        spec.estimate(graph, strict)
    assert spec.estimate(build_graph(host.workload("bert-mini"), 128), strict).extra["chip_scaled"] is False


def test_adc_bits_move_energy_and_latency(host) -> None:  # type: ignore[no-untyped-def]
    spec = host.accelerator("isaac-reram").spec
    graph = build_graph(host.workload("bert-mini"), 128)
    base = spec.estimate(graph, spec.params)
    more = spec.estimate(graph, spec.params.override("adc_bits", "9"))
    assert more.energy_j > base.energy_j and more.latency_s > base.latency_s


def test_ops_without_a_rule_are_unsupported_by_name(host) -> None:  # type: ignore[no-untyped-def]
    spec = host.accelerator("isaac-reram").spec
    norm = RMSNorm(name="rms_norm", rows=16, row_len=64)
    assert not model.rules.supports(norm)
    graph = OpGraph(workload=tiny_workload(), seq_len=16, batch=1, layer_ops=(norm,))
    with pytest.raises(Unsupported, match="no cost rule for op 'rms_norm'"):
        spec.estimate(graph, spec.params)
