"""What an accelerator plugin provides and what it returns.

A plugin registers :class:`AcceleratorSpec` objects. The harness calls
``spec.estimate(graph, params)`` for every point and turns the :class:`Estimate`
into a :class:`~hastily_bench.results.Result`, deriving TOPS, inferences/s and
TOPS/W itself so that every accelerator's figures are computed the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from .graph import OpGraph
from .params import ParamSet

ExtraValue = bool | int | float | str

MATMUL_FORMATS = ("int8", "fp16")
SOFTMAX_FORMATS = ("exact", "lut")
EXP_RESIDUALS = ("none", "linear")
WEIGHT_SCALES = ("channel", "tensor")


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
    weight_scale
        With ``matmul="int8"``: weights quantised with one scale per output ``"channel"``
        or one per ``"tensor"`` (activations always get a dynamic per-tensor scale).
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
        for name, low, high in (("array_rows", 1, 1 << 16), ("cell_bits", 1, 8),
                                ("dac_bits", 1, 8), ("adc_bits", 1, 24),
                                ("weight_bits", 1, 16), ("input_bits", 1, 16)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
        if self.analog and self.matmul != "int8":
            raise ValueError(f"analog MVMs need matmul='int8', got {self.matmul!r}")

    def label(self) -> str:
        """Short text for tables, e.g. ``int8+lut(linear)``."""
        sm = f"lut({self.exp_residual})" if self.softmax == "lut" else "exact-exp"
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

    ``category`` groups ops for plots and summaries (``mvm``, ``attention``,
    ``softmax``, ``vector``, ``memory``, ``overhead``...); it is free text.
    """

    op: str
    latency_s: float
    energy_j: float
    category: str = ""


@dataclass(frozen=True)
class Estimate:
    """What a model returns for one point.

    The breakdown must sum to the totals (checked by the harness, relative
    tolerance 1e-6): when operations overlap in a pipeline, the model attributes
    the critical path's time to the ops on it. Use :meth:`from_breakdown` when the
    totals are simply the sums.

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
        Further scalar facts to keep in the result (``area_mm2``, ``arrays_used``...).
    notes
        Warnings or assumptions worth showing next to the result.
    """

    latency_s: float
    energy_j: float
    memory_bytes: int
    breakdown: tuple[OpCost, ...]
    extra: Mapping[str, ExtraValue] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @classmethod
    def from_breakdown(
        cls,
        breakdown: tuple[OpCost, ...] | list[OpCost],
        *,
        memory_bytes: int,
        extra: Mapping[str, ExtraValue] | None = None,
        notes: tuple[str, ...] = (),
    ) -> Estimate:
        bd = tuple(breakdown)
        return cls(
            latency_s=sum(c.latency_s for c in bd),
            energy_j=sum(c.energy_j for c in bd),
            memory_bytes=memory_bytes,
            breakdown=bd,
            extra=dict(extra or {}),
            notes=notes,
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
    """

    name: str
    description: str
    params: ParamSet
    estimate: EstimateFn
    arithmetic: ArithmeticFn
    default: bool = False
    family: str = ""
    reference: str = ""


def fixed_arithmetic(arith: Arithmetic) -> ArithmeticFn:
    """An :class:`ArithmeticFn` that ignores parameters and returns ``arith``."""

    def _arith(params: ParamSet, /) -> Arithmetic:
        return arith

    return _arith
