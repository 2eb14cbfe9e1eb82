"""The analog MVM: the NumPy specification against an independent scalar computation, the
fast path against the specification, and a wide ADC against the exact integer product."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hastily_bench.accuracy.analog import (
    AnalogConfig,
    AnalogMatrix,
    adc_convert,
    analog_mvm,
    analog_mvm_reference,
)


def _scalar(x: list[list[int]], w: list[list[int]], cfg: AnalogConfig) -> list[list[int]]:
    """Independent of the module: Python ints, bit strings, the ADC written out with divmod."""
    ib, wb = cfg.input_bits, cfg.weight_bits
    fs = cfg.array_rows * (2**cfg.dac_bits - 1) * (2**cfg.cell_bits - 1)
    step = 1
    while 2**cfg.adc_bits * step < fs:
        step *= 2
    top = 2**cfg.adc_bits - 1

    def bits(v: int, width: int) -> str:  # offset-binary, most significant bit first
        return format(v + 2 ** (width - 1), f"0{width}b")

    def digit(b: str, index: int, size: int) -> int:  # digit `index` of `size` bits, from the LSB
        lsb_first = b[::-1][index * size : (index + 1) * size]
        return int(lsb_first[::-1] or "0", 2)

    k = len(w)
    out = []
    for row in x:
        xs = [bits(v, ib) for v in row]
        line = []
        for col in range(len(w[0])):
            ws = [bits(w[r][col], wb) for r in range(k)]
            total = 0
            for r0 in range(0, k, cfg.array_rows):
                rows = range(r0, min(k, r0 + cfg.array_rows))
                for s in range(-(-ib // cfg.dac_bits)):
                    for t in range(-(-wb // cfg.cell_bits)):
                        ps = sum(digit(xs[r], s, cfg.dac_bits) * digit(ws[r], t, cfg.cell_bits) for r in rows)
                        q, rem = divmod(ps, step)
                        up = 2 * rem > step or (2 * rem == step and q % 2 == 1)  # ties to even
                        code = min(q + (1 if step > 1 and up else 0), top)
                        total += code * step * 2 ** (s * cfg.dac_bits + t * cfg.cell_bits)
            a, b = 2 ** (ib - 1), 2 ** (wb - 1)
            total -= b * sum(v + a for v in row) + a * sum(w[r][col] + b for r in range(k)) - k * a * b
            line.append(total)
        out.append(line)
    return out


@st.composite
def cases(draw: st.DrawFn, max_k: int = 40) -> tuple[np.ndarray, np.ndarray, AnalogConfig]:
    cfg = AnalogConfig(
        array_rows=draw(st.integers(1, 24)), cell_bits=draw(st.integers(1, 3)),
        dac_bits=draw(st.integers(1, 3)), adc_bits=draw(st.integers(1, 9)),
        weight_bits=draw(st.integers(2, 9)), input_bits=draw(st.integers(2, 9)))
    m, k, n = draw(st.integers(1, 4)), draw(st.integers(1, max_k)), draw(st.integers(1, 4))
    xlo, xhi = -(2 ** (cfg.input_bits - 1)), 2 ** (cfg.input_bits - 1) - 1
    wlo, whi = -(2 ** (cfg.weight_bits - 1)), 2 ** (cfg.weight_bits - 1) - 1
    # extremes are likely: all-ones bit patterns are what saturates an ADC
    xv = st.one_of(st.sampled_from([xlo, xhi, -1, 0]), st.integers(xlo, xhi))
    wv = st.one_of(st.sampled_from([wlo, whi, -1, 0]), st.integers(wlo, whi))
    x = np.array(draw(st.lists(st.lists(xv, min_size=k, max_size=k), min_size=m, max_size=m)))
    w = np.array(draw(st.lists(st.lists(wv, min_size=n, max_size=n), min_size=k, max_size=k)))
    return x, w, cfg


@settings(max_examples=80, deadline=None)
@given(cases())
def test_reference_equals_independent_scalar_computation(case) -> None:  # type: ignore[no-untyped-def]
    x, w, cfg = case
    want = np.array(_scalar(x.tolist(), w.tolist(), cfg), dtype=np.int64)
    np.testing.assert_array_equal(analog_mvm_reference(x, w, cfg), want)


@settings(max_examples=100, deadline=None)
@given(cases(max_k=150))
def test_fast_path_equals_reference(case) -> None:  # type: ignore[no-untyped-def]
    x, w, cfg = case
    want = analog_mvm_reference(x, w, cfg)
    np.testing.assert_array_equal(analog_mvm(x, w, cfg), want)
    np.testing.assert_array_equal(AnalogMatrix(w, cfg).matmul(x.astype(np.float32), checked=True), want)


@settings(max_examples=100, deadline=None)
@given(cases(max_k=150))
def test_adc_holding_every_partial_sum_gives_the_exact_product(case) -> None:  # type: ignore[no-untyped-def]
    x, w, small = case
    wide = AnalogConfig(small.array_rows, small.cell_bits, small.dac_bits,
                        adc_bits=small.full_scale.bit_length(),
                        weight_bits=small.weight_bits, input_bits=small.input_bits)
    assert wide.lossless
    exact = x.astype(np.int64) @ w.astype(np.int64)
    np.testing.assert_array_equal(analog_mvm_reference(x, w, wide), exact)
    np.testing.assert_array_equal(analog_mvm(x, w, wide), exact)


def test_int8_extremes_through_hastily_arrays() -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(-128, 128, (9, 200))
    w = rng.integers(-128, 128, (200, 11))
    x[0], w[:, 0] = -128, 127
    x[1], w[:, 1] = -1, -1  # offset-binary 0111 1111: every partial sum of bits 0-6 is full
    exact = x @ w
    lossless = AnalogConfig(adc_bits=7)
    np.testing.assert_array_equal(analog_mvm(x, w, lossless), exact)
    six = AnalogConfig(adc_bits=6)  # HASTILY: 65 levels, 64 codes: only the full sum saturates
    got = analog_mvm(x, w, six)
    np.testing.assert_array_equal(got, analog_mvm_reference(x, w, six))
    assert got[1, 1] != exact[1, 1]
    assert np.array_equal(np.delete(got, 1, axis=0)[:, 2:], np.delete(exact, 1, axis=0)[:, 2:])


@pytest.mark.parametrize(("adc_bits", "shift", "lossless"), [(4, 2, False), (5, 1, False), (6, 0, False), (7, 0, True), (8, 0, True)])
def test_adc_step(adc_bits: int, shift: int, lossless: bool) -> None:
    cfg = AnalogConfig(array_rows=64, cell_bits=1, dac_bits=1, adc_bits=adc_bits)
    assert (cfg.full_scale, cfg.adc_shift, cfg.lossless) == (64, shift, lossless)
    ps = np.arange(65)
    got = adc_convert(ps, cfg)
    # rounding error at most half a step, but the top code saturates a step below full scale
    top = min(64, (2**adc_bits - 1) * 2**shift)
    assert got.max() == top and np.all(np.abs(got - ps) <= 2**shift)
    assert np.all(np.abs(got - ps)[:top] <= 2**shift // 2)
    # ties (integer sums halfway between codes) go to even: no systematic bias
    assert abs(float(np.mean((got - ps)[:top]))) <= 0.1 * 2**shift
    assert np.array_equal(got, ps) == lossless


def test_bad_operands() -> None:
    cfg = AnalogConfig()
    with pytest.raises(ValueError, match="x: values outside"):
        analog_mvm(np.full((1, 2), 128), np.zeros((2, 1), np.int64), cfg)
    with pytest.raises(ValueError, match="shapes"):
        analog_mvm(np.zeros((1, 2), np.int64), np.zeros((3, 1), np.int64), cfg)
    with pytest.raises(ValueError, match="integer array"):
        analog_mvm(np.zeros((1, 2)), np.zeros((2, 1), np.int64), cfg)
    with pytest.raises(ValueError, match="adc_bits"):
        AnalogConfig(adc_bits=0)
