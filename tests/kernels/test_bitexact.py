"""Compiled kernels == NumPy reference, bit for bit (numpy.testing.assert_array_equal), on
every SIMD path this machine can execute (``kernels.simd_paths()``), in one test run."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from hastily_bench import kernels
from hastily_bench.kernels import reference

pytestmark = pytest.mark.skipif(
    kernels.PURE_PYTHON,
    reason="HASTILY_PURE_PYTHON=1: the public kernels are the reference, nothing to compare",
)

#: Every path this CPU runs (scalar, avx2, avx512 where present); ["none"] on NumPy.
PATHS = list(kernels.simd_paths()) or ["none"]
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def _on(path: str) -> Any:
    """Run the kernels on SIMD path ``path`` ("none": the NumPy backend, nothing to switch)."""
    return contextlib.nullcontext() if path == "none" else kernels.simd_path(path)


KINDS = ("uniform", "extremes", "equal_rows", "small", "one_hot")


def _int8(rng: np.random.Generator, shape: tuple[int, ...], kind: str) -> np.ndarray:
    if kind == "extremes":
        return rng.choice(np.array([-128, 127], dtype=np.int8), size=shape)
    if kind == "equal_rows":  # every key equal: all scores of a row equal
        row = rng.integers(-128, 128, size=shape[-1], dtype=np.int8)
        return np.ascontiguousarray(np.broadcast_to(row, shape))
    if kind == "small":
        return rng.integers(-2, 3, size=shape, dtype=np.int8)
    if kind == "one_hot":
        a = np.zeros(shape, dtype=np.int8)
        a[..., 0] = 127
        return a
    return rng.integers(-128, 128, size=shape, dtype=np.int8)


@st.composite
def attention_case(draw: st.DrawFn) -> dict[str, object]:
    batch = draw(st.sampled_from([(), (1,), (2,)]))
    heads = draw(st.integers(1, 3))
    lq = draw(st.integers(1, 41))
    lk = draw(st.integers(1, 75))
    d = draw(st.integers(1, 70))
    seed = draw(st.integers(0, 2**32 - 1))
    kinds = [draw(st.sampled_from(KINDS)) for _ in range(3)]
    # from nearly flat rows to very negative scores (x far below -64)
    scales = [draw(st.sampled_from([1e-5, 3e-3, 0.02, 0.1, 1.0, 30.0])) for _ in range(3)]
    rng = np.random.default_rng(seed)
    q = _int8(rng, (*batch, heads, lq, d), kinds[0])
    k = _int8(rng, (*batch, heads, lk, d), kinds[1])
    v = _int8(rng, (*batch, heads, lk, d), kinds[2])
    return {"q": q, "k": k, "v": v, "scales": scales}


@pytest.mark.parametrize("path", PATHS)
@SETTINGS
@given(case=attention_case(), softmax=st.sampled_from(["lut", "exact"]),
       residual=st.sampled_from(["none", "linear"]))
def test_attention_matches_reference(case: dict, softmax: str, residual: str, path: str) -> None:
    with _on(path):
        args = (case["q"], case["k"], case["v"], *case["scales"])
        got = kernels.attention_int8(*args, softmax=softmax, residual=residual)
        want = reference.attention_int8(*args, softmax=softmax, residual=residual)
        assert got.dtype == np.float32 and got.shape == case["q"].shape
        assert_array_equal(got, want)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (1, 1, 1, 64), (2, 1, 33, 8), (1, 5, 1, 3)])
def test_attention_one_row_one_column(shape: tuple[int, ...], path: str) -> None:
    with _on(path):
        rng = np.random.default_rng(1)
        h, lq, lk, d = shape
        q = rng.integers(-128, 128, (h, lq, d), dtype=np.int8)
        k = rng.integers(-128, 128, (h, lk, d), dtype=np.int8)
        v = rng.integers(-128, 128, (h, lk, d), dtype=np.int8)
        got = kernels.attention_int8(q, k, v, 0.05, 0.05, 0.01)
        assert_array_equal(got, reference.attention_int8(q, k, v, 0.05, 0.05, 0.01))
        if lk == 1:  # one key: the output is that key's value (E * v * (0.01 / E), rounded)
            np.testing.assert_allclose(got, np.broadcast_to(v * 0.01, got.shape), rtol=1e-6)


@pytest.mark.parametrize("path", PATHS)
def test_attention_long_rows_cross_pv_tiles(path: str) -> None:
    """Rows longer than the 512-key P.V tile and odd: int64 accumulation across tiles."""
    with _on(path):
        rng = np.random.default_rng(2)
        q = np.full((1, 9, 64), 127, dtype=np.int8)
        k = np.full((1, 1601, 64), 127, dtype=np.int8)  # all scores equal: flat rows
        v = rng.choice(np.array([-128, 127], dtype=np.int8), size=(1, 1601, 64))
        for sm in ("lut", "exact"):
            got = kernels.attention_int8(q, k, v, 1.0, 1.0, 1.0, softmax=sm)
            assert_array_equal(got, reference.attention_int8(q, k, v, 1.0, 1.0, 1.0, softmax=sm))


@pytest.mark.parametrize("path", PATHS)
def test_attention_head_dim_beyond_float32_exact_range(path: str) -> None:
    with _on(path):
        rng = np.random.default_rng(3)
        d = reference.FLOAT32_EXACT_HEAD_DIM + 3
        q = rng.choice(np.array([-128, 127], dtype=np.int8), size=(1, 5, d))
        k = rng.choice(np.array([-128, 127], dtype=np.int8), size=(1, 7, d))
        v = rng.integers(-128, 128, (1, 7, d), dtype=np.int8)
        got = kernels.attention_int8(q, k, v, 1e-3, 1e-3, 1.0)
        assert_array_equal(got, reference.attention_int8(q, k, v, 1e-3, 1e-3, 1.0))


@pytest.mark.parametrize("path", PATHS)
def test_attention_thread_count_does_not_change_results(path: str) -> None:
    with _on(path):
        rng = np.random.default_rng(4)
        q, k, v = (rng.integers(-128, 128, (3, 67, 64), dtype=np.int8) for _ in range(3))
        one = kernels.attention_int8(q, k, v, 0.02, 0.02, 0.02, n_threads=1)
        two = kernels.attention_int8(q, k, v, 0.02, 0.02, 0.02, n_threads=2)
        assert_array_equal(one, two)


@st.composite
def score_case(draw: st.DrawFn) -> np.ndarray:
    rows = draw(st.integers(1, 9))
    n = draw(st.integers(1, 300))
    seed = draw(st.integers(0, 2**32 - 1))
    kind = draw(st.sampled_from(["small", "wide", "full_int32", "equal", "extremes"]))
    rng = np.random.default_rng(seed)
    if kind == "equal":
        return np.full((rows, n), rng.integers(-(2**31), 2**31), dtype=np.int32)
    if kind == "extremes":
        return rng.choice(np.array([-(2**31), 2**31 - 1], dtype=np.int32), size=(rows, n))
    hi = {"small": 50, "wide": 2**20, "full_int32": 2**31}[kind]
    return rng.integers(-hi, hi, size=(rows, n), dtype=np.int64).astype(np.int32)


@pytest.mark.parametrize("path", PATHS)
@SETTINGS
@given(scores=score_case(), scale=st.sampled_from([1e-9, 1e-4, 0.01, 0.5, 7.0]),
       residual=st.sampled_from(["none", "linear"]))
def test_softmax_matches_reference(scores: np.ndarray, scale: float, residual: str, path: str) -> None:
    with _on(path):
        got = kernels.softmax_lut(scores, scale, residual=residual)
        assert got.dtype == np.float32 and got.shape == scores.shape
        assert_array_equal(got, reference.softmax_lut(scores, scale, residual=residual))


@pytest.mark.parametrize("path", PATHS)
def test_softmax_batched_shape(path: str) -> None:
    with _on(path):
        s = np.random.default_rng(5).integers(-1000, 1000, (2, 3, 4, 37), dtype=np.int32)
        assert_array_equal(kernels.softmax_lut(s, 0.01), reference.softmax_lut(s, 0.01))


FLOATS = st.one_of(
    st.floats(min_value=-1100.0, max_value=0.0, allow_nan=False),
    st.sampled_from([0.0, -0.0, -np.inf, -5e-324, -1e-300, -1e-17, -745.2, -708.5, -1000.0,
                     -1e6, -np.log(2) / 128]),
)


@pytest.mark.parametrize("path", PATHS)
@SETTINGS
@given(values=st.lists(FLOATS, min_size=1, max_size=70), residual=st.sampled_from(["none", "linear"]),
       dtype=st.sampled_from([np.float64, np.float32]))
def test_lut_exp_matches_reference(values: list[float], residual: str, dtype: type, path: str) -> None:
    with _on(path):
        x = np.array(values, dtype=dtype)
        got = kernels.lut_exp(x, residual=residual)
        assert got.dtype == np.float64 and got.shape == x.shape
        assert_array_equal(got, reference.lut_exp(x, residual=residual))


@pytest.mark.parametrize("path", PATHS)
def test_lut_exp_large_array_all_lanes(path: str) -> None:
    with _on(path):
        x = -np.random.default_rng(6).exponential(8.0, size=(3, 100_003))
        for residual in ("none", "linear"):
            assert_array_equal(kernels.lut_exp(x, residual=residual),
                               reference.lut_exp(x, residual=residual))


@pytest.mark.parametrize("path", PATHS)
def test_attention_rows_past_the_int32_lane_flush(path: str) -> None:
    """70001 keys, flat rows: every probability 32767, more than 4096 steps of lane sums."""
    with _on(path):
        q = np.full((1, 2, 4), 127, dtype=np.int8)
        k = np.full((1, 70001, 4), 127, dtype=np.int8)
        v = np.random.default_rng(7).integers(-128, 128, (1, 70001, 4), dtype=np.int8)
        for residual in ("none", "linear"):
            got = kernels.attention_int8(q, k, v, 0.01, 0.01, 1.0, residual=residual)
            want = reference.attention_int8(q, k, v, 0.01, 0.01, 1.0, residual=residual)
            assert_array_equal(got, want)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("n", [1, 7, 8, 9, 15, 16, 17, 2048, 2051])
def test_softmax_row_lengths_and_fast_path_edge(path: str, n: int) -> None:
    """Every tail length of the 8- and 16-lane loops, and rows on both sides of the fast
    path's limit scale * (min - max) >= -700."""
    rng = np.random.default_rng(n)
    s = rng.integers(-20_000, 20_000, (4, n), dtype=np.int32)
    s[:, 0] = 0
    if n > 1:
        s[:, -1] = -7000
    with _on(path):
        for scale in (0.1, 0.1000001, 0.01, 5e-324):  # -700 exactly, just past it, easy, tiny
            for residual in ("none", "linear"):
                assert_array_equal(kernels.softmax_lut(s, scale, residual=residual),
                                   reference.softmax_lut(s, scale, residual=residual))


def test_attention_probability_table_long_rows() -> None:
    """c = 0.1 * 0.1 / 8: the probability table has K = ceil(11.3 / c) = 9040 entries and the
    call 4 x 40000 = 160000 >= 8 K scores, so the table path runs, on rows longer than the
    8 x 4096 keys after which its int32 lane sums are flushed; scores spread far past K.
    Every path in one test: the reference (the slow part) is computed once per mode."""
    rng = np.random.default_rng(8)
    q = rng.integers(-128, 128, (1, 4, 64), dtype=np.int8)
    k = rng.integers(-128, 128, (1, 40000, 64), dtype=np.int8)
    v = rng.integers(-128, 128, (1, 40000, 64), dtype=np.int8)
    for softmax, residual in (("lut", "none"), ("lut", "linear"), ("exact", "linear")):
        want = reference.attention_int8(q, k, v, 0.1, 0.1, 0.01, softmax=softmax,
                                        residual=residual)
        for path in PATHS:
            with _on(path):
                got = kernels.attention_int8(q, k, v, 0.1, 0.1, 0.01, softmax=softmax,
                                             residual=residual)
            assert_array_equal(got, want, err_msg=f"{path} {softmax} {residual}")
