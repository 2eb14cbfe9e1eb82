"""What an accelerator plugin provides and what it returns.

A plugin registers :class:`AcceleratorSpec` objects. The harness calls
``spec.estimate(graph, params)`` for every point and turns the :class:`Estimate`
into a :class:`~hastily_bench.results.Result`, deriving TOPS, inferences/s and
TOPS/W itself so that every accelerator's figures are computed the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from .graph import OpGraph
from .params import ParamSet

ExtraValue = bool | int | float | str

MATMUL_FORMATS = ("int8", "fp16")
SOFTMAX_FORMATS = ("exact", "lut")
EXP_RESIDUALS = ("none", "linear")
WEIGHT_SCALES = ("channel", "tensor")


#: The analog MVM's integer fields and their bounds, shared by :class:`Arithmetic` and the
#: accuracy study's ``AnalogConfig`` (which executes them).
ANALOG_FIELDS: tuple[tuple[str, int, int], ...] = (
    ("array_rows", 1, 1 << 16), ("cell_bits", 1, 8), ("dac_bits", 1, 8), ("adc_bits", 1, 24),
    ("weight_bits", 1, 16), ("input_bits", 1, 16),
)


@dataclass(frozen=True)
class Arithmetic:
    """The arithmetic an accelerator performs, executed by the kernels to measure error.

    Parameters
    ----------
    matmul
        ``"int8"`` (INT8 operands, int32 accumulation) or ``"fp16"``.
    softmax
        ``"exact"`` (true exponent) or ``"lut"`` (HASTILY's 128-entry table exponent).
    exp_residual
        With ``softmax="lut"``: ``"none"`` (e^r = 1) or ``"linear"`` (e^r = 1 + r).
    lut_entries
        With ``softmax="lut"``: entries of the 2^(k/entries) table (HASTILY: 128). The
        kernels execute the 128-entry table; the error bound of another size is
        ``1 - 2^(-1/entries)`` (residual none).
    weight_scale
        With ``matmul="int8"``: weights quantised with one scale per output ``"channel"``
        or one per ``"tensor"`` (activations get a dynamic scale per token).
    analog
        The weight matrix products run as analog MVMs in crossbar arrays (needs
        ``matmul="int8"``): inputs applied ``dac_bits`` at a time, weights sliced over cells
        of ``cell_bits``, each column's partial sum over ``array_rows`` rows converted by an
        ``adc_bits`` ADC, then shift-and-add (``docs/accuracy.md``). The fields below are
        used only when ``analog`` is true.
    array_rows, cell_bits, dac_bits, adc_bits
        Rows summed by one column, bits per cell, bits per DAC step, ADC resolution.
    weight_bits, input_bits
        Precision of the weights and inputs of the analog MVMs.
    """

    matmul: str = "int8"
    softmax: str = "exact"
    exp_residual: str = "linear"
    lut_entries: int = 128
    weight_scale: str = "channel"
    analog: bool = False
    array_rows: int = 64
    cell_bits: int = 1
    dac_bits: int = 1
    adc_bits: int = 8
    weight_bits: int = 8
    input_bits: int = 8

    def __post_init__(self) -> None:
        if self.matmul not in MATMUL_FORMATS:
            raise ValueError(f"matmul must be one of {MATMUL_FORMATS}, got {self.matmul!r}")
        if self.softmax not in SOFTMAX_FORMATS:
            raise ValueError(f"softmax must be one of {SOFTMAX_FORMATS}, got {self.softmax!r}")
        if self.exp_residual not in EXP_RESIDUALS:
            raise ValueError(
                f"exp_residual must be one of {EXP_RESIDUALS}, got {self.exp_residual!r}"
            )
        if self.weight_scale not in WEIGHT_SCALES:
            raise ValueError(
                f"weight_scale must be one of {WEIGHT_SCALES}, got {self.weight_scale!r}"
            )
        for name, low, high in ANALOG_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
        if self.analog and self.matmul != "int8":
            raise ValueError(f"analog MVMs need matmul='int8', got {self.matmul!r}")

    def label(self) -> str:
        """Short text for tables, e.g. ``int8+lut(linear)`` (``lut256(none)`` for other sizes)."""
        size = "" if self.lut_entries == 128 else str(self.lut_entries)
        sm = f"lut{size}({self.exp_residual})" if self.softmax == "lut" else "exact-exp"
        return f"{self.matmul}+{sm}"

    def detail(self) -> str:
        """:meth:`label` plus the weight scaling and, for analog MVMs, the array and converters,
        e.g. ``int8+lut(linear)+analog(64 rows, 1b cell, 1b DAC, 6b ADC)``."""
        text = self.label()
        if self.matmul == "int8" and not self.analog:
            text += f"+per-{self.weight_scale}"
        if self.analog:
            text += (f"+analog({self.array_rows} rows, {self.cell_bits}b cell, "
                     f"{self.dac_bits}b DAC, {self.adc_bits}b ADC, w{self.weight_bits}/x{self.input_bits})")
        return text


@dataclass(frozen=True)
class OpCost:
    """Latency and energy attributed to one op of the graph, summed over all layers.

    ``op`` is the op's name in the graph, or a label for work that is no op of the
    graph (``kernel_overhead``, ``weight_streaming``). ``category`` is one of the
    closed set :data:`~hastily_bench.graph.CATEGORIES`: ``matmul`` (weight
    products), ``attention`` (Q K^T and S V), ``softmax``, ``vector`` (norms,
    activations, element-wise work), ``memory`` (data movement that is not part of
    an op, e.g. weights streamed from off-chip), ``overhead`` (kernel launches,
    synchronisation). Static (leakage) energy is not a breakdown entry: it is
    :attr:`Estimate.static_energy_j`.
    """

    op: str
    latency_s: float
    energy_j: float
    category: str = ""


@dataclass(frozen=True)
class Estimate:
    """What a model returns for one point.

    The breakdown must sum to the totals (checked by the harness, relative
    tolerance 1e-6): latencies to ``latency_s``, energies plus
    ``static_energy_j`` to ``energy_j``. When operations overlap in a pipeline,
    the model attributes the critical path's time to the ops on it. Use
    :meth:`from_breakdown` when the totals are simply the sums (or
    :class:`~hastily_bench.costing.EstimateBuilder`).

    Parameters
    ----------
    latency_s
        Seconds for one inference of the whole batch.
    energy_j
        Joules for that inference.
    memory_bytes
        Working memory for activations and attention intermediates (peak).
    breakdown
        Per-op costs.
    extra
        Further scalar facts to keep in the result (``arrays_used``, ``tiles``...).
    notes
        Warnings or assumptions worth showing next to the result.
    static_energy_j
        Energy not attributed to any op (leakage, static power over the latency);
        included in ``energy_j``.
    area_mm2
        Silicon area of the accelerator that ran the point (chip or GPU die), or
        ``None`` when the model has no area. Results derive ``tops_per_mm2`` from it.
    """

    latency_s: float
    energy_j: float
    memory_bytes: int
    breakdown: tuple[OpCost, ...]
    extra: Mapping[str, ExtraValue] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    static_energy_j: float = 0.0
    area_mm2: float | None = None

    @classmethod
    def from_breakdown(
        cls,
        breakdown: tuple[OpCost, ...] | list[OpCost],
        *,
        memory_bytes: int,
        extra: Mapping[str, ExtraValue] | None = None,
        notes: tuple[str, ...] = (),
        static_energy_j: float = 0.0,
        area_mm2: float | None = None,
    ) -> Estimate:
        """An estimate whose totals are the sums of ``breakdown`` (plus static energy).

        Parameters
        ----------
        breakdown
            Per-op costs (:class:`OpCost`), categories from the closed set.
        memory_bytes
            Peak working memory (int).
        extra
            Scalar facts kept in the result's ``extra`` (bool, int, float, str).
        notes
            Lines shown under the result's table.
        static_energy_j
            Energy attributed to no op; added to the total.
        area_mm2
            Area of the accelerator, when it has one.
        """
        bd = tuple(breakdown)
        return cls(
            latency_s=sum([c.latency_s for c in bd]),
            energy_j=sum([c.energy_j for c in bd]) + static_energy_j,
            memory_bytes=memory_bytes,
            breakdown=bd,
            extra=dict(extra or {}),
            notes=notes,
            static_energy_j=static_energy_j,
            area_mm2=area_mm2,
        )


class EstimateFn(Protocol):
    """``estimate(graph, params) -> Estimate``; raise :class:`~hastily_bench.errors.Unsupported`
    when the point cannot run (the reason becomes the result's ``error``)."""

    def __call__(self, graph: OpGraph, params: ParamSet, /) -> Estimate: ...


class ArithmeticFn(Protocol):
    """``arithmetic(params) -> Arithmetic``: what the accelerator computes with."""

    def __call__(self, params: ParamSet, /) -> Arithmetic: ...


@dataclass(frozen=True)
class AcceleratorSpec:
    """An accelerator a plugin contributes.

    Parameters
    ----------
    name
        Unique name used on the command line (``a40-tensorrt``, ``hastily``).
    description
        One line for ``hastily-bench accelerators``.
    params
        Default parameters, each with unit and source.
    estimate
        The cost model, see :class:`EstimateFn`.
    arithmetic
        What it computes with, see :class:`ArithmeticFn`.
    default
        Part of the default set of ``hastily-bench run``.
    family
        Grouping for listings (``gpu``, ``cim``...).
    reference
        What the model reproduces (paper, figure, data set).
    baseline
        A comparison baseline: ``run`` computes speedups against the first accelerator
        of the run that declares it (unless ``--baseline`` names one).
    check_params
        Optional ``check_params(params)`` raising
        :class:`~hastily_bench.errors.UsageError` for a parameter combination the
        model refuses (``idle_w`` above ``tdp_w``...). The harness calls it on the
        configured parameters before any work, so a bad ``--set`` is one line and
        exit status 2; bounds on single values belong in the parameter itself
        (``min`` / ``max``).
    ablation
        Ordered ablation steps of this accelerator for the reproduction's ablation
        figure: ``(label, {parameter: value text})`` pairs, from the most reduced
        design to the full one (the full design is the last step, usually ``{}``).
    """

    name: str
    description: str
    params: ParamSet
    estimate: EstimateFn
    arithmetic: ArithmeticFn
    default: bool = False
    family: str = ""
    reference: str = ""
    baseline: bool = False
    ablation: tuple[tuple[str, Mapping[str, str]], ...] = ()
    check_params: Callable[[ParamSet], None] | None = None


def fixed_arithmetic(arith: Arithmetic) -> ArithmeticFn:
    """An :class:`ArithmeticFn` that ignores parameters and returns ``arith``."""

    def _arith(params: ParamSet, /) -> Arithmetic:
        return arith

    return _arith
