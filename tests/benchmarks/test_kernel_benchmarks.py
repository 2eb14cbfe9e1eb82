"""pytest-benchmark suite for the kernels (not run by default; see docs/kernels.md).

Both kernels run on every SIMD path this machine can execute (``kernels.simd_paths()``).

    pytest tests/benchmarks -o addopts="" --benchmark-only --benchmark-autosave
    pytest tests/benchmarks -o addopts="" --benchmark-only \
        --benchmark-compare --benchmark-compare-fail=median:10%
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from hastily_bench import kernels
from hastily_bench.bench import numpy_attention, numpy_softmax

HEADS, HEAD_DIM = 12, 64
SEQ_LENS = [512, 2048]
PATHS = list(kernels.simd_paths()) or ["none"]


def _inputs(seq: int) -> dict[str, Any]:
    rng = np.random.default_rng(seq)
    qf, kf, vf = (rng.standard_normal((HEADS, seq, HEAD_DIM), dtype=np.float32) for _ in range(3))
    (q8, qs), (k8, ks), (v8, vs) = (kernels.quantize_int8(a) for a in (qf, kf, vf))
    sf = rng.standard_normal((HEADS * seq, seq), dtype=np.float32) * 3.0
    # the case: int32 scores spread uniformly over +-20 after scaling by 1/4096
    si20 = rng.integers(-20 * 4096, 20 * 4096, size=(HEADS * seq, seq), dtype=np.int32)
    return {"f32": (qf, kf, vf), "i8": (q8, k8, v8, qs, ks, vs), "sf": sf,
            "si": np.round(sf * 4096.0).astype(np.int32), "si20": si20,
            "sf20": si20.astype(np.float32) / np.float32(4096.0)}


@pytest.fixture(scope="module", params=SEQ_LENS, ids=lambda s: f"seq{s}")
def data(request: pytest.FixtureRequest) -> dict[str, Any]:
    d = _inputs(request.param)
    d["seq"] = request.param
    return d


def _on(path: str, fn: Any) -> Any:
    if path == "none":
        return fn

    def run(*args: Any, **kw: Any) -> Any:
        with kernels.simd_path(path):
            return fn(*args, **kw)

    return run


def _ops(seq: int) -> float:
    return 4.0 * HEADS * seq * seq * HEAD_DIM


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("softmax", ["lut", "exact"])
def test_attention_int8(benchmark: Any, data: dict[str, Any], softmax: str, path: str) -> None:
    benchmark.group = f"attention seq{data['seq']}"
    benchmark.extra_info["ops"] = _ops(data["seq"])
    benchmark.extra_info["simd"] = path
    out = benchmark(_on(path, kernels.attention_int8), *data["i8"], softmax=softmax)
    assert out.shape == (HEADS, data["seq"], HEAD_DIM)


def test_attention_numpy_float32(benchmark: Any, data: dict[str, Any]) -> None:
    benchmark.group = f"attention seq{data['seq']}"
    benchmark.extra_info["ops"] = _ops(data["seq"])
    benchmark(numpy_attention, *data["f32"])


def test_attention_torch_sdpa(benchmark: Any, data: dict[str, Any]) -> None:
    torch = pytest.importorskip("torch")
    benchmark.group = f"attention seq{data['seq']}"
    tq, tk, tv = (torch.from_numpy(a) for a in data["f32"])

    def run() -> Any:
        with torch.inference_mode():
            return torch.nn.functional.scaled_dot_product_attention(tq, tk, tv)

    benchmark(run)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("spread", ["normal", "uniform20"])
def test_softmax_lut(benchmark: Any, data: dict[str, Any], path: str, spread: str) -> None:
    benchmark.group = f"softmax {spread} seq{data['seq']}"
    benchmark.extra_info["simd"] = path
    scores = data["si"] if spread == "normal" else data["si20"]
    benchmark(_on(path, kernels.softmax_lut), scores, 1.0 / 4096.0)


@pytest.mark.parametrize("spread", ["normal", "uniform20"])
def test_softmax_numpy_float32(benchmark: Any, data: dict[str, Any], spread: str) -> None:
    benchmark.group = f"softmax {spread} seq{data['seq']}"
    benchmark(numpy_softmax, data["sf"] if spread == "normal" else data["sf20"])


@pytest.mark.parametrize("spread", ["normal", "uniform20"])
def test_softmax_torch(benchmark: Any, data: dict[str, Any], spread: str) -> None:
    torch = pytest.importorskip("torch")
    benchmark.group = f"softmax {spread} seq{data['seq']}"
    ts = torch.from_numpy(data["sf"] if spread == "normal" else data["sf20"])

    def run() -> Any:
        with torch.inference_mode():
            return torch.softmax(ts, dim=-1)

    benchmark(run)
