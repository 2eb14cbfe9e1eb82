"""CIM hardware components: frozen dataclasses with energy, latency, area and leakage.

Each component reads its own namespaced group of flat parameters (``adc_*``,
``array_*``, ``vfu_*`` ...; see :mod:`hastily_bench.cim.loading`) through
``from_params`` and declares the names it reads in ``param_keys()``. Values at
the preset's reference node (``tech_ref_node_nm``) are scaled to the chip's node
(``tech_node_nm``) with :mod:`hastily_bench.cim.tech`; the ADC has its own
survey-based law. Formulas and sources: ``docs/cim-components.md``.

Units are in the names: ``_s``, ``_j``, ``_w``, ``_mm2``, ``_hz``; energies are
per event (one conversion, one row write, one element-op on one lane).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import ClassVar, Self

from ..errors import UsageError
from ..params import ParamSet
from .tech import Tech

#: Keys of the ``[params.tech]`` group.
TECH_KEYS: tuple[str, ...] = ("tech_node_nm", "tech_ref_node_nm", "tech_vdd_v")
#: The chip clock (``clock_hz`` directly under ``[params]``), read by every clocked component.
CLOCK_KEY = "clock_hz"


def tech_from_params(p: ParamSet) -> Tech:
    """The :class:`Tech` of a parameter set (``tech_node_nm``, ``tech_ref_node_nm``, ``tech_vdd_v``)."""
    return Tech(node_nm=p.f("tech_node_nm"), ref_node_nm=p.f("tech_ref_node_nm"), vdd_v=p.f("tech_vdd_v"))


class Component:
    """Mixin: the parameter keys a component reads.

    ``PREFIX`` names its group, ``FIELDS`` the keys in it, ``SHARED`` the full
    names it reads from other groups (the node, the clock).
    """

    PREFIX: ClassVar[str] = ""
    FIELDS: ClassVar[tuple[str, ...]] = ()
    SHARED: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def param_keys(cls, prefix: str | None = None) -> frozenset[str]:
        """Flat parameter names this component reads (for :func:`check_consumed`)."""
        pre = cls.PREFIX if prefix is None else prefix
        return frozenset({f"{pre}_{k}" for k in cls.FIELDS} | set(cls.SHARED))


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


# --- ADC -------------------------------------------------------------------------------
# Survey model of Andrulis, Chen, Sze, Emer, "Modeling Analog-Digital-Converter Energy and
# Area for Compute-In-Memory Accelerator Design", arXiv 2404.06553 (2024), fitted to
# B. Murmann's ADC Performance Survey. Coefficients: Accelergy-Project/accelergy-adc-plug-in,
# adc_data/model.yaml (commit 2136e9e0f0bc1cee3f022548ee07df59ef34dfd1); formulas: model.py
# get_energy / get_area and headers.py bits2sndr in the same repository.
#: Schreier figure of merit bound (dB) = intercept + slope x ln(f_sample / Hz), capped at the max.
SURVEY_FOMS_INTERCEPT_DB = 302.7387019052544
SURVEY_FOMS_SLOPE_DB_PER_LN_HZ = -6.460790934271676
SURVEY_FOMS_MAX_DB = 180.14159078904734
#: ln(area / um^2) = sum of coefficient x term (ln f, ln node, bits, ln energy in pJ, 1).
SURVEY_AREA_COEFFS: Mapping[str, float] = {
    "ln_rate_hz": 0.06665851895885958,
    "ln_node_nm": 0.797323960429599,
    "bits": -0.13437278622014803,
    "ln_energy_pj": 0.4236571760437834,
    "intercept": 4.850567073004403,
}


def sndr_db(bits: float) -> float:
    """SNDR of an ideal ``bits``-bit quantiser: 6.02 bits + 1.76 dB."""
    return bits * 20 * math.log10(2) + 10 * math.log10(1.5)


@lru_cache(maxsize=4096)
def survey_adc_energy_j(bits: float, rate_hz: float) -> float:
    """Best-case energy per conversion of the survey model (Andrulis et al.).

    ``E = 1 / (2 x 10^((FOM_S - SNDR) / 10))`` with the Schreier FOM bound
    ``FOM_S = min(302.74 - 6.461 ln f, 180.14) dB``: above ~174 MS/s the bound
    falls with the rate; at any rate energy grows 4x per bit (thermal-noise law).
    """
    foms = min(SURVEY_FOMS_INTERCEPT_DB + SURVEY_FOMS_SLOPE_DB_PER_LN_HZ * math.log(rate_hz),
               SURVEY_FOMS_MAX_DB)
    return 1.0 / (2.0 * 10 ** ((foms - sndr_db(bits)) / 10))


@lru_cache(maxsize=4096)
def survey_adc_area_mm2(bits: float, rate_hz: float, node_nm: float) -> float:
    """Area of the survey model's regression (energy enters in pJ, as in the survey data)."""
    c = SURVEY_AREA_COEFFS
    energy_pj = survey_adc_energy_j(bits, rate_hz) * 1e12
    ln_um2 = (c["ln_rate_hz"] * math.log(rate_hz) + c["ln_node_nm"] * math.log(node_nm)
              + c["bits"] * bits + c["ln_energy_pj"] * math.log(energy_pj) + c["intercept"])
    return math.exp(ln_um2) * 1e-6


ADC_RATE_LAWS = ("sar", "fixed")
#: Lowest resolution the survey fit covers (accelergy-adc-plug-in asserts ``bits >= 4``).
MIN_SURVEY_BITS = 4


@dataclass(frozen=True)
class ADC(Component):
    """An analog-to-digital converter, anchored to a reference design point.

    Energy and area follow the survey model's *ratios* from the reference
    point (``ref_*``: a published ADC, PUMA's 6-bit ADC in the HASTILY preset)
    to the configured resolution, rate and node, so the reference point is
    reproduced exactly and the survey supplies the law.

    Parameters
    ----------
    bits
        Resolution (``adc_bits``).
    sample_rate_hz
        Conversion rate at ``ref_bits`` (``adc_sample_rate_hz``).
    rate_law
        ``"sar"``: conversion time grows with the bits (one comparison per bit, as
        the PUMA simulator's ADC latency table: 12.5 ns per bit per 128
        columns), so the rate is ``sample_rate_hz x ref_bits / bits``;
        ``"fixed"``: the rate does not depend on the bits.
    ref_bits, ref_sample_rate_hz, ref_energy_j, ref_area_mm2, ref_leakage_w, ref_node_nm
        The anchor design point.
    node_nm
        Node of the chip (``tech_node_nm``).
    """

    bits: int
    sample_rate_hz: float
    rate_law: str
    ref_bits: int
    ref_sample_rate_hz: float
    ref_energy_j: float
    ref_area_mm2: float
    ref_leakage_w: float
    ref_node_nm: float
    node_nm: float
    energy_scale: float = 1.0

    PREFIX: ClassVar[str] = "adc"
    FIELDS: ClassVar[tuple[str, ...]] = (
        "bits", "sample_rate_hz", "rate_law", "ref_bits", "ref_sample_rate_hz", "ref_energy_j",
        "ref_area_mm2", "ref_leakage_w", "ref_node_nm", "energy_scale",
    )
    SHARED: ClassVar[tuple[str, ...]] = ("tech_node_nm",)

    def __post_init__(self) -> None:
        if self.rate_law not in ADC_RATE_LAWS:
            raise UsageError(f"adc_rate_law {self.rate_law!r} is not one of {', '.join(ADC_RATE_LAWS)}")
        for name in ("sample_rate_hz", "ref_sample_rate_hz", "ref_node_nm", "node_nm"):
            if getattr(self, name) <= 0:
                raise UsageError(f"adc {name} must be positive, got {getattr(self, name)!r}")
        for name in ("bits", "ref_bits"):
            if getattr(self, name) < MIN_SURVEY_BITS:
                raise UsageError(f"adc_{name}={getattr(self, name)}: the survey ADC model covers "
                                 f"{MIN_SURVEY_BITS} bits and more (as accelergy-adc-plug-in)")

    @classmethod
    def from_params(cls, p: ParamSet, prefix: str = "adc") -> ADC:
        return cls(
            bits=p.i(f"{prefix}_bits"), sample_rate_hz=p.f(f"{prefix}_sample_rate_hz"),
            rate_law=p.s(f"{prefix}_rate_law"), ref_bits=p.i(f"{prefix}_ref_bits"),
            ref_sample_rate_hz=p.f(f"{prefix}_ref_sample_rate_hz"),
            ref_energy_j=p.f(f"{prefix}_ref_energy_j"), ref_area_mm2=p.f(f"{prefix}_ref_area_mm2"),
            ref_leakage_w=p.f(f"{prefix}_ref_leakage_w"), ref_node_nm=p.f(f"{prefix}_ref_node_nm"),
            node_nm=p.f("tech_node_nm"), energy_scale=p.f(f"{prefix}_energy_scale"),
        )

    @cached_property
    def rate_hz(self) -> float:
        """Conversions per second at the configured resolution."""
        if self.rate_law == "sar":
            return self.sample_rate_hz * self.ref_bits / self.bits
        return self.sample_rate_hz

    @property
    def conversion_s(self) -> float:
        """Seconds per conversion (``1 / rate_hz``)."""
        return 1.0 / self.rate_hz

    @cached_property
    def energy_j(self) -> float:
        """Energy per conversion: ``energy_scale x ref_energy_j x E_survey(bits, rate) / E_survey(ref)``.

        ``energy_scale`` (1 = the anchor design) moves the whole design up or down in
        energy, leakage included (leakage is a fixed share of dynamic power).
        """
        return self.energy_scale * self.ref_energy_j * (survey_adc_energy_j(self.bits, self.rate_hz)
                                    / survey_adc_energy_j(self.ref_bits, self.ref_sample_rate_hz))

    @cached_property
    def area_mm2(self) -> float:
        """Area: ``ref_area_mm2 x A_survey(bits, rate, node) / A_survey(ref)``."""
        return self.ref_area_mm2 * (
            survey_adc_area_mm2(self.bits, self.rate_hz, self.node_nm)
            / survey_adc_area_mm2(self.ref_bits, self.ref_sample_rate_hz, self.ref_node_nm))

    @cached_property
    def power_w(self) -> float:
        """Dynamic power while converting back to back."""
        return self.energy_j * self.rate_hz

    @cached_property
    def leakage_w(self) -> float:
        """Leakage, a fixed share of dynamic power (hwcomponents-adc's assumption) scaled from the anchor."""
        return self.ref_leakage_w * self.power_w / (self.ref_energy_j * self.ref_sample_rate_hz) \
            if self.ref_energy_j > 0 else self.ref_leakage_w

    @property
    def survey_energy_j(self) -> float:
        """The survey model's absolute (best-case) energy at this point, unanchored."""
        return survey_adc_energy_j(self.bits, self.rate_hz)

    @property
    def survey_area_mm2(self) -> float:
        """The survey model's absolute area at this point, unanchored."""
        return survey_adc_area_mm2(self.bits, self.rate_hz, self.node_nm)

    def convert_s(self, conversions: int) -> float:
        """Seconds for ``conversions`` back-to-back conversions on one ADC."""
        return conversions / self.rate_hz


# --- DAC, sample-and-hold, shift-and-add ---------------------------------------------------

@dataclass(frozen=True)
class DAC(Component):
    """Row driver: a ``bits``-bit DAC built of ``2^bits - 1`` unit elements.

    Energy, area and leakage scale with the unit count (a thermometer/current-
    steering DAC; assumed law), the latency does not. A 1-bit DAC is one unit:
    PUMA's 1-bit DAC (1 ns, 0.0035 mW, 1.67e-7 mm2, 32 nm).
    """

    bits: int
    latency_s: float
    unit_energy_j: float
    unit_area_mm2: float
    unit_leakage_w: float
    tech: Tech = field(default_factory=Tech)

    PREFIX: ClassVar[str] = "dac"
    FIELDS: ClassVar[tuple[str, ...]] = ("bits", "latency_s", "unit_energy_j", "unit_area_mm2", "unit_leakage_w")
    SHARED: ClassVar[tuple[str, ...]] = TECH_KEYS

    @classmethod
    def from_params(cls, p: ParamSet, prefix: str = "dac") -> DAC:
        return cls(bits=p.i(f"{prefix}_bits"), latency_s=p.f(f"{prefix}_latency_s"),
                   unit_energy_j=p.f(f"{prefix}_unit_energy_j"),
                   unit_area_mm2=p.f(f"{prefix}_unit_area_mm2"),
                   unit_leakage_w=p.f(f"{prefix}_unit_leakage_w"), tech=tech_from_params(p))

    @property
    def units(self) -> int:
        return (1 << self.bits) - 1

    @property
    def energy_j(self) -> float:
        """Energy of one row drive."""
        return self.units * self.unit_energy_j * self.tech.energy

    @property
    def area_mm2(self) -> float:
        return self.units * self.unit_area_mm2 * self.tech.area

    @property
    def leakage_w(self) -> float:
        return self.units * self.unit_leakage_w * self.tech.leakage

    def steps(self, input_bits: int) -> int:
        """Bit-serial steps to apply an ``input_bits``-bit input."""
        return _ceil_div(input_bits, self.bits)


@dataclass(frozen=True)
class _FixedUnit(Component):
    """A unit with a fixed latency in cycles and per-event energy, area and leakage."""

    cycles: int
    energy_j: float
    area_mm2: float
    leakage_w: float
    clock_hz: float
    tech: Tech = field(default_factory=Tech)

    FIELDS: ClassVar[tuple[str, ...]] = ("cycles", "energy_j", "area_mm2", "leakage_w")
    SHARED: ClassVar[tuple[str, ...]] = (*TECH_KEYS, CLOCK_KEY)

    @classmethod
    def from_params(cls, p: ParamSet, prefix: str | None = None) -> Self:
        pre, t = prefix or cls.PREFIX, tech_from_params(p)
        return cls(cycles=p.i(f"{pre}_cycles"), energy_j=p.f(f"{pre}_energy_j") * t.energy,
                   area_mm2=p.f(f"{pre}_area_mm2") * t.area,
                   leakage_w=p.f(f"{pre}_leakage_w") * t.leakage, clock_hz=p.f(CLOCK_KEY), tech=t)

    @property
    def latency_s(self) -> float:
        return self.cycles / self.clock_hz


@dataclass(frozen=True)
class SampleHold(_FixedUnit):
    """Sample-and-hold, one per array column (PUMA: 1 cycle, ~10 nW, 3.9e-8 mm2)."""

    PREFIX: ClassVar[str] = "sample_hold"

    @property
    def hold_s(self) -> float:
        return self.latency_s


@dataclass(frozen=True)
class ShiftAdd(_FixedUnit):
    """Shift-and-add of the bit-serial partial results, one per array (PUMA: 1 cycle, 0.045 mW)."""

    PREFIX: ClassVar[str] = "shift_add"

    @property
    def add_s(self) -> float:
        return self.latency_s


# --- bit-cell array ------------------------------------------------------------------------

CELL_KINDS = ("sram-8t", "reram")


@dataclass(frozen=True)
class CellArray(Component):
    """A ``rows x cols`` array of bit cells: MVM, row read, row write and (8T SRAM) table lookup.

    ``sram-8t`` cells hold one bit; ``reram`` cells hold ``cell_bits`` bits.
    The HASTILY lookup (8T SRAM only) reads a ROM hard-wired under the cells:
    ``lut_entries`` entries of ``lut_entry_bits`` bits, ``cols // lut_entry_bits``
    entries per row, so the table occupies ``ceil(lut_entries / entries_per_row)``
    rows (128 x 16 bits on 64 columns: 32 rows) and at most ``rows x
    entries_per_row`` entries fit. One lookup takes ``lookup_cycles`` (4: buffer
    the row, write ones, raise LKL and read, write back) and returns one entry.
    ``lut_entries = 0``: no table.

    Cell area: ``cell_area_f2 x node^2`` when ``cell_area_f2 > 0``, else
    ``cell_area_um2`` at the reference node scaled to the chip's node.
    """

    rows: int
    cols: int
    cell_bits: int
    cell_kind: str
    adcs: int
    mvm_energy_j: float
    read_energy_j: float
    write_energy_j: float
    read_cycles: int
    write_cycles: int
    lookup_cycles: int
    lookup_energy_j: float
    lut_entries: int
    lut_entry_bits: int
    cell_area_um2: float
    cell_area_f2: float
    leakage_w: float
    clock_hz: float
    tech: Tech = field(default_factory=Tech)

    PREFIX: ClassVar[str] = "array"
    FIELDS: ClassVar[tuple[str, ...]] = (
        "rows", "cols", "cell_bits", "cell_kind", "adcs", "mvm_energy_j", "read_energy_j",
        "write_energy_j", "read_cycles", "write_cycles", "lookup_cycles", "lookup_energy_j",
        "lut_entries", "lut_entry_bits", "cell_area_um2", "cell_area_f2", "leakage_w",
    )
    SHARED: ClassVar[tuple[str, ...]] = (*TECH_KEYS, CLOCK_KEY)

    def __post_init__(self) -> None:
        if self.cell_kind not in CELL_KINDS:
            raise UsageError(f"array_cell_kind {self.cell_kind!r} is not one of {', '.join(CELL_KINDS)}")
        if self.rows < 1 or self.cols < 1 or self.cell_bits < 1 or self.adcs < 1:
            raise UsageError("array rows, cols, cell_bits and adcs must be at least 1")
        if self.cell_kind == "sram-8t" and self.cell_bits != 1:
            raise UsageError(f"array_cell_bits={self.cell_bits}: an sram-8t cell holds one bit")
        if self.adcs > self.cols:
            raise UsageError(f"array_adcs={self.adcs} is more than the {self.cols} columns")
        if self.lut_entries:
            if self.cell_kind != "sram-8t":
                raise UsageError("array_lut_entries > 0 needs sram-8t cells (the table is a ROM "
                                 "under the 8T cells); set it to 0 for reram")
            if self.lut_entry_bits < 1 or self.lut_entry_bits > self.cols:
                raise UsageError(f"array_lut_entry_bits={self.lut_entry_bits} must be 1..{self.cols} "
                                 "(an entry lies within one row)")

    @classmethod
    def from_params(cls, p: ParamSet, prefix: str = "array") -> CellArray:
        t = tech_from_params(p)

        def g(k: str) -> str:
            return f"{prefix}_{k}"

        return cls(
            rows=p.i(g("rows")), cols=p.i(g("cols")), cell_bits=p.i(g("cell_bits")),
            cell_kind=p.s(g("cell_kind")), adcs=p.i(g("adcs")),
            mvm_energy_j=p.f(g("mvm_energy_j")) * t.energy,
            read_energy_j=p.f(g("read_energy_j")) * t.energy,
            write_energy_j=p.f(g("write_energy_j")) * t.energy,
            read_cycles=p.i(g("read_cycles")), write_cycles=p.i(g("write_cycles")),
            lookup_cycles=p.i(g("lookup_cycles")),
            lookup_energy_j=p.f(g("lookup_energy_j")) * t.energy,
            lut_entries=p.i(g("lut_entries")), lut_entry_bits=p.i(g("lut_entry_bits")),
            cell_area_um2=p.f(g("cell_area_um2")), cell_area_f2=p.f(g("cell_area_f2")),
            leakage_w=p.f(g("leakage_w")) * t.leakage, clock_hz=p.f(CLOCK_KEY), tech=t,
        )

    # capacity
    @property
    def cells(self) -> int:
        return self.rows * self.cols

    @property
    def bits_capacity(self) -> int:
        """Stored bits (cells x cell_bits)."""
        return self.cells * self.cell_bits

    def slices(self, value_bits: int) -> int:
        """Arrays (bit slices) that hold one ``value_bits``-bit value per cell position."""
        return _ceil_div(value_bits, self.cell_bits)

    # lookup table
    @property
    def lut_entries_per_row(self) -> int:
        return self.cols // self.lut_entry_bits if self.lut_entry_bits else 0

    @property
    def lut_rows(self) -> int:
        """Rows of the ROM table (0 without a table)."""
        return _ceil_div(self.lut_entries, self.lut_entries_per_row) if self.lut_entries else 0

    @property
    def lut_arrays(self) -> int:
        """Arrays one copy of the table spans (1 while it fits under one array's rows)."""
        return _ceil_div(self.lut_rows, self.rows) if self.lut_entries else 0

    @property
    def lut_bits(self) -> int:
        return self.lut_entries * self.lut_entry_bits

    @property
    def lut_capacity_entries(self) -> int:
        """Most entries a table under this array can hold."""
        return self.rows * self.lut_entries_per_row

    @property
    def lut_index_bits(self) -> int:
        """Bits of a table index (``log2(lut_entries)``, rounded up)."""
        return max(0, math.ceil(math.log2(self.lut_entries))) if self.lut_entries else 0

    @property
    def supports_lookup(self) -> bool:
        return self.lut_entries > 0

    # actions
    @property
    def lookup_s(self) -> float:
        """One table lookup (one entry)."""
        if not self.supports_lookup:
            raise UsageError("this array has no lookup table (array_lut_entries = 0)")
        return self.lookup_cycles / self.clock_hz

    @property
    def read_row_s(self) -> float:
        return self.read_cycles / self.clock_hz

    @property
    def write_row_s(self) -> float:
        return self.write_cycles / self.clock_hz

    @property
    def conversions_per_adc(self) -> int:
        """Columns each ADC converts per MVM bit step."""
        return _ceil_div(self.cols, self.adcs)

    # area
    @property
    def cell_area_mm2(self) -> float:
        if self.cell_area_f2 > 0:
            return self.cell_area_f2 * (self.tech.node_nm * 1e-6) ** 2  # F in mm
        return self.cell_area_um2 * 1e-6 * self.tech.area

    @property
    def area_mm2(self) -> float:
        """Cell area only (the ROM table lies under the cells at no extra area)."""
        return self.cells * self.cell_area_mm2


# --- vector functional unit -------------------------------------------------------------------

#: Elementary VFU operations; ``sub`` costs as ``add`` and ``cmp`` as ``max``.
VFU_OPS = ("add", "mul", "max", "shift", "floor", "div")
_CANONICAL_OPS = frozenset(VFU_OPS)
_OP_ALIASES = {"sub": "add", "cmp": "max", "compare": "max", "convert": "floor",
               "reciprocal": "div", "table": "table"}
EXP_METHODS = ("polynomial", "table")
EXP_RESIDUALS = ("none", "linear")


@dataclass(frozen=True)
class ExpRoutine:
    """``e^x`` as a routine of elementary VFU steps (per element); see :meth:`steps`.

    ``method = "polynomial"``: range reduction to ``2^n x 2^f`` and a Horner
    polynomial of ``poly_degree`` for ``2^f``. ``method = "table"``: fixed-point
    reduction whose bit fields give ``n`` and the table index ``d``, a read of
    ``2^(d / entries)`` (``table_cycles`` on the VFU, or none on the VFU when the
    table lies elsewhere, e.g. in the UCLM arrays: ``external_table=True``), and
    with ``residual = "linear"`` a factor ``1 + r``.
    """

    method: str = "polynomial"
    poly_degree: int = 6
    table_cycles: int = 1
    residual: str = "none"

    def __post_init__(self) -> None:
        if self.method not in EXP_METHODS:
            raise UsageError(f"exponent method {self.method!r} is not one of {', '.join(EXP_METHODS)}")
        if self.residual not in EXP_RESIDUALS:
            raise UsageError(f"exponent residual {self.residual!r} is not one of {', '.join(EXP_RESIDUALS)}")
        if self.method == "polynomial" and self.poly_degree < 1:
            raise UsageError("a polynomial exponent needs degree >= 1")

    def steps(self, *, external_table: bool = False) -> dict[str, int]:
        """Elementary operations per element: ``{op: count}`` (``table``: VFU table-read cycles).

        Polynomial: ``t = x log2(e)`` (mul), ``n = floor(t)`` (floor), ``f = t - n``
        (sub), ``degree`` x (mul + add), scale by ``2^n`` (shift).

        Table, in fixed point as the hardware does it: ``t = x entries / ln 2`` (mul),
        ``m = floor(t)`` (floor); ``n = m >> log2(entries)`` (shift) and
        ``d = m mod entries`` (a mask, costed as an add) are bit fields of ``m``; the read
        of ``2^(d / entries)``; scale by ``2^n`` (shift). With ``residual = "linear"``:
        ``r = (t - m) ln 2 / entries`` (sub, mul) and ``y + y r`` (mul, add).
        """
        if self.method == "polynomial":
            s = {"mul": 1 + self.poly_degree, "floor": 1, "add": 1 + self.poly_degree, "shift": 1}
            return s
        s = {"mul": 1, "floor": 1, "shift": 2, "add": 1}
        if not external_table:
            s["table"] = self.table_cycles
        if self.residual == "linear":
            s["add"] += 2
            s["mul"] += 2
        return s


@lru_cache(maxsize=256, typed=True)  # (every estimate with the table reports it)
def exp_table_max_rel_error(entries: int, residual: str = "none") -> float:
    """Worst relative error of ``2^f`` from a table of ``2^(d / entries)`` (before rounding).

    ``none``: the table value at the start of each interval, off by up to
    ``2^(1/entries) - 1``; ``linear``: the remainder ``e^r`` (``0 <= r < ln2 / entries``)
    taken as ``1 + r``, off by up to ``(e^r - 1 - r) / e^r`` at the interval's end.
    """
    if entries < 1:
        raise UsageError(f"a table needs at least one entry, got {entries}")
    if residual not in EXP_RESIDUALS:
        raise UsageError(f"exponent residual {residual!r} is not one of {', '.join(EXP_RESIDUALS)}")
    r = math.log(2) / entries
    if residual == "none":
        return math.expm1(r)
    return (math.expm1(r) - r) / math.exp(r)


@dataclass(frozen=True)
class VFU(Component):
    """A ``lanes``-wide vector functional unit with a cycle count and energy per elementary op.

    Cycles are per element per lane (PUMA wiki: 1 cycle for non-transcendental
    ops); energies per element-op (PUMA simulator ALU: 0.265 pJ add/logic,
    0.565 pJ mul, 1.081 pJ div at 32 nm, 1 GHz). ``exp`` is an :class:`ExpRoutine`.
    """

    lanes: int
    clock_hz: float
    cycles: Mapping[str, int]
    energies_j: Mapping[str, float]
    area_mm2_per_lane: float
    leakage_w_per_lane: float
    exp: ExpRoutine = field(default_factory=ExpRoutine)
    tech: Tech = field(default_factory=Tech)

    PREFIX: ClassVar[str] = "vfu"
    FIELDS: ClassVar[tuple[str, ...]] = (
        "lanes", *(f"{op}_cycles" for op in VFU_OPS), *(f"{op}_energy_j" for op in VFU_OPS),
        "area_mm2_per_lane", "leakage_w_per_lane", "exp_method", "exp_poly_degree",
        "exp_table_cycles", "exp_residual",
    )
    SHARED: ClassVar[tuple[str, ...]] = (*TECH_KEYS, CLOCK_KEY)

    def __hash__(self) -> int:  # the op tables are dicts: hash their items
        return hash((self.lanes, self.clock_hz, tuple(sorted(self.cycles.items())),
                     tuple(sorted(self.energies_j.items())), self.area_mm2_per_lane,
                     self.leakage_w_per_lane, self.exp, self.tech))

    def __post_init__(self) -> None:
        if self.lanes < 1:
            raise UsageError(f"vfu_lanes must be at least 1, got {self.lanes}")
        missing = [op for op in VFU_OPS if op not in self.cycles or op not in self.energies_j]
        if missing:
            raise UsageError(f"VFU lacks cycles/energy for {', '.join(missing)}")

    @classmethod
    def from_params(cls, p: ParamSet, prefix: str = "vfu") -> VFU:
        t = tech_from_params(p)
        return cls(
            lanes=p.i(f"{prefix}_lanes"), clock_hz=p.f(CLOCK_KEY),
            cycles={op: p.i(f"{prefix}_{op}_cycles") for op in VFU_OPS},
            energies_j={op: p.f(f"{prefix}_{op}_energy_j") * t.energy for op in VFU_OPS},
            area_mm2_per_lane=p.f(f"{prefix}_area_mm2_per_lane") * t.area,
            leakage_w_per_lane=p.f(f"{prefix}_leakage_w_per_lane") * t.leakage,
            exp=ExpRoutine(method=p.s(f"{prefix}_exp_method"), poly_degree=p.i(f"{prefix}_exp_poly_degree"),
                           table_cycles=p.i(f"{prefix}_exp_table_cycles"),
                           residual=p.s(f"{prefix}_exp_residual")),
            tech=t,
        )

    @staticmethod
    def _canon(op: str) -> str:
        c = _OP_ALIASES.get(op, op)
        if c not in VFU_OPS and c != "table":
            raise UsageError(f"unknown VFU operation {op!r}; known: "
                             f"{', '.join((*VFU_OPS, *sorted(_OP_ALIASES)))}")
        return c

    def op_cycles(self, op: str) -> int:
        """Cycles per element per lane of one elementary op (``table``: 1 cycle per cycle)."""
        if op in _CANONICAL_OPS:  # the common case
            return self.cycles[op]
        c = self._canon(op)
        return 1 if c == "table" else self.cycles[c]

    def op_energy_j(self, op: str) -> float:
        """Energy per element of one elementary op (a ``table`` cycle costs as an add)."""
        if op in _CANONICAL_OPS:
            return self.energies_j[op]
        c = self._canon(op)
        return self.energies_j["add" if c == "table" else c]

    def routine_cycles(self, steps: Mapping[str, int]) -> int:
        """Cycles per element per lane of a routine ``{op: count}``."""
        return sum(n * self.op_cycles(op) for op, n in steps.items())

    def routine_energy_j(self, steps: Mapping[str, int]) -> float:
        """Energy per element of a routine ``{op: count}``."""
        return sum(n * self.op_energy_j(op) for op, n in steps.items())

    def exp_steps(self, routine: ExpRoutine | None = None, *, external_table: bool = False) -> dict[str, int]:
        return (routine or self.exp).steps(external_table=external_table)

    def exp_cycles(self, routine: ExpRoutine | None = None, *, external_table: bool = False) -> int:
        """Cycles per element per lane of the exponent (default: this VFU's routine)."""
        return self.routine_cycles(self.exp_steps(routine, external_table=external_table))

    def exp_energy_j(self, routine: ExpRoutine | None = None, *, external_table: bool = False) -> float:
        return self.routine_energy_j(self.exp_steps(routine, external_table=external_table))

    def time_s(self, elements: int, cycles_per_element: float) -> float:
        """Seconds to apply ``cycles_per_element`` to ``elements`` elements on all lanes."""
        return _ceil_div(elements, self.lanes) * cycles_per_element / self.clock_hz

    @property
    def area_mm2(self) -> float:
        return self.lanes * self.area_mm2_per_lane

    @property
    def leakage_w(self) -> float:
        return self.lanes * self.leakage_w_per_lane


# --- memories and network ----------------------------------------------------------------------

@dataclass(frozen=True)
class _Memory(Component):
    """A memory of ``bytes_`` bytes; area and leakage linear in the size (CACTI depth law)."""

    bytes_: int
    bytes_per_cycle: int
    access_cycles: int
    energy_j_per_byte: float
    area_mm2_per_kib: float
    leakage_w_per_kib: float
    clock_hz: float
    tech: Tech = field(default_factory=Tech)

    FIELDS: ClassVar[tuple[str, ...]] = (
        "bytes", "bytes_per_cycle", "access_cycles", "energy_j_per_byte", "area_mm2_per_kib",
        "leakage_w_per_kib",
    )
    SHARED: ClassVar[tuple[str, ...]] = (*TECH_KEYS, CLOCK_KEY)

    @classmethod
    def from_params(cls, p: ParamSet, prefix: str | None = None) -> Self:
        pre, t = prefix or cls.PREFIX, tech_from_params(p)
        return cls(
            bytes_=p.i(f"{pre}_bytes"), bytes_per_cycle=p.i(f"{pre}_bytes_per_cycle"),
            access_cycles=p.i(f"{pre}_access_cycles"),
            energy_j_per_byte=p.f(f"{pre}_energy_j_per_byte") * t.energy,
            area_mm2_per_kib=p.f(f"{pre}_area_mm2_per_kib") * t.area,
            leakage_w_per_kib=p.f(f"{pre}_leakage_w_per_kib") * t.leakage,
            clock_hz=p.f(CLOCK_KEY), tech=t,
        )

    def transfer_s(self, nbytes: int) -> float:
        """Access latency plus ``nbytes`` at ``bytes_per_cycle``."""
        if nbytes <= 0:
            return 0.0
        return (self.access_cycles + _ceil_div(nbytes, self.bytes_per_cycle)) / self.clock_hz

    def stream_s(self, nbytes: int) -> float:
        """Throughput-bound time for ``nbytes`` (latency hidden by pipelining)."""
        return _ceil_div(max(0, nbytes), self.bytes_per_cycle) / self.clock_hz

    def energy_j(self, nbytes: float) -> float:
        return nbytes * self.energy_j_per_byte

    @property
    def area_mm2(self) -> float:
        return self.bytes_ / 1024 * self.area_mm2_per_kib

    @property
    def leakage_w(self) -> float:
        return self.bytes_ / 1024 * self.leakage_w_per_kib


@dataclass(frozen=True)
class RegisterFile(_Memory):
    """A core's register file / data memory (PUMA data memory: 1 KiB, 0.00192 mm2, 0.147 mW leak)."""

    PREFIX: ClassVar[str] = "regfile"


@dataclass(frozen=True)
class SharedMemory(_Memory):
    """A tile's shared eDRAM buffer (PUMA: 64 KiB, 2-cycle access, 0.086 mm2, 0.46 mW leak)."""

    PREFIX: ClassVar[str] = "shared_memory"


@dataclass(frozen=True)
class Router(Component):
    """A tile's router on the on-chip network (PUMA: 31-cycle hop, 16.13 mW, 0.41 mW leak).

    A message of ``b`` bytes is ``ceil(b / flit_bytes)`` flits; it travels
    ``hops`` hops in ``hops x hop_cycles + flits`` cycles (wormhole routing) and
    costs ``b x hops x energy_j_per_byte``.
    """

    hop_cycles: int
    flit_bytes: int
    energy_j_per_byte: float
    area_mm2: float
    leakage_w: float
    avg_hops: float
    clock_hz: float
    tech: Tech = field(default_factory=Tech)

    PREFIX: ClassVar[str] = "router"
    FIELDS: ClassVar[tuple[str, ...]] = (
        "hop_cycles", "flit_bytes", "energy_j_per_byte", "area_mm2", "leakage_w", "avg_hops",
    )
    SHARED: ClassVar[tuple[str, ...]] = (*TECH_KEYS, CLOCK_KEY)

    @classmethod
    def from_params(cls, p: ParamSet, prefix: str = "router") -> Router:
        t = tech_from_params(p)
        return cls(hop_cycles=p.i(f"{prefix}_hop_cycles"), flit_bytes=p.i(f"{prefix}_flit_bytes"),
                   energy_j_per_byte=p.f(f"{prefix}_energy_j_per_byte") * t.energy,
                   area_mm2=p.f(f"{prefix}_area_mm2") * t.area,
                   leakage_w=p.f(f"{prefix}_leakage_w") * t.leakage,
                   avg_hops=p.f(f"{prefix}_avg_hops"), clock_hz=p.f(CLOCK_KEY), tech=t)

    def flits(self, nbytes: int) -> int:
        return _ceil_div(max(1, nbytes), self.flit_bytes)

    def transfer_s(self, nbytes: int, hops: float | None = None) -> float:
        """Latency of one message over ``hops`` (default ``avg_hops``)."""
        h = self.avg_hops if hops is None else hops
        return (h * self.hop_cycles + self.flits(nbytes)) / self.clock_hz

    def transfer_energy_j(self, nbytes: float, hops: float | None = None) -> float:
        return nbytes * (self.avg_hops if hops is None else hops) * self.energy_j_per_byte

    @staticmethod
    def tree_levels(participants: int) -> int:
        """Levels of a binary reduction (or broadcast) tree over ``participants``."""
        if participants < 1:
            raise ValueError(f"participants must be >= 1, got {participants}")
        return math.ceil(math.log2(participants)) if participants > 1 else 0

    def tree_reduce_s(self, participants: int, payload_bytes: int = 4) -> float:
        """Binary-tree reduction over ``participants`` cores: one hop per level."""
        levels = self.tree_levels(participants)
        return levels * (self.hop_cycles + self.flits(payload_bytes)) / self.clock_hz

    def tree_reduce_energy_j(self, participants: int, payload_bytes: int = 4) -> float:
        """Each of the ``participants - 1`` tree edges carries the payload once, one hop."""
        return (participants - 1) * payload_bytes * self.energy_j_per_byte


@dataclass(frozen=True)
class OffChipMemory(Component):
    """The off-chip memory interface (DRAM or a chip-to-chip link) a model may stream through.

    ``transfer_s(b) = latency_s + b / bandwidth_bytes_per_s``; ``b x energy_j_per_byte``.
    Not node-scaled (DRAM cores and I/O do not shrink with logic); its PHY area is not
    modelled (``area_mm2 = 0``).
    """

    bandwidth_bytes_per_s: float
    energy_j_per_byte: float
    latency_s: float

    PREFIX: ClassVar[str] = "offchip"
    FIELDS: ClassVar[tuple[str, ...]] = ("bandwidth_bytes_per_s", "energy_j_per_byte", "latency_s")

    def __post_init__(self) -> None:
        if self.bandwidth_bytes_per_s <= 0:
            raise UsageError(f"offchip_bandwidth_bytes_per_s must be positive, got {self.bandwidth_bytes_per_s}")

    @classmethod
    def from_params(cls, p: ParamSet, prefix: str = "offchip") -> OffChipMemory:
        return cls(bandwidth_bytes_per_s=p.f(f"{prefix}_bandwidth_bytes_per_s"),
                   energy_j_per_byte=p.f(f"{prefix}_energy_j_per_byte"), latency_s=p.f(f"{prefix}_latency_s"))

    def transfer_s(self, nbytes: float) -> float:
        return self.latency_s + nbytes / self.bandwidth_bytes_per_s if nbytes > 0 else 0.0

    def energy_j(self, nbytes: float) -> float:
        return nbytes * self.energy_j_per_byte

    @property
    def area_mm2(self) -> float:
        return 0.0

    @property
    def leakage_w(self) -> float:
        return 0.0
