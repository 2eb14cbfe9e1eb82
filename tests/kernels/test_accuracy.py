"""Error of the kernels against the float64 ideal, within the bounds of docs/kernels.md."""

from __future__ import annotations

import decimal

import numpy as np
import pytest

from hastily_bench import kernels
from hastily_bench.kernels import reference

# Bounds documented in docs/kernels.md (measured value in the comment).
LUT_EXP_MAX_REL = {"none": 5.45e-3, "linear": 2.8e-5}  # 5.413e-3, 2.724e-5 over [-20, 0]
SOFTMAX_MAX_REL = {"none": 1.1e-2, "linear": 6e-5}  # 4.4e-3, 2.7e-5
ATTENTION_REL_FRO = {("lut", "none"): 3e-3, ("lut", "linear"): 1e-3, ("exact", "linear"): 1e-3}


def test_table_is_the_rounded_exp2_rom() -> None:
    t = reference.EXP2_TABLE_Q15
    assert t.dtype == np.uint16 and t.shape == (128,)
    assert t[0] == 32768 and t[-1] == 65182 and np.all(np.diff(t.astype(int)) > 0)
    with decimal.localcontext() as ctx:
        ctx.prec = 40
        for k in (1, 37, 64, 127):
            exact = decimal.Decimal(2) ** (decimal.Decimal(k) / 128) * 32768
            assert abs(decimal.Decimal(int(t[k])) - exact) <= decimal.Decimal("0.5")
    assert np.all(np.abs(reference.EXP2_TABLE_F64 - 2.0 ** (np.arange(128) / 128)) <= 2.3e-16)


@pytest.mark.parametrize("residual", ["none", "linear"])
def test_lut_exp_relative_error(residual: str) -> None:
    x = np.linspace(-20.0, 0.0, 400_001)
    rel = np.abs(kernels.lut_exp(x, residual=residual) / np.exp(x) - 1.0)
    assert rel.max() <= LUT_EXP_MAX_REL[residual]
    if residual == "none":  # the missing e^r, r < ln2/128: never above the true value
        assert np.all(kernels.lut_exp(x, residual="none") <= np.exp(x) * (1 + 2**-16))


def test_lut_exp_special_values() -> None:
    x = np.array([0.0, -0.0, -np.inf, -1e6, -1000.0, -745.2, -5e-324])
    for residual in ("none", "linear"):
        e = kernels.lut_exp(x, residual=residual)
        assert e[0] == 1.0 and e[1] == 1.0
        assert np.all(e[2:6] == 0.0)
        # a tiny negative x lands in the last table cell of n = -1: 2^(-1/128) (* (1 + r))
        assert abs(e[-1] - 1.0) <= LUT_EXP_MAX_REL[residual]


def test_exact_exponent_is_exact() -> None:
    x = np.linspace(-64.0, 0.0, 200_001)
    assert np.abs(reference.exp_exact(x) / np.exp(x) - 1.0).max() < 1e-15


@pytest.mark.parametrize("residual", ["none", "linear"])
@pytest.mark.parametrize("scale", [1e-4, 3e-3])
def test_softmax_relative_error(residual: str, scale: float) -> None:
    s = np.random.default_rng(10).integers(-20_000, 20_000, (64, 777), dtype=np.int32)
    ideal = reference.softmax_ideal(scale * s.astype(np.float64))
    p = kernels.softmax_lut(s, scale, residual=residual)
    keep = ideal > 1e-30
    assert np.abs(p[keep] / ideal[keep] - 1.0).max() <= SOFTMAX_MAX_REL[residual]
    np.testing.assert_allclose(p.sum(axis=-1, dtype=np.float64), 1.0, rtol=1e-6)


@pytest.mark.parametrize(("softmax", "residual"), list(ATTENTION_REL_FRO))
def test_attention_error_against_dequantised_ideal(softmax: str, residual: str) -> None:
    """Softmax + P.V error alone: the ideal sees the same (dequantised) int8 inputs."""
    rng = np.random.default_rng(11)
    q, k, v = (rng.standard_normal((2, 300, 64)) for _ in range(3))
    (q8, qs), (k8, ks), (v8, vs) = (kernels.quantize_int8(a) for a in (q, k, v))
    ideal = reference.attention_ideal(q8 * qs, k8 * ks, v8 * vs)
    got = kernels.attention_int8(q8, k8, v8, qs, ks, vs, softmax=softmax, residual=residual)
    err = np.linalg.norm(got - ideal) / np.linalg.norm(ideal)
    assert err <= ATTENTION_REL_FRO[(softmax, residual)]


def test_int_scores_exact_both_paths() -> None:
    rng = np.random.default_rng(12)
    for d in (64, reference.FLOAT32_EXACT_HEAD_DIM, reference.FLOAT32_EXACT_HEAD_DIM + 1):
        q = rng.choice(np.array([-128, 127], dtype=np.int8), size=(1, 3, d))
        k = rng.choice(np.array([-128, 127], dtype=np.int8), size=(1, 4, d))
        want = np.einsum("hqd,hkd->hqk", q.astype(np.int64), k.astype(np.int64))
        np.testing.assert_array_equal(reference.int_scores(q, k), want)


def test_quantize_int8() -> None:
    x = np.random.default_rng(13).standard_normal((3, 50))
    q, scale = kernels.quantize_int8(x)
    assert q.dtype == np.int8 and q.shape == x.shape and q.flags.c_contiguous
    assert np.abs(q).max() == 127 and scale == np.abs(x).max() / 127
    assert np.abs(q * scale - x).max() <= scale / 2 + 1e-12
    z, zs = kernels.quantize_int8(np.zeros(4, dtype=np.float32))
    assert zs == 1.0 and not z.any()


def test_backend_and_flags() -> None:
    compiler, _, path = kernels.backend().split(" ")[0].partition("/")
    assert compiler in ("cython+openmp", "cython", "numpy")
    assert path == ("" if compiler == "numpy" else kernels.simd())
    assert (kernels.backend() == "numpy") == (not kernels.COMPILED)
    assert (kernels.IMPORT_ERROR is None) == kernels.COMPILED
    if kernels.COMPILED:
        assert kernels.attention_scratch_bytes(16384, 16384, 64, n_threads=2) < 16 * 2**20
