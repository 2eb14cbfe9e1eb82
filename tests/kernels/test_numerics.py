"""hastily_bench.numerics: measured attention error of an arithmetic."""

from __future__ import annotations

import pytest

from hastily_bench import numerics


def _err(**kw: object) -> float:
    args: dict[str, object] = {"heads": 12, "seq_len": 256, "head_dim": 64}
    args.update(kw)
    return numerics.attention_rel_error(**args)  # type: ignore[arg-type]


def test_int8_error_in_expected_range_and_ordered() -> None:
    exact = _err(matmul="int8", softmax="exact")
    linear = _err(matmul="int8", softmax="lut", residual="linear")
    none = _err(matmul="int8", softmax="lut", residual="none")
    fp16 = _err(matmul="fp16", softmax="exact")
    # int8 inputs dominate (about 1e-2); fp16 is far more accurate
    assert 2e-3 < exact < 5e-2
    assert abs(linear - exact) < 1e-3 * exact + 1e-4
    assert none > 0 and fp16 < exact / 5


def test_fp16_lut_residuals() -> None:
    exact = _err(matmul="fp16", softmax="exact")
    linear = _err(matmul="fp16", softmax="lut", residual="linear")
    none = _err(matmul="fp16", softmax="lut", residual="none")
    assert none > linear and none > exact and none < 2e-2


def test_deterministic_and_cached() -> None:
    a = _err(matmul="int8", softmax="lut", seed=3)
    numerics._rel_error.cache_clear()
    numerics._sample_case.cache_clear()
    b = _err(matmul="int8", softmax="lut", seed=3)
    assert a == b
    assert _err(matmul="int8", softmax="lut", seed=4) != a


def test_full_mode_small_shape() -> None:
    full = _err(matmul="int8", softmax="lut", heads=2, seq_len=96, batch=2, mode="full")
    assert 1e-3 < full < 5e-2


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"matmul": "int4", "softmax": "lut"}, "^matmul"),
        ({"matmul": "int8", "softmax": "poly"}, "^softmax"),
        ({"matmul": "int8", "softmax": "lut", "residual": "cubic"}, "^residual"),
        ({"matmul": "int8", "softmax": "lut", "mode": "quick"}, "^mode"),
        ({"matmul": "int8", "softmax": "lut", "heads": 0}, "^heads"),
        ({"matmul": "int8", "softmax": "lut", "seq_len": 1.5}, "^seq_len"),
        ({"matmul": "int8", "softmax": "lut", "seed": -1}, "^seed"),
    ],
)
def test_bad_arguments(kw: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _err(**kw)
