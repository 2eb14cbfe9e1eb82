"""Argument validation shared by the public wrappers and the NumPy reference.

Every failure is a ``ValueError`` whose message starts with the offending argument's name,
e.g. ``"q: expected int8, got float32"``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

#: Residual variants of the table exponent.
RESIDUALS = ("none", "linear")
#: Softmax variants of :func:`attention_int8`.
SOFTMAXES = ("lut", "exact")
#: Largest head_dim whose int32 scores cannot overflow: head_dim * 128 * 128 < 2^31.
MAX_HEAD_DIM = (2**31 - 1) // (128 * 128)


def array(
    name: str, a: Any, dtype: type[np.generic], ndims: tuple[int, ...] | None
) -> np.ndarray:
    """Check that ``a`` is a non-empty C-contiguous ndarray of ``dtype`` with ndim in ``ndims``
    (``None``: at least one dimension)."""
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{name}: expected a numpy.ndarray, got {type(a).__name__}")
    if a.dtype != np.dtype(dtype):
        raise ValueError(f"{name}: expected {np.dtype(dtype).name}, got {a.dtype.name}")
    if ndims is None and a.ndim == 0:
        raise ValueError(f"{name}: expected at least 1 dimension, got a 0-d array")
    if ndims is not None and a.ndim not in ndims:
        want = " or ".join(str(n) for n in ndims)
        raise ValueError(f"{name}: expected {want} dimensions, got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{name}: empty array (shape {a.shape})")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name}: expected a C-contiguous array (use numpy.ascontiguousarray)")
    return a


def float_array(name: str, a: Any) -> np.ndarray:
    """Check a non-empty floating array with no NaN and no value above 0; return it as float64."""
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{name}: expected a numpy.ndarray, got {type(a).__name__}")
    if a.dtype.kind != "f":
        raise ValueError(f"{name}: expected a floating dtype, got {a.dtype.name}")
    if a.size == 0:
        raise ValueError(f"{name}: empty array (shape {a.shape})")
    x = np.ascontiguousarray(a, dtype=np.float64)
    if np.isnan(x).any():
        raise ValueError(f"{name}: contains NaN")
    if (x > 0.0).any():
        raise ValueError(f"{name}: the table exponent takes x <= 0 (subtract the row max first)")
    return x


def scale(name: str, value: Any) -> float:
    """Check a finite scale > 0 (a Python or NumPy real number, not a bool)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}: expected a finite number > 0, got {type(value).__name__}")
    out = float(value)
    if not math.isfinite(out) or out <= 0.0:
        raise ValueError(f"{name}: expected a finite number > 0, got {out!r}")
    return out


def choice(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    """Check that ``value`` is one of ``allowed``."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value


def threads(value: Any) -> int:
    """Check n_threads (None or an int >= 1); return 0 for "the OpenMP default"."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 1:
        raise ValueError(f"n_threads: expected None or an integer >= 1, got {value!r}")
    return int(value)


def attention_args(
    q: Any, k: Any, v: Any, q_scale: Any, k_scale: Any, v_scale: Any, softmax: Any, residual: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float, float]:
    """Validate the arguments of ``attention_int8``; return the arrays and the three scales."""
    q = array("q", q, np.int8, (3, 4))
    k = array("k", k, np.int8, (3, 4))
    v = array("v", v, np.int8, (3, 4))
    if k.ndim != q.ndim or v.ndim != q.ndim:
        raise ValueError(f"k: expected {q.ndim} dimensions like q, got shape {k.shape} / v {v.shape}")
    if k.shape[:-2] != q.shape[:-2]:
        raise ValueError(f"k: batch/head dimensions {k.shape[:-2]} differ from q's {q.shape[:-2]}")
    if k.shape[-1] != q.shape[-1]:
        raise ValueError(f"k: head_dim {k.shape[-1]} differs from q's {q.shape[-1]}")
    if v.shape != k.shape:
        raise ValueError(f"v: expected the shape of k {k.shape}, got {v.shape}")
    if q.shape[-1] > MAX_HEAD_DIM:
        raise ValueError(f"q: head_dim {q.shape[-1]} exceeds {MAX_HEAD_DIM} (int32 scores)")
    qs = scale("q_scale", q_scale)
    ks = scale("k_scale", k_scale)
    vs = scale("v_scale", v_scale)
    choice("softmax", softmax, SOFTMAXES)
    choice("residual", residual, RESIDUALS)
    return q, k, v, qs, ks, vs
