"""Chip composition and mapping helpers, counted by hand for BERT-Base."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hastily_bench.cim import (
    CellArray,
    Chip,
    capacity,
    chip_capacity,
    example_preset_path,
    load_component_preset,
    map_kv,
    map_matrix,
    map_weights,
)
from hastily_bench.errors import UsageError
from hastily_bench.params import ParamSet

#: BERT-Base weight matrices of one layer (k x n): QKV, attention output, FFN up, FFN down
BERT_BASE = {"qkv": (768, 2304), "out": (768, 768), "ffn1": (768, 3072), "ffn2": (3072, 768)}


@pytest.fixture(scope="module")
def params() -> ParamSet:
    return load_component_preset(example_preset_path("hastily-paper"), consumers=[Chip.param_keys()])


@pytest.fixture(scope="module")
def chip(params: ParamSet) -> Chip:
    return Chip.from_params(params)


@pytest.fixture(scope="module")
def reram(params: ParamSet) -> CellArray:
    p = params.with_values({"array_cell_kind": "reram", "array_cell_bits": 2, "array_lut_entries": 0})
    return CellArray.from_params(p)


def test_bert_base_qkv_on_one_bit_arrays(chip: Chip) -> None:
    m = map_weights(768, 2304, 8, chip.array, chip.macro.arrays)
    assert (m.row_blocks, m.col_blocks, m.slices) == (12, 36, 8)
    assert m.blocks == 432 and m.arrays == 12 * 36 * 8 == 3456
    assert m.macros == 432  # one UCLM (8 arrays) per 64 x 64 INT8 block


def test_reram_two_bit_cells_halve_the_slices(chip: Chip, reram: CellArray) -> None:
    one_bit = map_weights(768, 2304, 8, chip.array, 8)
    two_bit = map_weights(768, 2304, 8, reram, 8)
    assert two_bit.slices == one_bit.slices // 2 == 4
    assert two_bit.arrays == one_bit.arrays // 2
    assert two_bit.macros == 432  # block-aligned: a block's 4 slices in one macro
    assert map_weights(768, 2304, 8, reram, 8, pack=True).macros == 216


def test_ragged_shapes_round_up(chip: Chip) -> None:
    m = map_matrix(65, 1, 3, chip.array, 8)
    assert (m.row_blocks, m.col_blocks, m.slices, m.arrays, m.macros) == (2, 1, 3, 6, 2)
    with pytest.raises(UsageError, match="k must be at least 1"):
        map_matrix(0, 4, 8, chip.array, 8)


@given(k=st.integers(1, 5000), n=st.integers(1, 5000), bits=st.integers(1, 16))
def test_mapping_covers_the_matrix(k: int, n: int, bits: int) -> None:
    arr = CellArray(rows=64, cols=64, cell_bits=1, cell_kind="sram-8t", adcs=1, mvm_energy_j=0, read_energy_j=0,
                    write_energy_j=0, read_cycles=1, write_cycles=1, lookup_cycles=4, lookup_energy_j=0,
                    lut_entries=0, lut_entry_bits=16, cell_area_um2=0.25, cell_area_f2=0, leakage_w=0,
                    clock_hz=1e9)
    m = map_matrix(k, n, bits, arr, 8)
    assert m.arrays * arr.cells >= k * n * bits  # enough cells
    assert (m.row_blocks - 1) * 64 < k and (m.col_blocks - 1) * 64 < n  # no spare block
    assert map_matrix(k, n, bits, arr, 8, pack=True).macros <= m.macros


def test_bert_base_weights_and_kv_fill_the_default_chip(chip: Chip) -> None:
    per_layer = sum(map_weights(k, n, 8, chip.array, 8).macros for k, n in BERT_BASE.values())
    assert per_layer == 432 + 144 + 576 + 576 == 1728
    kv = map_kv(head_dim=64, seq_len=4096, heads=12, batch=1, value_bits=8, array=chip.array,
                arrays_per_macro=8)
    assert (kv.k.row_blocks, kv.k.col_blocks, kv.v.row_blocks, kv.v.col_blocks) == (1, 64, 64, 1)
    assert kv.macros == 12 * (64 + 64) == 1536
    assert kv.k_row_writes_per_token == kv.v_row_writes_per_token == 12 * 1 * 8
    report = chip_capacity(chip, {"weights": 12 * per_layer, "kv": 2 * kv.macros})
    assert report.required_macros == 20736 + 3072 == chip.macros == 23808
    assert report.fits and report.shortfall_macros == 0 and report.utilisation == 1.0
    assert report.summary() == "needs 23808 macros (weights 20736, kv 3072) of 23808 (100%): fits"


def test_capacity_reports_a_shortfall(chip: Chip) -> None:
    kv = map_kv(64, 4097, 12, 1, 8, chip.array, 8)  # one token more: a 65th column block
    report = chip_capacity(chip, {"weights": 20736, "kv": 2 * kv.macros})
    assert not report.fits and report.shortfall_macros == 2 * 12 * 2
    assert report.tiles_required == 187 and "does not fit: 187 tiles needed, 186 available" in report.summary()
    one_matrix = {"w": map_weights(768, 768, 8, chip.array, 8)}  # 144 macros
    assert capacity(one_matrix, macros_per_tile=128, tiles=2).fits
    assert not capacity(one_matrix, macros_per_tile=128, tiles=1).fits
    with pytest.raises(UsageError, match="negative"):
        capacity({"w": -1}, macros_per_tile=128, tiles=1)


def test_chip_counts_and_area_by_hand(chip: Chip) -> None:
    assert (chip.tiles, chip.cores, chip.macros, chip.arrays) == (186, 1488, 23808, 190464)
    area = chip.area_breakdown()
    assert area["cells"] == pytest.approx(190464 * 4096 * 0.25e-6)  # 195.0 mm2
    assert area["vfu"] == pytest.approx(1488 * 16 * 0.004032)
    assert area["shared_memory"] == pytest.approx(186 * 0.086)
    assert chip.area_mm2 == pytest.approx(sum(area.values()))
    assert area["overhead"] == 0.0
    assert chip.weight_bits_capacity == 190464 * 4096


def test_area_overhead_scaling_and_leakage(params: ParamSet, chip: Chip) -> None:
    with_overhead = Chip.from_params(params.override("chip_area_overhead", "0.1"))
    assert with_overhead.area_mm2 == pytest.approx(1.1 * chip.area_mm2)
    doubled = chip.with_tiles(372)
    assert doubled.area_mm2 == pytest.approx(2 * chip.area_mm2)
    assert doubled.leakage_w == pytest.approx(2 * chip.leakage_w)
    assert chip.tiles_for(23809) == 187
    t = chip.tile
    assert chip.leakage_w == pytest.approx(186 * t.leakage_w)
    assert t.leakage_w == pytest.approx(8 * t.core.leakage_w + t.shared_memory.leakage_w + t.router.leakage_w)


def test_macro_mvm_time_and_energy(chip: Chip) -> None:
    m = chip.macro
    front = 1e-9 + 1e-9  # DAC + sample-and-hold
    convert = 64 / 5.67e9  # one ADC converts the 64 columns
    assert m.mvm_s(8) == pytest.approx(front + 8 * max(front, convert) + 1e-9)
    e = m.mvm_energy(8)
    assert e.adc_j == pytest.approx(8 * 8 * 64 * m.adc.energy_j)
    assert e.total_j == pytest.approx(e.adc_j + e.other_j)
    assert m.mvm_energy(8, active_arrays=4).total_j == pytest.approx(e.total_j / 2)
