"""Measured numerics: the attention error of an accelerator's arithmetic, by running it.

:func:`attention_rel_error` executes one arithmetic (int8 or fp16 matrix products; table or
exact exponent) on seeded, BERT-like attention data and returns its relative error against
float64 attention of the same unquantised data. Several accelerators share an arithmetic, so
results are cached by argument.

The data generator (documented in ``docs/kernels.md``)
-----------------------------------------------------
Per (batch, head): keys ``K ~ N(0, 1)`` of shape (seq, head_dim), values ``V ~ N(0, 1)``.
Each query row at position ``p`` attends to three "dominant" keys, like trained BERT heads
(a sink on the first token, a neighbour, one content match)::

    q_p = BETA * (1.0 * K[0] + 0.7 * K[p +- 1] + 0.5 * K[random]) + NOISE * N(0, 1)

With BETA = 1.2 and NOISE = 0.5 the dominant logits are about 9.6, 6.7 and 4.8 against a
background of standard deviation about 1.7: the top key holds roughly 0.75 of a row's mass
at seq 512 and 0.4 at seq 4096. The generator is ``numpy.random.default_rng`` seeded with
(seed, batch, heads, seq_len, head_dim), so every call with the same arguments sees the same
data and returns the same float.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import kernels
from .kernels import reference

__all__ = [
    "BETA",
    "MATMULS",
    "MODES",
    "NOISE",
    "FULL_MAX_BYTES",
    "SAMPLE_MAX_HEADS",
    "SAMPLE_MAX_HEAD_DIM",
    "SAMPLE_MAX_KEYS",
    "SAMPLE_MAX_ROWS",
    "attention_rel_error",
    "check_case_size",
    "fixed_order_matmul",
]

#: Strength of the dominant keys in the generated queries.
BETA = 1.2
#: Standard deviation of the query noise.
NOISE = 0.5
#: Weights of the three dominant keys (sink, neighbour, content match).
TARGET_WEIGHTS = (1.0, 0.7, 0.5)
#: mode="sample": at most this many heads (of the first batch element) ...
SAMPLE_MAX_HEADS = 2
#: ... at most this many query rows per head, evenly spaced over the sequence ...
SAMPLE_MAX_ROWS = 256
#: ... and at most this many keys (the sequence is cut to this length) ...
SAMPLE_MAX_KEYS = 4096
#: ... and at most this head width (wider heads are sampled at this width; BERT-class
#: models have 64 to 128), so a sample stays small and fast.
SAMPLE_MAX_HEAD_DIM = 256
#: mode="full" refuses a case whose data (q, k, v and the ideal's scores) needs more memory.
FULL_MAX_BYTES = 4 << 30
#: Output elements per block of :func:`fixed_order_matmul` (about 256 kB of float64).
_MATMUL_BLOCK = 1 << 15
#: Query rows per chunk of the float64 ideal (bounds its memory in mode="full").
_IDEAL_ROWS = 256
#: Cases up to this many key elements keep their data and ideal in memory (about 4 MB).
_CASE_CACHE_ELEMENTS = 2 * 4096 * 64

MATMULS = ("int8", "fp16")
MODES = ("sample", "full")


def _check(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, allowed))}, got {value!r}")


def _check_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")


def _generate(
    batch: int, heads: int, seq_len: int, rows: int, head_dim: int, seed: int
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Seeded BERT-like q (batch, heads, rows, d), k and v (batch, heads, seq_len, d)."""
    rng = np.random.default_rng([seed, batch, heads, seq_len, head_dim, rows])
    k = rng.standard_normal((batch, heads, seq_len, head_dim))
    v = rng.standard_normal((batch, heads, seq_len, head_dim))
    pos = np.linspace(0, seq_len - 1, rows).round().astype(np.int64)
    step = np.where(rng.random((batch, heads, rows)) < 0.5, -1, 1)
    neighbour = np.clip(pos + step, 0, seq_len - 1)
    content = rng.integers(0, seq_len, size=(batch, heads, rows))
    bi = np.arange(batch)[:, None, None]
    hi = np.arange(heads)[None, :, None]
    w0, w1, w2 = TARGET_WEIGHTS
    q = BETA * (w0 * k[:, :, :1, :] + w1 * k[bi, hi, neighbour] + w2 * k[bi, hi, content])
    q += NOISE * rng.standard_normal(q.shape)
    return q, k, v


def fixed_order_matmul(a: NDArray[Any], b: NDArray[Any]) -> NDArray[Any]:
    """``a @ b`` over the last two axes, summing the k products in order 0, 1, ..., k-1.

    Every output element is ``((a0 b0 + a1 b1) + a2 b2) + ...`` in the inputs' dtype, each
    step an IEEE multiply and add (NumPy ufuncs, no fused multiply-add). Unlike BLAS, whose
    blocking and summation order change with the thread count and the CPU, the result is
    the same bytes on every machine and thread count (issue 12, case 18).
    """
    b = np.ascontiguousarray(b)
    shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1])
    out = np.zeros(shape, dtype=np.result_type(a, b))
    m, n = shape[-2], shape[-1]
    # blocks of output rows small enough to stay in cache while the k products add up
    rows = max(1, _MATMUL_BLOCK // max(1, n * math.prod(shape[:-2])))
    tmp = np.empty((*shape[:-2], min(rows, m), n), dtype=out.dtype)
    for r0 in range(0, m, rows):
        o = out[..., r0 : r0 + rows, :]
        t = tmp[..., : o.shape[-2], :]
        a_rows = a[..., r0 : r0 + rows, :]
        for i in range(a.shape[-1]):
            np.multiply(a_rows[..., :, i, None], b[..., i, None, :], out=t)
            o += t
    return out


def check_case_size(*, heads: int, seq_len: int, head_dim: int, batch: int, mode: str) -> None:
    """Raise ``ValueError`` (with the limit) when ``mode="full"`` would need too much memory.

    ``mode="sample"`` is bounded by the SAMPLE_MAX_* caps and always passes.
    """
    if mode != "full":
        return
    need = 8 * (3 * batch * heads * seq_len * head_dim + 3 * heads * _IDEAL_ROWS * seq_len)
    if need > FULL_MAX_BYTES:
        raise ValueError(
            f"--numerics full: attention of {batch} x {heads} heads x {seq_len} tokens x "
            f"{head_dim} needs about {need / 2**30:.1f} GiB, above the limit of "
            f"{FULL_MAX_BYTES >> 30} GiB; use --numerics sample")


def _fp16_attention(
    q: NDArray[np.float64], k: NDArray[np.float64], v: NDArray[np.float64], softmax: str,
    residual: str,
) -> NDArray[np.float64]:
    """Inputs rounded to float16, products in float32 (NumPy), softmax exact or table."""
    q16, k16, v16 = (a.astype(np.float16).astype(np.float32) for a in (q, k, v))
    s = fixed_order_matmul(q16, np.swapaxes(k16, -1, -2)) * np.float32(1.0 / math.sqrt(q.shape[-1]))
    s -= s.max(axis=-1, keepdims=True)
    if softmax == "exact":
        e32 = np.exp(s)
        p = e32 / e32.sum(axis=-1, keepdims=True)
    else:
        e = kernels.lut_exp(s.astype(np.float64), residual=residual)  # type: ignore[arg-type]
        p = (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
    return fixed_order_matmul(p, v16).astype(np.float64)


def _int8_attention(
    q: NDArray[np.float64], k: NDArray[np.float64], v: NDArray[np.float64], softmax: str,
    residual: str,
) -> NDArray[np.float64]:
    """Per-tensor symmetric int8 inputs through :func:`hastily_bench.kernels.attention_int8`."""
    q8, qs = kernels.quantize_int8(q)
    k8, ks = kernels.quantize_int8(k)
    v8, vs = kernels.quantize_int8(v)
    # One thread: these calls are small, interleave with NumPy's BLAS, and OpenMP and
    # OpenBLAS threads spinning side by side on few cores cost more than a second thread gains.
    # The result does not depend on the thread count.
    out = kernels.attention_int8(
        q8, k8, v8, qs, ks, vs, softmax=softmax, residual=residual, n_threads=1  # type: ignore[arg-type]
    )
    return out.astype(np.float64)


def attention_rel_error(
    *,
    matmul: str,
    softmax: str,
    residual: str = "linear",
    heads: int,
    seq_len: int,
    head_dim: int,
    batch: int = 1,
    mode: str = "sample",
    seed: int = 0,
) -> float:
    """Relative error of one attention arithmetic against float64 attention, measured.

    Parameters
    ----------
    matmul : {"int8", "fp16"}
        ``"int8"``: q, k, v quantised per tensor (symmetric, :func:`kernels.quantize_int8`)
        and run through :func:`kernels.attention_int8` (int32 scores, Q0.15 probabilities,
        exact P.V). ``"fp16"``: inputs rounded to float16, products in float32 (NumPy), as a
        GPU stack computing in half precision.
    softmax : {"exact", "lut"}
        The true exponent, or the HASTILY table exponent.
    residual : {"linear", "none"}
        Residual of the table exponent (ignored for ``softmax="exact"``).
    heads, seq_len, head_dim, batch : int
        Attention shape (>= 1).
    mode : {"sample", "full"}
        ``"sample"`` bounds the cost: the first batch element, at most SAMPLE_MAX_HEADS (2)
        heads, SAMPLE_MAX_ROWS (256) query rows spread over the sequence, and keys cut to
        SAMPLE_MAX_KEYS (4096), head width cut to SAMPLE_MAX_HEAD_DIM (256). ``"full"``
        runs every batch element, head and row, and refuses (``ValueError``) a case whose
        data needs more than FULL_MAX_BYTES (4 GiB).
    seed : int
        Seed of the data generator (module docstring).

    Returns
    -------
    float
        ``||out - ideal||_F / ||ideal||_F`` over all rows computed, where ``ideal`` is float64
        attention with the true exponent of the same unquantised data. Deterministic: the
        float products are summed in a fixed order (:func:`fixed_order_matmul`), so the value
        does not depend on the number of threads.

    Raises
    ------
    ValueError
        Naming the offending argument.
    """
    _check("matmul", matmul, MATMULS)
    _check("softmax", softmax, ("exact", "lut"))
    _check("residual", residual, ("none", "linear"))
    _check("mode", mode, MODES)
    for name, value in (("heads", heads), ("seq_len", seq_len), ("head_dim", head_dim),
                        ("batch", batch)):
        _check_int(name, value)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed: expected an integer >= 0, got {seed!r}")
    if softmax == "exact":
        residual = "linear"  # ignored: one cache entry
    check_case_size(heads=heads, seq_len=seq_len, head_dim=head_dim, batch=batch, mode=mode)
    if mode == "sample":
        batch, heads = 1, min(heads, SAMPLE_MAX_HEADS)
        head_dim = min(head_dim, SAMPLE_MAX_HEAD_DIM)
        seq_k = min(seq_len, SAMPLE_MAX_KEYS)
        rows = min(seq_k, SAMPLE_MAX_ROWS)
    else:
        seq_k = rows = seq_len
    return _rel_error(matmul, softmax, residual, batch, heads, seq_k, rows, head_dim, seed)


@functools.lru_cache(maxsize=1024)
def _rel_error(
    matmul: str, softmax: str, residual: str, b: int, h: int, lk: int, rows: int, head_dim: int,
    seed: int,
) -> float:
    if b * h * lk * head_dim <= _CASE_CACHE_ELEMENTS:
        q, k, v, ideal = _sample_case(b, h, lk, rows, head_dim, seed)
    else:
        q, k, v = _generate(b, h, lk, rows, head_dim, seed)
        ideal = None
    # int8: one per-tensor scale over the whole (batch, heads, ...) tensor, one kernel call
    out = _int8_attention(q, k, v, softmax, residual) if matmul == "int8" else None
    err2 = 0.0
    ref2 = 0.0
    for i in range(b):
        for r0 in range(0, rows, _IDEAL_ROWS):
            r1 = min(rows, r0 + _IDEAL_ROWS)
            want = _ideal(q[i, :, r0:r1], k[i], v[i]) if ideal is None else ideal[i, :, r0:r1]
            if out is not None:
                got = out[i, :, r0:r1]
            else:
                got = _fp16_attention(q[i, :, r0:r1], k[i], v[i], softmax, residual)
            err2 += float(np.sum((got - want) ** 2))
            ref2 += float(np.sum(want**2))
    return math.sqrt(err2 / ref2)


def _ideal(q: NDArray[np.float64], k: NDArray[np.float64], v: NDArray[np.float64]) -> NDArray[np.float64]:
    """:func:`reference.attention_ideal` with its products in a fixed summation order."""
    s = fixed_order_matmul(q, np.swapaxes(k, -1, -2)) * (1.0 / math.sqrt(q.shape[-1]))
    return fixed_order_matmul(reference.softmax_ideal(s, axis=-1), v)


@functools.lru_cache(maxsize=16)
def _sample_case(
    b: int, h: int, lk: int, rows: int, head_dim: int, seed: int
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Data and float64 ideal of a small case, shared by every arithmetic measured on it."""
    q, k, v = _generate(b, h, lk, rows, head_dim, seed)
    ideal = np.concatenate(
        [_ideal(q[:, :, r0 : r0 + _IDEAL_ROWS], k, v) for r0 in range(0, rows, _IDEAL_ROWS)],
        axis=2,
    )
    for a in (q, k, v, ideal):
        a.flags.writeable = False
    return q, k, v, ideal
