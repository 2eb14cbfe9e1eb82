"""Unit behaviour of the CIM components (hastily_bench.cim.components)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hastily_bench.cim import (
    ADC,
    DAC,
    VFU,
    CellArray,
    Chip,
    ExpRoutine,
    RegisterFile,
    Router,
    SharedMemory,
    Tech,
    area_factor,
    energy_factor,
    example_preset_path,
    exp_table_max_rel_error,
    load_component_preset,
    survey_adc_area_mm2,
    survey_adc_energy_j,
)
from hastily_bench.errors import UsageError
from hastily_bench.params import ParamSet

PUMA_6BIT_RATE = 128 / 75e-9  # PUMA: 128 conversions in 75 ns
PUMA_6BIT_ENERGY = 1.35e-3 * 75e-9 / 128  # 1.35 mW over 75 ns, per conversion


@pytest.fixture(scope="module")
def params() -> ParamSet:
    return load_component_preset(example_preset_path("hastily-paper"), consumers=[Chip.param_keys()])


def adc(bits: int = 6, rate: float = PUMA_6BIT_RATE, law: str = "fixed", node: float = 32.0) -> ADC:
    return ADC(bits=bits, sample_rate_hz=rate, rate_law=law, ref_bits=6, ref_sample_rate_hz=PUMA_6BIT_RATE,
               ref_energy_j=PUMA_6BIT_ENERGY, ref_area_mm2=0.0012, ref_leakage_w=0.15e-3,
               ref_node_nm=32.0, node_nm=node)


# --- ADC ---------------------------------------------------------------------------------

def test_adc_reproduces_the_puma_6bit_point_by_construction() -> None:
    a = adc()
    assert a.energy_j == pytest.approx(0.791e-12, rel=1e-3)
    assert a.power_w == pytest.approx(1.35e-3)
    assert a.area_mm2 == pytest.approx(0.0012)
    assert a.leakage_w == pytest.approx(0.15e-3)
    assert a.conversion_s * 128 == pytest.approx(75e-9)


def test_survey_model_values_and_the_ratio_to_puma() -> None:
    # Schreier FOM bound at 1.707 GS/s: 302.74 - 6.461 ln(f) = 165.4 dB; SNDR(6 b) = 37.88 dB
    foms = 302.7387019052544 - 6.460790934271676 * math.log(PUMA_6BIT_RATE)
    assert foms == pytest.approx(165.40, abs=0.01)
    e = survey_adc_energy_j(6, PUMA_6BIT_RATE)
    assert e == pytest.approx(1 / (2 * 10 ** ((foms - 37.88) / 10)), rel=1e-3)
    # PUMA's ADC costs ~8.9x the survey's best-case energy and ~0.90x its area
    assert PUMA_6BIT_ENERGY / e == pytest.approx(8.92, rel=0.01)
    assert 0.0012 / survey_adc_area_mm2(6, PUMA_6BIT_RATE, 32) == pytest.approx(0.898, rel=0.01)


def test_adc_energy_quadruples_per_bit_at_a_fixed_rate() -> None:
    # SNDR grows 6.02 dB per bit and the FOM bound does not depend on the bits: x10^0.602
    for b in range(4, 12):
        assert adc(b + 1).energy_j / adc(b).energy_j == pytest.approx(10 ** 0.60206, rel=1e-6)


def test_energy_below_the_knee_does_not_depend_on_the_rate() -> None:
    # the FOM bound is capped at 180.14 dB below exp((302.74 - 180.14) / 6.461) ~ 174 MHz
    assert survey_adc_energy_j(8, 1e6) == pytest.approx(survey_adc_energy_j(8, 1e8))
    assert survey_adc_energy_j(8, 1e9) > survey_adc_energy_j(8, 1e8)


@given(bits=st.integers(4, 15), rate=st.floats(1e6, 2e10), law=st.sampled_from(["sar", "fixed"]))
def test_adc_energy_and_area_rise_with_bits(bits: int, rate: float, law: str) -> None:
    lo, hi = adc(bits, rate, law), adc(bits + 1, rate, law)
    assert hi.energy_j > lo.energy_j
    assert hi.area_mm2 > lo.area_mm2
    assert hi.conversion_s >= lo.conversion_s


def test_sar_rate_law_makes_conversion_time_linear_in_bits() -> None:
    assert adc(8, law="sar").conversion_s / adc(6, law="sar").conversion_s == pytest.approx(8 / 6)
    assert adc(8, law="fixed").conversion_s == adc(6, law="fixed").conversion_s


def test_adc_area_follows_the_survey_node_exponent() -> None:
    assert adc(node=16.0).area_mm2 / adc(node=32.0).area_mm2 == pytest.approx(0.5 ** 0.797324, rel=1e-6)
    assert adc(node=16.0).energy_j == adc(node=32.0).energy_j  # the fitted bound has no node term


def test_adc_rejects_bad_rate_law_and_bits_outside_the_survey() -> None:
    with pytest.raises(UsageError, match="adc_rate_law"):
        adc(law="flash")
    with pytest.raises(UsageError, match="covers 4 bits and more"):
        adc(bits=3)


def test_set_adc_bits_changes_energy_area_and_adc_bound_latency(params: ParamSet) -> None:
    chips = {b: Chip.from_params(params.override("adc_bits", str(b))) for b in (4, 6, 8)}
    e = {b: c.macro.mvm_energy(8).adc_j for b, c in chips.items()}
    area = {b: c.area_mm2 for b, c in chips.items()}
    t = {b: c.macro.mvm_s(8) for b, c in chips.items()}
    assert e[4] < e[6] < e[8] and area[4] < area[6] < area[8]
    assert all(c.macro.adc_bound() for c in chips.values())  # 64 conversions per step > 2 ns front end
    assert t[4] < t[6] < t[8]


# --- DAC, array ----------------------------------------------------------------------------

def test_dac_units_and_steps() -> None:
    one = DAC(bits=1, latency_s=1e-9, unit_energy_j=3.5e-15, unit_area_mm2=1.67e-7, unit_leakage_w=0.0)
    two = DAC(bits=2, latency_s=1e-9, unit_energy_j=3.5e-15, unit_area_mm2=1.67e-7, unit_leakage_w=0.0)
    assert two.energy_j == pytest.approx(3 * one.energy_j) and two.area_mm2 == pytest.approx(3 * one.area_mm2)
    assert one.steps(8) == 8 and two.steps(8) == 4 and two.steps(7) == 4
    assert two.latency_s == one.latency_s


def _array(params: ParamSet, **values: object) -> CellArray:
    p = params
    for k, v in values.items():
        p = p.override(f"array_{k}", str(v))
    return CellArray.from_params(p)


def test_lookup_table_rows_and_capacity(params: ParamSet) -> None:
    a = _array(params)
    assert (a.lut_entries, a.lut_entry_bits, a.lut_bits) == (128, 16, 2048)
    assert a.lut_entries_per_row == 4 and a.lut_rows == 32  # 2048 bits = 32 rows of 64
    assert a.lut_capacity_entries == 256 and a.lut_index_bits == 7
    assert a.lookup_s == pytest.approx(4e-9)
    b = _array(params, lut_entries=256)
    assert b.lut_rows == 64 and b.lut_index_bits == 8
    assert _array(params, lut_entries=64).lut_rows == 16


def test_table_larger_than_the_array_spans_arrays(params: ParamSet) -> None:
    big = _array(params, lut_entries=512)  # 512 x 16 bits = 128 rows of 64 columns
    assert big.lut_rows == 128 and big.lut_arrays == 2
    assert _array(params, lut_entries=128).lut_arrays == 1 and _array(params, lut_entries=0).lut_arrays == 0


def test_cell_kind_rules(params: ParamSet) -> None:
    with pytest.raises(UsageError, match="sram-8t cell holds one bit"):
        _array(params, cell_bits=2)
    with pytest.raises(UsageError, match="needs sram-8t cells"):
        _array(params, cell_kind="reram", cell_bits=2)
    r = _array(params, cell_kind="reram", cell_bits=2, lut_entries=0)
    assert r.slices(8) == 4 and r.bits_capacity == 2 * 64 * 64 and not r.supports_lookup
    with pytest.raises(UsageError, match="no lookup table"):
        _ = r.lookup_s


def test_cell_area_in_um2_or_f2(params: ParamSet) -> None:
    a = _array(params)
    assert a.area_mm2 == pytest.approx(4096 * 0.25e-6)
    f = _array(params, cell_area_f2=100.0)  # 100 F^2 at 32 nm = 0.1024 um^2
    assert f.cell_area_mm2 == pytest.approx(100 * (32e-6) ** 2)


# --- VFU -----------------------------------------------------------------------------------

def test_exp_routine_is_built_of_elementary_steps(params: ParamSet) -> None:
    vfu = VFU.from_params(params)
    for degree in (3, 6, 9):
        poly = ExpRoutine("polynomial", poly_degree=degree)
        # range reduction (mul, floor, sub) + Horner (degree x (mul + add)) + scale by 2^n
        assert vfu.exp_cycles(poly) == 3 + 2 * degree + 1
    # fixed point: t = x entries / ln2 (mul), m = floor(t), n = m >> log2(entries) (shift),
    # d = m mod entries (mask, an add), the read, scale by 2^n (shift)
    table = ExpRoutine("table", residual="none", table_cycles=2)
    assert table.steps() == {"mul": 1, "floor": 1, "add": 1, "table": 2, "shift": 2}
    assert vfu.exp_cycles(table) == 7 and vfu.exp_cycles(table, external_table=True) == 5
    hastily = ExpRoutine("table", residual="linear")
    assert vfu.exp_cycles(hastily, external_table=True) == 9  # + sub, mul, mul, add for 1 + r
    assert vfu.exp_cycles() == 16  # the preset's degree-6 polynomial


def test_exp_cycles_follow_the_elementary_op_cycles(params: ParamSet) -> None:
    slow_mul = VFU.from_params(params.override("vfu_mul_cycles", "4"))
    fast = VFU.from_params(params)
    steps = fast.exp_steps()
    assert slow_mul.exp_cycles() - fast.exp_cycles() == 3 * steps["mul"]
    assert slow_mul.exp_energy_j() == pytest.approx(fast.exp_energy_j())


def test_vfu_aliases_time_and_unknown_op(params: ParamSet) -> None:
    vfu = VFU.from_params(params)
    assert vfu.op_cycles("sub") == vfu.op_cycles("add") and vfu.op_energy_j("cmp") == vfu.op_energy_j("max")
    assert vfu.time_s(8192, 4) == pytest.approx(512 * 4e-9)  # 16 lanes, 1 GHz
    with pytest.raises(UsageError, match="unknown VFU operation 'sqrt'"):
        vfu.op_cycles("sqrt")
    with pytest.raises(UsageError, match="exponent method"):
        ExpRoutine("cordic")


# --- memories, router, node scaling -----------------------------------------------------------

def test_memory_area_and_leakage_linear_in_size(params: ParamSet) -> None:
    m = SharedMemory.from_params(params)
    big = SharedMemory.from_params(params.override("shared_memory_bytes", "131072"))
    assert m.area_mm2 == pytest.approx(0.086) and big.area_mm2 == pytest.approx(2 * m.area_mm2)
    assert big.leakage_w == pytest.approx(2 * m.leakage_w)
    assert m.transfer_s(64) == pytest.approx((2 + 2) * 1e-9) and m.transfer_s(0) == 0.0
    r = RegisterFile.from_params(params)
    assert r.area_mm2 == pytest.approx(0.00192)


@pytest.mark.parametrize(("cores", "levels"), [(1, 0), (2, 1), (3, 2), (8, 3), (9, 4), (1024, 10)])
def test_tree_reduction_levels(cores: int, levels: int, params: ParamSet) -> None:
    r = Router.from_params(params)
    assert Router.tree_levels(cores) == levels
    assert r.tree_reduce_s(cores, 4) == pytest.approx(levels * (31 + 1) * 1e-9)


@given(st.integers(2, 1 << 20))
def test_tree_levels_are_the_smallest_covering_power_of_two(cores: int) -> None:
    n = Router.tree_levels(cores)
    assert 2 ** (n - 1) < cores <= 2 ** n


def test_node_scaling() -> None:
    assert area_factor(32, 32) == energy_factor(32, 32) == 1.0
    assert area_factor(32, 65) == pytest.approx(1 / 3.3, rel=1e-6)  # Stillmaker & Baas 32 nm row
    nodes = [180, 130, 90, 65, 45, 40, 32, 28, 22, 16, 10, 7, 5]
    areas = [area_factor(n, 32) for n in nodes]
    energies = [energy_factor(n, 32) for n in nodes]
    assert areas == sorted(areas, reverse=True) and energies == sorted(energies, reverse=True)
    assert Tech(node_nm=16).area < 1 < Tech(node_nm=65).area


def test_components_scale_with_the_node(params: ParamSet) -> None:
    at32 = Chip.from_params(params)
    at16 = Chip.from_params(params.override("tech_node_nm", "16.0"))
    assert at16.area_mm2 < at32.area_mm2
    assert at16.core.vfu.op_energy_j("add") < at32.core.vfu.op_energy_j("add")
    assert at16.macro.mvm_s(8) == at32.macro.mvm_s(8)  # latency is not node-scaled


def test_table_error_falls_with_entries_and_the_residual() -> None:
    assert exp_table_max_rel_error(128) == pytest.approx(2 ** (1 / 128) - 1)  # 0.54 %
    assert exp_table_max_rel_error(128, "linear") == pytest.approx((math.log(2) / 128) ** 2 / 2, rel=0.01)
    errs = [exp_table_max_rel_error(e, res) for res in ("none", "linear") for e in (16, 64, 128, 256)]
    assert errs[:4] == sorted(errs[:4], reverse=True) and errs[4:] == sorted(errs[4:], reverse=True)
    assert all(lin < none for lin, none in zip(errs[4:], errs[:4], strict=True))


def test_components_hash(params: ParamSet) -> None:
    assert hash(Chip.from_params(params)) == hash(Chip.from_params(params))
    assert len({Chip.from_params(params), Chip.from_params(params.override("vfu_lanes", "8"))}) == 2


def test_offchip_memory(params: ParamSet) -> None:
    chip = Chip.from_params(params)
    m = chip.offchip
    assert m.transfer_s(1e9) == pytest.approx(100e-9 + 1e9 / 100e9) and m.transfer_s(0) == 0.0
    assert m.energy_j(1e6) == pytest.approx(162.5e-6)
    assert "offchip_bandwidth_bytes_per_s" in Chip.param_keys()
    with pytest.raises(UsageError, match="must be positive"):
        type(m)(bandwidth_bytes_per_s=0.0, energy_j_per_byte=0.0, latency_s=0.0)


class _Reads(dict):  # type: ignore[type-arg]
    """A parameter set's table that notes every name looked up (every typed accessor
    reads the table)."""

    def __init__(self, items: dict[str, object]) -> None:
        super().__init__(items)
        self.read: set[str] = set()

    def __getitem__(self, name: str) -> object:
        self.read.add(name)
        return super().__getitem__(name)


@pytest.mark.parametrize("kind", Chip.COMPONENTS, ids=lambda k: k.__name__)
def test_a_component_reads_exactly_the_names_it_declares(params: ParamSet, kind: type) -> None:
    """``param_keys()`` is the key a model memoises a component on (plugins/cim.py shares
    components between chips): reading a name it does not declare would make that wrong."""
    p = ParamSet(dict(params))
    table = p._params = _Reads(p._params)  # type: ignore[assignment]
    kind.from_params(p)
    assert table.read == set(kind.param_keys())


def test_a_chip_of_given_parts_equals_one_built_from_the_parameters(params: ParamSet) -> None:
    made: list[type] = []

    def part(kind):  # type: ignore[no-untyped-def]
        made.append(kind)
        return kind.from_params(params)

    assert Chip.from_params(params, part=part) == Chip.from_params(params)
    assert sorted(k.__name__ for k in made) == sorted(k.__name__ for k in Chip.COMPONENTS)
