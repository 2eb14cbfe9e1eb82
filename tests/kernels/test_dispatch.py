"""Runtime SIMD dispatch: path names, HASTILY_SIMD, the per-call switch, mode checks."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import numpy as np
import pytest

from hastily_bench import kernels
from hastily_bench.kernels import reference

compiled = pytest.mark.skipif(not kernels.COMPILED, reason="needs the compiled kernels")


def _backend_with(env_value: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "HASTILY_PURE_PYTHON"}
    env["HASTILY_SIMD"] = env_value
    code = "from hastily_bench import kernels; print(kernels.backend())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    return out.stdout.strip()


@compiled
def test_scalar_is_always_available_and_best_path_is_default() -> None:
    paths = kernels.simd_paths()
    assert paths[0] == "scalar"
    assert set(paths) <= set(kernels.SIMD_LEVELS)
    assert list(paths) == sorted(paths, key=kernels.SIMD_LEVELS.index)
    if not os.environ.get("HASTILY_SIMD"):
        assert kernels.simd() == paths[-1]
        assert kernels.backend().endswith("/" + paths[-1])


@compiled
def test_simd_path_switches_and_restores() -> None:
    before = kernels.backend()
    for path in kernels.simd_paths():
        with kernels.simd_path(path):
            assert kernels.simd() == path
            assert kernels.backend().split(" ")[0].endswith("/" + path)
    assert kernels.backend() == before


@compiled
def test_simd_path_refuses_unknown_names() -> None:
    with pytest.raises(ValueError, match="^name: SIMD path 'sse9'"), kernels.simd_path("sse9"):
        pass


@compiled
@pytest.mark.parametrize("path", ["scalar", "avx2", "avx512"])
def test_hastily_simd_selects_a_runnable_path_or_says_why(path: str) -> None:
    got = _backend_with(path)
    if path in kernels.simd_paths():
        assert got.endswith("/" + path), got
    else:
        assert f"HASTILY_SIMD={path} ignored" in got, got
        assert "/" + kernels.simd_paths()[-1] in got


@compiled
def test_hastily_simd_unknown_value_is_reported_in_backend() -> None:
    got = _backend_with("sse9")
    assert "HASTILY_SIMD='sse9' ignored: expected one of scalar, avx2, avx512" in got


@compiled
def test_compiled_functions_check_level_and_mode() -> None:
    """The Cython layer refuses what the C layer cannot do (no silent fallback)."""
    _softmax = importlib.import_module("hastily_bench.kernels._softmax")

    s = np.zeros((2, 8), dtype=np.int32)
    out = np.empty((2, 8), dtype=np.float32)
    tab = reference.exp_table(1)
    with pytest.raises(ValueError, match="^mode: expected 0..1, got 2"):
        _softmax.softmax_lut(s, 1.0, out, tab, 2, 1, 0)
    with pytest.raises(ValueError, match="^mode: expected 0..1, got 7"):
        _softmax.softmax_lut(s, 1.0, out, tab, 7, 1, 0)
    with pytest.raises(ValueError, match="^level: expected 0"):
        _softmax.softmax_lut(s, 1.0, out, tab, 1, 1, 3)
    x = np.zeros(4)
    with pytest.raises(ValueError, match="^mode: expected 0..2, got 3"):
        _softmax.lut_exp(x, np.empty(4), tab, 3, 1, 0)
    top = _softmax.cpu_level()
    if top < 2:
        with pytest.raises(ValueError, match="^level: "):
            _softmax.softmax_lut(s, 1.0, out, tab, 1, 1, top + 1)


@compiled
def test_attention_tiles_follow_the_path() -> None:
    _attention = importlib.import_module("hastily_bench.kernels._attention")

    for lv, path in enumerate(kernels.SIMD_LEVELS):
        if path in kernels.simd_paths():
            tiles = _attention.tiles(lv)
            assert tiles["query_rows"] == 4 and tiles["pv_keys"] == 512
            assert tiles["score_keys"] == (64 if path == "avx512" else 16)
