"""Integer attention kernels with the HASTILY table exponent.

Compiled from ``kernels/*.pyx`` (Cython, OpenMP when available) into
``hastily_bench.kernels._softmax`` and ``hastily_bench.kernels._attention``; every public
function here validates its arguments and then runs the compiled code, or the NumPy reference
(:mod:`hastily_bench.kernels.reference`) when the extension is missing or when the environment
variable ``HASTILY_PURE_PYTHON=1`` is set. Both give identical results, bit for bit.

The arithmetic (table format, exponent formula, score scaling, P.V, accumulation order) and
the measured error bounds are specified in ``docs/kernels.md``.

SIMD dispatch: one build holds a scalar, an AVX2 and an AVX-512 (F/DQ/BW/VL/VNNI) version of
every kernel (``kernels/simd/``; aarch64 and other platforms: scalar only). At import the
best level this CPU can execute is chosen (:func:`simd`); ``HASTILY_SIMD=scalar|avx2|avx512``
asks for a lower one. A level the CPU cannot run (or an unknown name) is not used: the best
level runs instead and :func:`backend` says why. Every level gives the same bits.

Attributes
----------
COMPILED : bool
    True when the public kernels run the compiled extension.
IMPORT_ERROR : str or None
    Why they do not (the import error, or the pure-Python switch); None when COMPILED.
PURE_PYTHON : bool
    True when ``HASTILY_PURE_PYTHON=1`` was set at import time.
SIMD_LEVELS : tuple of str
    Names of the SIMD levels, lowest first: ``("scalar", "avx2", "avx512")``.
SIMD_REASON : str
    Why ``HASTILY_SIMD`` was not followed ("" when it was, or was not set).
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Iterator
from types import ModuleType
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from . import _checks, reference
from .reference import quantize_int8

__all__ = [
    "COMPILED",
    "IMPORT_ERROR",
    "PURE_PYTHON",
    "SIMD_LEVELS",
    "SIMD_REASON",
    "attention_int8",
    "attention_scratch_bytes",
    "backend",
    "lut_exp",
    "quantize_int8",
    "reference",
    "simd",
    "simd_path",
    "simd_paths",
    "softmax_lut",
    "softmax_scratch_bytes",
]

PURE_PYTHON: bool = os.environ.get("HASTILY_PURE_PYTHON") == "1"

_attention: ModuleType | None = None
_softmax: ModuleType | None = None
IMPORT_ERROR: str | None = None
if PURE_PYTHON:
    IMPORT_ERROR = "not imported: HASTILY_PURE_PYTHON=1 routes every kernel to NumPy"
else:
    try:
        # import_module, not "from . import": the None placeholders above are package
        # attributes, and "from . import" would return them without importing anything.
        _attention = importlib.import_module(f"{__name__}._attention")
        _softmax = importlib.import_module(f"{__name__}._softmax")
    except ImportError as exc:  # a missing or broken build: fall back, and say why
        _attention = _softmax = None
        IMPORT_ERROR = f"{type(exc).__name__}: {exc}"
COMPILED: bool = _attention is not None and _softmax is not None

SIMD_LEVELS: tuple[str, ...] = ("scalar", "avx2", "avx512")


def _runnable_levels() -> tuple[int, ...]:
    """Levels compiled into this build that this CPU can execute, lowest first."""
    if _softmax is None:
        return ()
    top = int(_softmax.cpu_level())
    return tuple(int(lv) for lv in _softmax.compiled_levels() if int(lv) <= top)


def _choose_level() -> tuple[int, str]:
    """The level to run at import, and why it differs from what was asked ("" if it does not)."""
    levels = _runnable_levels()
    if not levels:
        return 0, ""
    best = levels[-1]
    asked = os.environ.get("HASTILY_SIMD", "").strip().lower()
    if not asked:
        return best, ""
    if asked not in SIMD_LEVELS:
        return best, (f"HASTILY_SIMD={asked!r} ignored: expected one of "
                      f"{', '.join(SIMD_LEVELS)}")
    want = SIMD_LEVELS.index(asked)
    if want not in levels:
        return best, (f"HASTILY_SIMD={asked} ignored: this CPU or build cannot run it "
                      f"(available: {', '.join(SIMD_LEVELS[lv] for lv in levels)})")
    return want, ""


_level, SIMD_REASON = _choose_level()

Residual = Literal["none", "linear"]
Softmax = Literal["lut", "exact"]


def backend() -> str:
    """Which implementation the public kernels run, with the SIMD path.

    Returns
    -------
    str
        ``"cython+openmp/avx512"``, ``"cython+openmp/avx2"``, ``"cython+openmp/scalar"``
        (``"cython/..."`` when compiled without OpenMP) or ``"numpy"``; when
        ``HASTILY_SIMD`` asked for a path that could not be used, the reason follows in
        parentheses, e.g. ``"cython+openmp/avx2 (HASTILY_SIMD=avx512 ignored: ...)"``.
    """
    if not COMPILED or _attention is None:
        return "numpy"
    name = ("cython+openmp" if _attention.OPENMP else "cython") + "/" + simd()
    return f"{name} ({SIMD_REASON})" if SIMD_REASON else name


def simd() -> str:
    """The SIMD path the compiled kernels run: ``"scalar"``, ``"avx2"`` or ``"avx512"``
    (``"none"`` on the NumPy backend)."""
    return SIMD_LEVELS[_level] if COMPILED else "none"


def simd_paths() -> tuple[str, ...]:
    """Every SIMD path this build can run on this CPU, lowest first (empty on NumPy)."""
    return tuple(SIMD_LEVELS[lv] for lv in _runnable_levels()) if COMPILED else ()


@contextlib.contextmanager
def simd_path(name: str) -> Iterator[None]:
    """Run the compiled kernels on SIMD path ``name`` inside the ``with`` block.

    For tests and benchmarks (every path in one process); it switches a module-level
    setting, so do not use it while other threads call the kernels.

    Raises
    ------
    ValueError
        ``name`` is not in :func:`simd_paths` (unknown, not built, or not runnable here).
    """
    global _level
    if name not in simd_paths():
        raise ValueError(f"name: SIMD path {name!r} is not available here "
                         f"(available: {', '.join(simd_paths()) or 'none'})")
    old, _level = _level, SIMD_LEVELS.index(name)
    try:
        yield
    finally:
        _level = old


def lut_exp(x: NDArray[np.floating[Any]], *, residual: Residual = "linear") -> NDArray[np.float64]:
    """e^x for x <= 0 by the HASTILY table decomposition 2^n * 2^(d/128) * e^r.

    With t = x * log2(e) (float64), n = floor(t), d = min(floor((t - n) * 128), 127) and
    r = x - (n + d/128) * ln 2, the result is ``T[d] / 2^15 * (1 + r) * 2^n``, where ``T`` is
    the 128-entry table of 16-bit entries round(2^(d/128) * 2^15) (unsigned, 15 fractional
    bits, UQ1.15; :data:`reference.EXP2_TABLE_Q15`).

    Parameters
    ----------
    x : numpy.ndarray
        Floating array (any shape, any float dtype: converted exactly to float64), no NaN,
        no value above 0; ``-inf`` gives 0. Values below -1000 give 0.
    residual : {"linear", "none"}
        ``"linear"`` takes e^r = 1 + r (one extra multiply); ``"none"`` takes e^r = 1.

    Returns
    -------
    numpy.ndarray
        float64, the shape of ``x``.

    Raises
    ------
    ValueError
        Naming ``x`` or ``residual``.

    Notes
    -----
    Measured maximum relative error against ``numpy.exp`` over -20 <= x <= 0
    (``docs/kernels.md``): residual "none" 5.41e-3 (the dropped e^r, up to
    1 - 2^(-1/128) = 5.40e-3, always below the true value, mean -2.7e-3), "linear" 2.72e-5
    (r^2/2 <= 1.47e-5 plus the 2^-16 rounding of the 16-bit table). Tests bound them by
    5.45e-3 and 2.8e-5.
    """
    mode = reference._MODES[_checks.choice("residual", residual, _checks.RESIDUALS)]
    xf = _checks.float_array("x", x)
    if not COMPILED or _softmax is None:
        return reference._exp_spec(np.maximum(xf, reference.X_FLUSH), mode)
    out = np.empty_like(xf)
    _softmax.lut_exp(xf.reshape(-1), out.reshape(-1), reference.exp_table(mode), mode, 0, _level)
    return out


def softmax_lut(
    scores: NDArray[np.int32],
    scale: float,
    *,
    residual: Residual = "linear",
    n_threads: int | None = None,
) -> NDArray[np.float32]:
    """Row-wise softmax of int32 scores with the table exponent.

    For each row (last axis): ``m = max(s)``, ``x = scale * (s - m)`` (float64, <= 0),
    ``e = lut_exp(x)``, the row sum of ``e`` accumulated in float64 in a fixed order (8 lanes,
    lane l summing the elements j = l mod 8 in increasing j, then ((l0+l1)+(l2+l3)) +
    ((l4+l5)+(l6+l7))), then ``p = float32(e * (1 / sum))``: one division per row.

    Parameters
    ----------
    scores : numpy.ndarray of int32
        C-contiguous, at least 1-d, non-empty; softmax over the last axis.
    scale : float
        Real value of one score unit (finite, > 0).
    residual : {"linear", "none"}
        Residual factor of the table exponent (see :func:`lut_exp`).
    n_threads : int, optional
        OpenMP threads (rows are split between them); default: the OpenMP default.

    Returns
    -------
    numpy.ndarray of float32
        The shape of ``scores``.

    Raises
    ------
    ValueError
        Naming ``scores``, ``scale``, ``residual`` or ``n_threads``.

    Notes
    -----
    Measured error against the float64 softmax of the same scores (``docs/kernels.md``):
    maximum relative error of a probability 4.4e-3 (residual "none") and 2.7e-5
    ("linear"); tests bound them by 1.1e-2 and 6e-5.
    """
    s = _checks.array("scores", scores, np.int32, None)
    sc = _checks.scale("scale", scale)
    mode = reference._MODES[_checks.choice("residual", residual, _checks.RESIDUALS)]
    nt = _checks.threads(n_threads)
    if not COMPILED or _softmax is None:
        return reference.softmax_lut(s, sc, residual=residual)
    n = s.shape[-1]
    out = np.empty(s.shape, dtype=np.float32)
    _softmax.softmax_lut(
        s.reshape(-1, n), sc, out.reshape(-1, n), reference.exp_table(mode), mode, nt, _level
    )
    return out


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
    """Scaled dot-product attention on int8 data, streaming: no seq x seq score matrix.

    Real inputs are ``q * q_scale``, ``k * k_scale``, ``v * v_scale``. Arithmetic, per head
    and query row i (exactly that of :func:`reference.attention_int8`):

    1. ``S[j] = sum_d q[i,d] * k[j,d]`` in int32 (exact);
    2. ``x[j] = c * (S[j] - max S)`` with ``c = (q_scale * k_scale) / sqrt(head_dim)``, float64;
    3. ``e[j]`` = table exponent of x (``softmax="lut"``, see :func:`lut_exp`) or the float64
       exponent (``softmax="exact"``, :func:`reference.exp_exact`, within 1e-15 of e^x);
    4. probabilities in Q0.15: ``E[j] = min(trunc(e[j] * 2^15 + 0.5), 32767)`` (int16), and
       their exact integer sum ``Z``;
    5. ``A[d] = sum_j E[j] * v[j,d]``, exact (int32 within tiles of 512 keys, int64 across);
    6. ``out[i,d] = float32(float64(A[d]) * (v_scale / Z))``.

    Work is split over blocks of 4 query rows (OpenMP); each block keeps its 4 x seq int32
    scores, so extra memory is O(seq x tile) (:func:`attention_scratch_bytes`).

    Parameters
    ----------
    q, k, v : numpy.ndarray of int8
        C-contiguous, shape (heads, seq, head_dim) or (batch, heads, seq, head_dim); k and v
        have the same shape, and the leading dimensions and head_dim of q (q may have a
        different seq). head_dim <= 131071.
    q_scale, k_scale, v_scale : float
        Per-tensor scales (finite, > 0), e.g. from :func:`quantize_int8`.
    softmax : {"lut", "exact"}
        Table exponent or the float64 exponent.
    residual : {"linear", "none"}
        Residual of the table exponent; ignored when ``softmax="exact"``.
    n_threads : int, optional
        OpenMP threads; default: the OpenMP default (``OMP_NUM_THREADS``).

    Returns
    -------
    numpy.ndarray of float32
        Shape of q.

    Raises
    ------
    ValueError
        Naming the offending argument (dtype, contiguity, shape, empty array, scale, name).

    Notes
    -----
    Error against float64 attention of the dequantised inputs (relative Frobenius norm,
    ``docs/kernels.md``): about 2e-5 for "exact" and "lut"/"linear" on N(0, 1) data (the
    Q0.15 probabilities; up to 6e-4 on sharply peaked rows), 1.6e-3 for "lut"/"none".
    The int8 quantisation of the inputs themselves costs about 1e-2
    (:func:`hastily_bench.numerics.attention_rel_error`).
    """
    q, k, v, qs, ks, vs = _checks.attention_args(q, k, v, q_scale, k_scale, v_scale, softmax, residual)
    nt = _checks.threads(n_threads)
    if not COMPILED or _attention is None:
        return reference.attention_int8(q, k, v, qs, ks, vs, softmax=softmax, residual=residual)
    d = q.shape[-1]
    mode = reference.exp_mode(softmax, residual)
    c = reference.score_scale(qs, ks, d)
    out = np.empty(q.shape, dtype=np.float32)
    _attention.attention(
        q.reshape(-1, q.shape[-2], d),
        k.reshape(-1, k.shape[-2], d),
        v.reshape(-1, v.shape[-2], d),
        c,
        vs,
        reference.exp_table(mode),
        mode,
        out.reshape(-1, q.shape[-2], d),
        nt,
        _level,
    )
    return out


def attention_scratch_bytes(
    seq_q: int, seq_k: int, head_dim: int, n_threads: int | None = None
) -> int:
    """Bytes :func:`attention_int8` allocates beyond its inputs and output (compiled path).

    The kernel's own accounting: packed int16 K and V of one head, and per thread a block of
    4 x seq_k int32 scores, 4 x seq_k int16 probabilities and small accumulators. Independent
    of the number of heads. Returns 0 on the NumPy backend (which is not streaming).
    """
    if not COMPILED or _attention is None:
        return 0
    nt = _checks.threads(n_threads) or _default_threads()
    return int(_attention.scratch_bytes(seq_q, seq_k, head_dim, nt, _level))


def softmax_scratch_bytes(n: int, n_threads: int | None = None) -> int:
    """Bytes :func:`softmax_lut` allocates beyond its input and output (compiled path):
    one float64 row of ``n`` exponents per thread. 0 on the NumPy backend."""
    if not COMPILED or _softmax is None:
        return 0
    nt = _checks.threads(n_threads) or _default_threads()
    return int(_softmax.scratch_bytes(n, nt))


def _default_threads() -> int:
    env = os.environ.get("OMP_NUM_THREADS", "")
    try:
        return max(1, int(env.split(",")[0]))
    except ValueError:
        return os.cpu_count() or 1
