"""Bad inputs raise ValueError naming the offending argument."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from hastily_bench import kernels
from hastily_bench.kernels import reference

RNG = np.random.default_rng(20)
Q = RNG.integers(-128, 128, (2, 5, 8), dtype=np.int8)
K = RNG.integers(-128, 128, (2, 7, 8), dtype=np.int8)
V = RNG.integers(-128, 128, (2, 7, 8), dtype=np.int8)
IMPLS = [kernels, reference]


def _attn(impl: Any, **over: Any) -> Any:
    args = {"q": Q, "k": K, "v": V, "q_scale": 0.1, "k_scale": 0.1, "v_scale": 0.1}
    args.update(over)
    return impl.attention_int8(**args)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    ("over", "match"),
    [
        ({"q": Q.astype(np.float32)}, "^q: expected int8, got float32"),
        ({"k": K.astype(np.int16)}, "^k: expected int8, got int16"),
        ({"v": V.tolist()}, "^v: expected a numpy.ndarray"),
        ({"q": np.asfortranarray(Q)}, "^q: expected a C-contiguous"),
        ({"k": K[:, ::2]}, "^k: expected a C-contiguous"),
        ({"q": Q[0, 0]}, "^q: expected 3 or 4 dimensions"),
        ({"q": np.zeros((2, 0, 8), np.int8)}, "^q: empty array"),
        ({"k": np.zeros((2, 0, 8), np.int8), "v": np.zeros((2, 0, 8), np.int8)}, "^k: empty"),
        ({"k": K[:1].copy()}, "^k: batch/head dimensions"),
        ({"k": K[..., :4].copy()}, "^k: head_dim 4 differs"),
        ({"v": V[:, :6].copy()}, "^v: expected the shape of k"),
        ({"k": K[None]}, "^k: expected 3 dimensions like q"),
        ({"q_scale": float("nan")}, "^q_scale: expected a finite number > 0"),
        ({"k_scale": float("inf")}, "^k_scale: expected a finite number > 0"),
        ({"v_scale": 0.0}, "^v_scale: expected a finite number > 0"),
        ({"v_scale": -1.0}, "^v_scale"),
        ({"q_scale": "0.1"}, "^q_scale"),
        ({"q_scale": True}, "^q_scale"),
        ({"softmax": "fast"}, "^softmax: expected one of 'lut', 'exact'"),
        ({"residual": "quadratic"}, "^residual: expected one of"),
        ({"n_threads": 0}, "^n_threads"),
        ({"n_threads": 1.5}, "^n_threads"),
    ],
)
def test_attention_bad_inputs(impl: Any, over: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _attn(impl, **over)


def test_attention_rejects_huge_head_dim() -> None:
    q = np.zeros((1, 1, 131072), np.int8)
    with pytest.raises(ValueError, match="^q: head_dim 131072 exceeds"):
        kernels.attention_int8(q, q, q, 1.0, 1.0, 1.0)


S = RNG.integers(-100, 100, (3, 9), dtype=np.int32)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    ("args", "kw", "match"),
    [
        ((S.astype(np.int64), 0.1), {}, "^scores: expected int32, got int64"),
        ((S.T, 0.1), {}, "^scores: expected a C-contiguous"),
        ((np.zeros((3, 0), np.int32), 0.1), {}, "^scores: empty array"),
        ((np.array(3, dtype=np.int32), 0.1), {}, "^scores: expected at least 1 dim"),
        ((S, float("nan")), {}, "^scale: expected a finite number > 0"),
        ((S, -0.5), {}, "^scale"),
        ((S, 0.1), {"residual": "exact"}, "^residual"),
        ((S, 0.1), {"n_threads": -2}, "^n_threads"),
    ],
)
def test_softmax_bad_inputs(impl: Any, args: tuple, kw: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        impl.softmax_lut(*args, **kw)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    ("x", "kw", "match"),
    [
        (np.array([-1, 0]), {}, "^x: expected a floating dtype, got int64"),
        (np.array([-1.0, 0.5]), {}, "^x: the table exponent takes x <= 0"),
        (np.array([-1.0, np.nan]), {}, "^x: contains NaN"),
        (np.array([np.inf]), {}, "^x: the table exponent"),
        (np.zeros(0), {}, "^x: empty array"),
        ([-1.0], {}, "^x: expected a numpy.ndarray"),
        (np.array([-1.0]), {"residual": "linear "}, "^residual"),
    ],
)
def test_lut_exp_bad_inputs(impl: Any, x: Any, kw: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        impl.lut_exp(x, **kw)


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (np.array([1, 2]), "^x: expected a floating dtype"),
        (np.zeros((0, 3)), "^x: empty array"),
        (np.array([1.0, np.inf]), "^x: contains NaN or infinity"),
        ((1.0, 2.0), "^x: expected a numpy.ndarray"),
    ],
)
def test_quantize_bad_inputs(x: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        kernels.quantize_int8(x)
