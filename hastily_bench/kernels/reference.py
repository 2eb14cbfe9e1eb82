"""NumPy reference kernels: the bit-exact specification, and float64 "ideal" versions.

The functions named like the public kernels (:func:`lut_exp`, :func:`softmax_lut`,
:func:`attention_int8`, :func:`quantize_int8`) perform exactly the arithmetic of the compiled
kernels, operation for operation, so that ``compiled == reference`` holds bit for bit
(``numpy.testing.assert_array_equal``). The ``*_ideal`` functions compute in float64 with the
true exponent; they bound the quantisation error and are never used to check the compiled code.
The full specification is in ``docs/kernels.md``.

The table exponent (HASTILY, arXiv 2502.12344, section on the UCLM lookup) is, for x <= 0::

    t = x * LOG2E                     (float64)
    N = floor(t * 128)                (t * 128 is exact)
    n = N >> 7,  d = N & 127          (n = floor(t), d = floor((t - n) * 128) in [0, 127])
    k = N / 128 = n + d / 128         (exact)
    r = x - k * LN2                   (two roundings: product, difference)
    e = (T[d] / 2^15) * (1 + r) * 2^n ("linear"; "none" drops the factor (1 + r))

with ``T = EXP2_TABLE_Q15``, 128 unsigned 16-bit entries ``round(2^(d/128) * 2^15)``, i.e. an
unsigned fixed-point number with 1 integer and 15 fractional bits (UQ1.15), range [1, 2).
Inputs below ``X_FLUSH`` are raised to it, and a result with n < -1022 is 0.
"""

from __future__ import annotations

import decimal
import math
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from . import _checks

__all__ = [
    "EXP2_TABLE_F64",
    "EXP2_TABLE_Q15",
    "FLOAT32_EXACT_HEAD_DIM",
    "LN2",
    "LN2_HI",
    "LN2_LO",
    "LOG2E",
    "Q15_MAX",
    "X_FLUSH",
    "attention_ideal",
    "attention_int8",
    "exp_exact",
    "int_scores",
    "lut_exp",
    "quantize_int8",
    "score_scale",
    "softmax_ideal",
    "softmax_lut",
]

# The same decimal literals as kernels/_common.pxd, hence the same doubles.
LOG2E = 1.4426950408889634
LN2 = 0.6931471805599453
#: ln 2 split for the "exact" exponent (Cody-Waite): LN2_HI has 32 significant bits, so
#: k * LN2_HI is exact for every k = n + d/128 with |n| < 2^14.
LN2_HI = 6.93147180369123816490e-01
LN2_LO = 1.90821492927058770002e-10
_C2, _C3, _C4, _C5, _C6 = 0.5, 0.16666666666666666, 0.041666666666666664, 0.008333333333333333, (
    0.001388888888888889
)
#: Inputs below this are raised to it (the result is 0 there anyway).
X_FLUSH = -1000.0
#: Probabilities in attention_int8 are Q0.15: round(e * 2^15), saturated at this value.
Q15_MAX = 32767
#: Q K^T of int8 data is exact in float32 while head_dim * 128 * 128 <= 2^24.
FLOAT32_EXACT_HEAD_DIM = 2**24 // (128 * 128)

Residual = Literal["none", "linear"]
Softmax = Literal["lut", "exact"]


def _exp2_decimal(k: int) -> decimal.Decimal:
    """2^(k/128) to 60 significant digits (``decimal``, independent of the platform's libm).

    60 digits leave about 140 bits of margin below the 53-bit (float64) and 16-bit roundings
    taken from it, so both are the correctly rounded values.
    """
    with decimal.localcontext() as ctx:
        ctx.prec = 60
        return decimal.Decimal(2) ** (decimal.Decimal(k) / decimal.Decimal(128))


def _tables() -> tuple[NDArray[np.uint16], NDArray[np.float64]]:
    exact = [_exp2_decimal(k) for k in range(128)]
    q15 = np.array(
        [int((e * 32768).to_integral_value(rounding=decimal.ROUND_HALF_EVEN)) for e in exact],
        dtype=np.uint16,
    )
    f64 = np.array([float(e) for e in exact], dtype=np.float64)  # float(Decimal) rounds correctly
    return q15, f64


#: The 128-entry ROM of the UCLM: round(2^(k/128) * 2^15) as uint16 (UQ1.15, 32768..65359).
#: EXP2_TABLE_F64: 2^(k/128) correctly rounded to float64 (the table of the "exact" exponent).
EXP2_TABLE_Q15, EXP2_TABLE_F64 = _tables()
EXP2_TABLE_Q15.flags.writeable = False
EXP2_TABLE_F64.flags.writeable = False
#: The Q15 table as exact float64 values in [1, 2), the form the kernels read.
_LUT_F64 = EXP2_TABLE_Q15.astype(np.float64) / 32768.0
_LUT_F64.flags.writeable = False

_MODES = {"none": 0, "linear": 1, "exact": 2}


def exp_table(mode: int) -> NDArray[np.float64]:
    """The 128-entry float64 table a kernel reads for ``mode`` (0/1: Q15 ROM, 2: exact)."""
    return EXP2_TABLE_F64 if mode == 2 else _LUT_F64


def exp_mode(softmax: str, residual: str) -> int:
    """Kernel mode number: 0 residual none, 1 residual linear, 2 the exact exponent."""
    return 2 if softmax == "exact" else _MODES[residual]


def _exp_spec(x: NDArray[np.float64], mode: int) -> NDArray[np.float64]:
    """The kernels' exponent, operation for operation; x float64, X_FLUSH <= x <= 0.

    ``N = floor(t * 128)`` gives n = N >> 7 and d = N & 127 at once: t * 128 is exact, so
    this is floor(t) and floor((t - floor(t)) * 128) of the design formula, without the
    rounding of t - floor(t) for -1 < t < 0.
    """
    t = x * LOG2E
    big_n = np.floor(t * 128.0)
    ni = big_n.astype(np.int64)
    n = ni >> 7
    k = big_n * 0.0078125  # n + d/128, exact
    e = exp_table(mode)[ni & 127]
    if mode == 1:
        r = x - k * LN2
        e = e * (1.0 + r)
    elif mode == 2:
        r = (x - k * LN2_HI) - k * LN2_LO
        p = r * _C6 + _C5
        p = p * r + _C4
        p = p * r + _C3
        p = p * r + _C2
        p = p * r + 1.0
        p = p * r + 1.0
        e = e * p
    # 2^n from its bits, exactly as the C code builds it
    pow2 = ((np.maximum(n, -1022) + 1023) << 52).view(np.float64)
    return np.where(n < -1022, 0.0, e * pow2)


def lut_exp(x: NDArray[np.floating[Any]], *, residual: Residual = "linear") -> NDArray[np.float64]:
    """Table exponent e^x for x <= 0 (reference; see :func:`hastily_bench.kernels.lut_exp`)."""
    mode = _MODES[_checks.choice("residual", residual, _checks.RESIDUALS)]
    xf = _checks.float_array("x", x)
    return _exp_spec(np.maximum(xf, X_FLUSH), mode)


def exp_exact(x: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
    """The "exact" exponent of ``attention_int8(softmax="exact")``: float64 table times a
    degree-6 polynomial of the residual (relative error below 1e-15 against ``numpy.exp`` for
    -64 <= x <= 0). Same input rules as :func:`lut_exp`."""
    xf = _checks.float_array("x", x)
    return _exp_spec(np.maximum(xf, X_FLUSH), 2)


def _lane_sums(e: NDArray[np.float64]) -> NDArray[np.float64]:
    """Row sums in the kernels' order: 8 lanes (j mod 8) summed in increasing j, then a tree."""
    rows, n = e.shape
    pad = (-n) % 8
    lanes = np.pad(e, ((0, 0), (0, pad))).reshape(rows, (n + pad) // 8, 8)
    a = np.cumsum(lanes, axis=1)[:, -1, :]  # cumsum adds sequentially, like the C loop
    return ((a[:, 0] + a[:, 1]) + (a[:, 2] + a[:, 3])) + ((a[:, 4] + a[:, 5]) + (a[:, 6] + a[:, 7]))


def softmax_lut(
    scores: NDArray[np.int32],
    scale: float,
    *,
    residual: Residual = "linear",
    n_threads: int | None = None,
) -> NDArray[np.float32]:
    """Row softmax of int32 scores with the table exponent (reference; see
    :func:`hastily_bench.kernels.softmax_lut`). ``n_threads`` is accepted and ignored."""
    s = _checks.array("scores", scores, np.int32, None)
    sc = _checks.scale("scale", scale)
    mode = _MODES[_checks.choice("residual", residual, _checks.RESIDUALS)]
    _checks.threads(n_threads)
    n = s.shape[-1]
    s2 = s.reshape(-1, n).astype(np.float64)
    x = sc * (s2 - s2.max(axis=1, keepdims=True))
    e = _exp_spec(np.maximum(x, X_FLUSH), mode)
    inv = 1.0 / _lane_sums(e)
    return (e * inv[:, None]).astype(np.float32).reshape(s.shape)


def score_scale(q_scale: float, k_scale: float, head_dim: int) -> float:
    """Real value of one int32 score unit: (q_scale * k_scale) / sqrt(head_dim), in float64."""
    return (float(q_scale) * float(k_scale)) / math.sqrt(float(head_dim))


def int_scores(q: NDArray[np.int8], k: NDArray[np.int8]) -> NDArray[np.int64]:
    """Exact integer Q K^T over the last two axes.

    Uses a float32 matmul while head_dim <= FLOAT32_EXACT_HEAD_DIM (1024): every product is
    an integer of magnitude <= 2^14 and every partial sum <= head_dim * 2^14 <= 2^24, all
    exactly representable in float32, whatever order or FMA the BLAS uses. Beyond, float64
    (exact up to head_dim < 2^39).
    """
    ft = np.float32 if q.shape[-1] <= FLOAT32_EXACT_HEAD_DIM else np.float64
    s = np.matmul(q.astype(ft), np.swapaxes(k.astype(ft), -1, -2))
    return s.astype(np.int64)


def _quantised_probs(
    s: NDArray[np.int64], c: float, mode: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Q0.15 probabilities E = min(trunc(e * 2^15 + 0.5), 32767) and their exact row sums."""
    sf = s.astype(np.float64)
    x = c * (sf - sf.max(axis=-1, keepdims=True))
    e = _exp_spec(np.maximum(x, X_FLUSH), mode)
    q = np.minimum((e * 32768.0 + 0.5).astype(np.int64), Q15_MAX)
    return q, q.sum(axis=-1)


def attention_int8(
    q: NDArray[np.int8],
    k: NDArray[np.int8],
    v: NDArray[np.int8],
    q_scale: float,
    k_scale: float,
    v_scale: float,
    *,
    softmax: Softmax = "lut",
    residual: Residual = "linear",
    n_threads: int | None = None,
) -> NDArray[np.float32]:
    """int8 attention in the kernels' exact arithmetic (reference; see
    :func:`hastily_bench.kernels.attention_int8`). ``n_threads`` is accepted and ignored.

    Materialises the score matrix (it is the specification, not the streaming kernel).
    """
    q, k, v, qs, ks, vs = _checks.attention_args(q, k, v, q_scale, k_scale, v_scale, softmax, residual)
    _checks.threads(n_threads)
    c = score_scale(qs, ks, q.shape[-1])
    e, sums = _quantised_probs(int_scores(q, k), c, exp_mode(softmax, residual))
    # exact: integers below 32767 * 128 * seq < 2^53, whatever the BLAS summation order
    acc = np.matmul(e.astype(np.float64), v.astype(np.float64))
    w = vs / sums.astype(np.float64)
    return (acc * w[..., None]).astype(np.float32)


def quantize_int8(x: NDArray[np.floating[Any]]) -> tuple[NDArray[np.int8], float]:
    """Per-tensor symmetric int8 quantisation.

    ``scale = max|x| / 127`` (1.0 for an all-zero tensor) and
    ``q = clip(rint(x / scale), -127, 127)`` (round half to even); ``x ~= q * scale``.

    Parameters
    ----------
    x : numpy.ndarray
        Non-empty floating array with finite values.

    Returns
    -------
    (numpy.ndarray of int8, float)
        The quantised tensor (same shape, C-contiguous) and its scale.
    """
    if not isinstance(x, np.ndarray):
        raise ValueError(f"x: expected a numpy.ndarray, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise ValueError(f"x: expected a floating dtype, got {x.dtype.name}")
    if x.size == 0:
        raise ValueError(f"x: empty array (shape {x.shape})")
    xf = x.astype(np.float64)
    if not np.isfinite(xf).all():
        raise ValueError("x: contains NaN or infinity")
    amax = float(np.abs(xf).max())
    scale = amax / 127.0 if amax > 0.0 else 1.0
    q = np.clip(np.rint(xf / scale), -127, 127).astype(np.int8)
    return np.ascontiguousarray(q), scale


def softmax_ideal(x: NDArray[np.floating[Any]], axis: int = -1) -> NDArray[np.float64]:
    """Float64 softmax with the true exponent (max-subtracted)."""
    xf = np.asarray(x, dtype=np.float64)
    e = np.exp(xf - xf.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def attention_ideal(
    q: NDArray[np.floating[Any]] | NDArray[np.integer[Any]],
    k: NDArray[np.floating[Any]] | NDArray[np.integer[Any]],
    v: NDArray[np.floating[Any]] | NDArray[np.integer[Any]],
    scale: float | None = None,
) -> NDArray[np.float64]:
    """Float64 attention softmax(scale * q k^T) v with the true exponent.

    ``scale`` defaults to 1/sqrt(head_dim). Pass dequantised data (``q8 * q_scale``...) to
    isolate the softmax and P.V error of :func:`attention_int8` from the input quantisation.
    """
    qf, kf, vf = (np.asarray(a, dtype=np.float64) for a in (q, k, v))
    sc = 1.0 / math.sqrt(qf.shape[-1]) if scale is None else float(scale)
    s = np.matmul(qf, np.swapaxes(kf, -1, -2)) * sc
    return np.matmul(softmax_ideal(s, axis=-1), vf)
