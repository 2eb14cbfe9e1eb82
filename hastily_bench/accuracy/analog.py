"""The analog matrix-vector product of crossbar arrays, bit for bit.

Specification (:func:`analog_mvm_reference` is it, in plain integer NumPy)
--------------------------------------------------------------------------
``y = x @ w`` for signed integers ``x`` (M, K) of ``input_bits`` and ``w`` (K, N) of
``weight_bits``, computed as the arrays do it:

1. **Offset encoding.** Cells and DACs hold non-negative levels, so both operands are stored
   offset-binary: ``xu = x + 2^(input_bits-1)``, ``wu = w + 2^(weight_bits-1)`` (unsigned).
2. **Row blocks.** The K rows are split into blocks of ``array_rows`` (the last one may be
   shorter): one array column sums one block.
3. **Bit slicing.** Weight slice ``t`` is ``(wu >> t*cell_bits) & (2^cell_bits - 1)``, one
   cell per slice, ``ceil(weight_bits / cell_bits)`` slices. Input step ``s`` is
   ``(xu >> s*dac_bits) & (2^dac_bits - 1)``, applied through the DAC,
   ``ceil(input_bits / dac_bits)`` steps.
4. **Column partial sums.** For each block, step and slice: ``PS = sum over the block's rows
   of digit * cell`` (an integer in ``[0, FS]``, ``FS = array_rows * (2^dac_bits - 1) *
   (2^cell_bits - 1)``, the column's full scale).
5. **ADC.** ``adc_bits`` give ``2^adc_bits`` codes; the step is ``D = 2^k`` with ``k`` the
   smallest integer >= 0 such that ``2^adc_bits * D >= FS``. The code is
   ``min(round(PS / D), 2^adc_bits - 1)``, rounding to nearest with ties to even (an integer
   partial sum halfway between two codes sits on the comparator threshold, where noise
   decides; ties to even keep that unbiased, where round-half-up would add D/2 to half of all
   partial sums and, weighted by the shifts, a bias larger than the products themselves),
   saturating, and the converted value ``code * D``. The ADC is lossless when ``2^adc_bits > FS``; with
   ``2^adc_bits == FS`` (HASTILY: 64 rows of 1-bit cells, 1-bit DAC, 6-bit ADC) only a
   partial sum equal to ``FS`` saturates, one below it.
6. **Shift-and-add**, then the offsets are removed digitally (``sum xu`` per input vector is
   known to the digital side, ``sum wu`` per column is a constant of the weights)::

       y = sum_{block, s, t} ADC(PS) << (s*dac_bits + t*cell_bits)
           - 2^(weight_bits-1) * sum_k xu[k] - 2^(input_bits-1) * sum_k wu[k] + K * 2^(input_bits-1) * 2^(weight_bits-1)

:func:`analog_mvm` computes the same integers fast: integer-valued float matmuls per row
block over all (step, slice) pairs at once, and, when ``D == 1``, the exact product minus the
saturation excess of the few (input, column) pairs whose bounds allow saturation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..accelerator import ANALOG_FIELDS, Arithmetic

__all__ = ["AnalogConfig", "AnalogMatrix", "adc_convert", "analog_mvm", "analog_mvm_reference", "exact_matmul"]

#: Elements of one (step, input, slice, column) partial-sum tile of :func:`analog_mvm`.
_TILE_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class AnalogConfig:
    """Array geometry and converter resolutions of the analog MVM (module docstring)."""

    array_rows: int = 64
    cell_bits: int = 1
    dac_bits: int = 1
    adc_bits: int = 8
    weight_bits: int = 8
    input_bits: int = 8

    def __post_init__(self) -> None:
        for name, low, high in ANALOG_FIELDS:
            if name in ("weight_bits", "input_bits"):
                low = max(low, 2)  # signed operands: a sign bit and at least one more
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"{name}: expected an integer in [{low}, {high}], got {value!r}")

    @classmethod
    def from_arithmetic(cls, arith: Arithmetic) -> AnalogConfig:
        """The analog fields of an accelerator's :class:`Arithmetic`."""
        return cls(**{name: getattr(arith, name) for name, _, _ in ANALOG_FIELDS})

    @property
    def steps(self) -> int:
        """Input steps through the DAC."""
        return math.ceil(self.input_bits / self.dac_bits)

    @property
    def slices(self) -> int:
        """Cells per weight."""
        return math.ceil(self.weight_bits / self.cell_bits)

    @property
    def full_scale(self) -> int:
        """Largest possible column partial sum."""
        return self.array_rows * ((1 << self.dac_bits) - 1) * ((1 << self.cell_bits) - 1)

    @property
    def adc_shift(self) -> int:
        """``k`` of the ADC step ``2^k``."""
        k = 0
        while (1 << (self.adc_bits + k)) < self.full_scale:
            k += 1
        return k

    @property
    def max_code(self) -> int:
        return (1 << self.adc_bits) - 1

    @property
    def lossless(self) -> bool:
        """Every partial sum converts exactly."""
        return self.adc_shift == 0 and self.max_code >= self.full_scale


def adc_convert(ps: NDArray[np.integer[Any]], cfg: AnalogConfig) -> NDArray[np.int64]:
    """The ADC of the specification (step 5): integer partial sums to converted values."""
    k = cfg.adc_shift
    ps = np.asarray(ps, dtype=np.int64)
    if k == 0:
        return np.minimum(ps, cfg.max_code)
    q, r = ps >> k, ps & ((1 << k) - 1)
    half = 1 << (k - 1)
    code = q + ((r > half) | ((r == half) & (q & 1 == 1)))
    return np.minimum(code, cfg.max_code) << k


def _check_operands(x: NDArray[Any], w: NDArray[Any], cfg: AnalogConfig) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    x = np.asarray(x)
    w = np.asarray(w)
    if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[0]:
        raise ValueError(f"x, w: expected shapes (M, K) and (K, N), got {x.shape} and {w.shape}")
    for name, a, bits in (("x", x, cfg.input_bits), ("w", w, cfg.weight_bits)):
        if not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"{name}: expected an integer array, got {a.dtype}")
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        if a.size and (a.min() < lo or a.max() > hi):
            raise ValueError(f"{name}: values outside [{lo}, {hi}] ({bits} bits)")
    return x.astype(np.int64), w.astype(np.int64)


def analog_mvm_reference(x: NDArray[np.integer[Any]], w: NDArray[np.integer[Any]], cfg: AnalogConfig) -> NDArray[np.int64]:
    """The specification (module docstring), step by step in int64: ``(M, K) @ (K, N)``."""
    x, w = _check_operands(x, w, cfg)
    a, b = 1 << (cfg.input_bits - 1), 1 << (cfg.weight_bits - 1)
    xu, wu = x + a, w + b
    dmask, cmask = (1 << cfg.dac_bits) - 1, (1 << cfg.cell_bits) - 1
    k_total = x.shape[1]
    y = np.zeros((x.shape[0], w.shape[1]), dtype=np.int64)
    for r0 in range(0, k_total, cfg.array_rows):
        xb, wb = xu[:, r0 : r0 + cfg.array_rows], wu[r0 : r0 + cfg.array_rows]
        for s in range(cfg.steps):
            digit = (xb >> (s * cfg.dac_bits)) & dmask
            for t in range(cfg.slices):
                cell = (wb >> (t * cfg.cell_bits)) & cmask
                y += adc_convert(digit @ cell, cfg) << (s * cfg.dac_bits + t * cfg.cell_bits)
    y -= b * xu.sum(axis=1, keepdims=True)
    y -= a * wu.sum(axis=0, keepdims=True)
    y += k_total * a * b
    return y


def exact_matmul(x: NDArray[np.integer[Any]], w: NDArray[np.integer[Any]]) -> NDArray[np.int64]:
    """``x @ w`` of integer matrices, exactly, through float64 BLAS (|result| < 2^53 checked)."""
    xf, wf = np.asarray(x, dtype=np.float64), np.asarray(w, dtype=np.float64)
    bound = float(np.abs(xf).max(initial=0)) * float(np.abs(wf).max(initial=0)) * xf.shape[1]
    if bound >= 2.0**53:
        return np.asarray(x, dtype=np.int64) @ np.asarray(w, dtype=np.int64)
    return (xf @ wf).astype(np.int64)


def _digits(u: NDArray[np.int64], count: int, bits: int, dtype: type) -> NDArray[Any]:
    """(count, *u.shape) digits of ``bits`` bits, least significant first."""
    shifts = (np.arange(count, dtype=np.int64) * bits).reshape((count,) + (1,) * u.ndim)
    return ((u[None] >> shifts) & ((1 << bits) - 1)).astype(dtype)


def analog_mvm(x: NDArray[np.integer[Any]], w: NDArray[np.integer[Any]], cfg: AnalogConfig) -> NDArray[np.int64]:
    """:func:`analog_mvm_reference`, the same integers, fast (see the module docstring)."""
    x, w = _check_operands(x, w, cfg)
    return AnalogMatrix(w, cfg, checked=True).matmul(x, checked=True)


def _float_matmul(x: NDArray[Any], w: NDArray[Any], bound: int) -> NDArray[np.floating[Any]]:
    """``x @ w`` of integer-valued matrices, exactly: float32 BLAS over chunks of K whose
    partial sums stay below 2^24 (``bound`` = max |x| * max |w|), summed in float64 (float32
    when one chunk covers K: exact too)."""
    if bound == 0:
        return np.zeros((x.shape[0], w.shape[1]))
    chunk = (1 << 24) // bound
    if chunk < 16:
        return (np.asarray(x, np.float64) @ np.asarray(w, np.float64))
    x32, w32 = np.asarray(x, np.float32), np.asarray(w, np.float32)
    if chunk >= x.shape[1]:
        return x32 @ w32
    y = np.zeros((x.shape[0], w.shape[1]))
    for c0 in range(0, x.shape[1], chunk):
        y += x32[:, c0 : c0 + chunk] @ w32[c0 : c0 + chunk]
    return y


class AnalogMatrix:
    """A weight matrix (K, N) programmed into arrays: :meth:`matmul` is :func:`analog_mvm`
    with the weight-side preparation (cell digits, saturation bounds) done once."""

    def __init__(self, w: NDArray[np.integer[Any]], cfg: AnalogConfig, *, checked: bool = False) -> None:
        if not checked:
            _, w = _check_operands(np.zeros((0, np.shape(w)[0]), np.int64), w, cfg)
        self.cfg = cfg
        w64: NDArray[np.int64] = np.asarray(w, dtype=np.int64)
        self.k, self.n = w64.shape
        self.a, self.b = 1 << (cfg.input_bits - 1), 1 << (cfg.weight_bits - 1)
        wu: NDArray[np.int64] = w64 + self.b
        self.wu_sum = wu.sum(axis=0, keepdims=True)
        self.w32 = w64.astype(np.float32)
        self.blocks = [(r0, min(self.k, r0 + cfg.array_rows)) for r0 in range(0, self.k, cfg.array_rows)]
        # full scale < 2^24: partial sums exact in float32
        self.ftype: type = np.float32 if cfg.full_scale < (1 << 24) else np.float64
        dmax = (1 << cfg.dac_bits) - 1
        self.cells: list[NDArray[Any]] = []
        self.cols_ok: list[NDArray[np.bool_] | None] = []
        for r0, r1 in self.blocks:
            cells = _digits(wu[r0:r1], cfg.slices, cfg.cell_bits, np.int64)  # (T, R, N)
            ok = cells.sum(axis=1) * dmax > cfg.max_code  # (T, N): can this column saturate?
            self.cols_ok.append(ok if ok.any() else None)
            if cfg.adc_shift > 0:  # (R, N*T) for _quantised
                self.cells.append(np.ascontiguousarray(
                    cells.transpose(1, 2, 0)).reshape(r1 - r0, -1).astype(self.ftype))
            else:  # only where a saturation check needs them
                self.cells.append(cells if ok.any() else np.empty((0,), np.int64))

    def matmul(self, x: NDArray[Any], *, checked: bool = False) -> NDArray[np.int64]:
        """``x @ w`` as the arrays compute it, for x (M, K) of ``input_bits`` (with
        ``checked=True``: trusted, and integer values in any dtype)."""
        if not checked:
            x, _ = _check_operands(x, np.zeros((np.shape(x)[-1], 0), np.int64), self.cfg)
        return np.rint(self.matmul_float(x)).astype(np.int64)

    def matmul_float(self, x: NDArray[Any]) -> NDArray[np.floating[Any]]:
        """:meth:`matmul` for trusted integer-valued x, as exact integer-valued floats."""
        cfg = self.cfg
        bound = (1 << (cfg.input_bits - 1)) * (1 << (cfg.weight_bits - 1))
        if cfg.lossless:
            return _float_matmul(x, self.w32, bound)
        if cfg.adc_shift == 0:
            return self._saturating(x, bound)
        return self._quantised(np.asarray(x, dtype=np.int64))

    def _quantised(self, x: NDArray[np.int64]) -> NDArray[np.float64]:
        """ADC step > 1: every partial sum, by integer-valued float matmuls per row block.

        Cells are laid out (R, N, T) so that the partial sums (S, Mt, N, T) contract over the
        slices with one matrix-vector product, then over the steps with another: the shift
        ``2^(s*dac_bits + t*cell_bits)`` factors into ``2^(s*dac_bits) * 2^(t*cell_bits)``.
        """
        cfg, n = self.cfg, self.n
        m = x.shape[0]
        S, T = cfg.steps, cfg.slices
        xu = x + self.a
        by_slice: NDArray[Any] = np.ldexp(1.0, np.arange(T) * cfg.cell_bits + cfg.adc_shift).astype(self.ftype)
        by_step = np.ldexp(1.0, np.arange(S) * cfg.dac_bits)
        inv_step = 1.0 / (1 << cfg.adc_shift)
        cap = float(cfg.max_code)
        y = np.zeros((m, n), dtype=np.float64)
        rows_per_tile = max(1, _TILE_ELEMENTS // (S * T * n))
        for (r0, r1), cells in zip(self.blocks, self.cells, strict=True):
            for m0 in range(0, m, rows_per_tile):
                m1 = min(m, m0 + rows_per_tile)
                mt = m1 - m0
                digits = _digits(xu[m0:m1, r0:r1], S, cfg.dac_bits, self.ftype)  # (S, Mt, R)
                ps = digits.reshape(S * mt, r1 - r0) @ cells  # (S*Mt, N*T)
                ps *= inv_step  # exact: a power of two
                np.rint(ps, out=ps)  # ties to even
                np.minimum(ps, cap, out=ps)
                # exact: codes < 2^24 times powers of two, sums of at most T terms < 2^24 * 2^T
                z = np.einsum("it,t->i", ps.reshape(S * mt * n, T), by_slice).astype(np.float64)
                y[m0:m1] += (by_step @ z.reshape(S, mt * n)).reshape(mt, n)
        y -= self.b * xu.sum(axis=1, keepdims=True)
        y -= self.a * self.wu_sum
        y += self.k * self.a * self.b
        return y

    def _saturating(self, x: NDArray[Any], bound: int) -> NDArray[np.floating[Any]]:
        """ADC step 1: the exact product minus what saturation cuts off.

        ``ADC(PS) = PS - max(PS - cap, 0)``; a partial sum can exceed ``cap`` only where both
        the input digits' sum times the largest cell and the cells' sum times the largest
        digit do, so only those (input, column) pairs are computed.
        """
        cfg = self.cfg
        y = _float_matmul(x, self.w32, bound)
        cap = cfg.max_code
        cmax = (1 << cfg.cell_bits) - 1
        xu: NDArray[np.int64] | None = None
        for (r0, r1), cells, cols_ok in zip(self.blocks, self.cells, self.cols_ok, strict=True):
            if cols_ok is None:
                continue
            if xu is None:
                xu = np.asarray(x, dtype=np.int64) + self.a
            digits = _digits(xu[:, r0:r1], cfg.steps, cfg.dac_bits, np.int64)  # (S, M, R)
            rows_ok = digits.sum(axis=2) * cmax > cap  # (S, M)
            for s in np.flatnonzero(rows_ok.any(axis=1)):
                mi = np.flatnonzero(rows_ok[s])
                for t in np.flatnonzero(cols_ok.any(axis=1)):
                    ni = np.flatnonzero(cols_ok[t])
                    ps = digits[s][mi] @ cells[t][:, ni]
                    excess = np.maximum(ps - cap, 0)
                    if excess.any():
                        sh = int(s) * cfg.dac_bits + int(t) * cfg.cell_bits
                        if y.dtype != np.float64:  # float32 need not hold the corrected sums
                            y = y.astype(np.float64)
                        y[np.ix_(mi, ni)] -= excess << sh
        return y
