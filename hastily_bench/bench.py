"""Kernel benchmarks: the compiled int8 kernels side by side with NumPy, PyTorch, onnxruntime.

:func:`run_bench` times every implementation in one process and one run (warm-up, repeats,
median) and returns a :class:`BenchReport`; :func:`render_bench` prints it with rich.
:func:`measure_peaks` measures this machine's int8 and fp32 peaks (a short microbenchmark of
independent multiply-add chains per SIMD path, ``kernels/simd/hb_peak.c``); every row then
shows its percentage of the peak that bounds it (attention: int8 peak of the SIMD path that
ran, or the fp32 peak for float32 baselines; softmax: the memory wall, a one-pass int32 to
float32 conversion of the same scores, timed beside it).
:func:`attention_memory_check` measures the streaming kernel's extra memory at long sequence
lengths in a subprocess (peak RSS). How to run them: ``docs/kernels.md``.

Memory columns
--------------
* hastily kernels: their own accounting of what they ``malloc`` (packed K/V of one head and
  per-thread row buffers; :func:`hastily_bench.kernels.attention_scratch_bytes`). tracemalloc
  cannot see C allocations.
* NumPy: tracemalloc peak during one call (NumPy reports its buffers to tracemalloc), minus
  the output array.
* PyTorch, onnxruntime: not measured (their allocators are invisible to tracemalloc).
"""

from __future__ import annotations

import functools
import gc
import importlib.util
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from . import kernels

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "SCHEMA_VERSION",
    "BenchReport",
    "BenchRow",
    "MemoryCheck",
    "Peaks",
    "attention_memory_check",
    "measure_peaks",
    "numpy_attention",
    "numpy_softmax",
    "render_bench",
    "run_bench",
]

#: Version of the :meth:`BenchReport.to_dict` layout (2: rows carry simd_path and
#: pct_of_peak, the report carries the measured peaks).
SCHEMA_VERSION = 2
#: Seconds to idle between implementations: lets the BLAS / OpenMP worker threads of the
#: previous one stop spinning, so they do not steal cores from the next one.
_SETTLE_S = 0.2
_OPTIONAL = ("torch", "onnxruntime")
#: (implementation, callable or "not installed", extra bytes or a callable measuring them, how,
#: SIMD path of a hastily kernel or "")
_Timed = tuple[str, "Callable[[], object] | str", "int | None | Callable[[], int]", str, str]


@dataclass(frozen=True)
class BenchRow:
    """One implementation of one kernel at one sequence length."""

    kernel: str  #: "attention" or "softmax"
    impl: str  #: e.g. "hastily int8 lut", "numpy float32", "torch float32 sdpa"
    seq_len: int
    status: str  #: "ok", "not installed" or "error: ..."
    median_s: float | None = None
    min_s: float | None = None
    gops: float | None = None  #: attention: 4 * heads * seq^2 * head_dim / median_s / 1e9
    ns_per_element: float | None = None  #: softmax: median_s / (rows * seq) in ns
    ratio_vs_numpy: float | None = None  #: NumPy's median time / this median time
    extra_memory_bytes: int | None = None  #: peak memory beyond inputs and output
    memory_method: str = "not measured"
    simd_path: str = ""  #: hastily kernels: the SIMD path that ran ("scalar", "avx2", "avx512")
    #: percent of the bound: attention GOPS / the int8 (hastily) or fp32 (float32 baselines)
    #: peak; softmax: the memory wall's time (``memory int32->float32`` row) / this time
    pct_of_peak: float | None = None


@dataclass(frozen=True)
class Peaks:
    """This machine's peaks, measured by :func:`measure_peaks` (GOPS, 2 ops per multiply-add)."""

    int8_gops: dict[str, float]  #: per SIMD path: int16 x int16 -> int32 multiply-add chains
    fp32_gops: dict[str, float]  #: per SIMD path: float32 multiply-add chains (FMA on SIMD)
    n_threads: int

    @property
    def fp32_best_gops(self) -> float | None:
        """The machine's fp32 peak: the best path's."""
        return max(self.fp32_gops.values()) if self.fp32_gops else None


@dataclass(frozen=True)
class BenchReport:
    """All rows of one :func:`run_bench` call, with the configuration and host facts."""

    rows: tuple[BenchRow, ...]
    config: dict[str, Any]
    host: dict[str, Any]
    peaks: Peaks | None = None
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (``json.dumps`` works on it as is)."""
        return {
            "schema_version": self.schema_version,
            "host": dict(self.host),
            "config": dict(self.config),
            "peaks": None if self.peaks is None else asdict(self.peaks),
            "rows": [asdict(r) for r in self.rows],
        }

    def row(self, kernel: str, impl: str, seq_len: int, simd_path: str | None = None) -> BenchRow:
        """The row of one implementation (on ``simd_path`` if given; KeyError if absent)."""
        for r in self.rows:
            if (r.kernel, r.impl, r.seq_len) == (kernel, impl, seq_len) and (
                simd_path is None or r.simd_path == simd_path
            ):
                return r
        raise KeyError((kernel, impl, seq_len, simd_path))


@dataclass(frozen=True)
class MemoryCheck:
    """Result of :func:`attention_memory_check` (bytes)."""

    seq_len: int
    heads: int
    head_dim: int
    inputs_bytes: int
    output_bytes: int
    extra_maxrss_bytes: int  #: peak RSS during the call - RSS before it - the output
    kernel_scratch_bytes: int  #: the kernel's own accounting
    seconds: float
    backend: str
    limit_bytes: int = 64 * 2**20
    notes: str = field(default="peak RSS (ru_maxrss) in a fresh subprocess; an upper bound")

    @property
    def ok(self) -> bool:
        """True when the measured extra memory is under ``limit_bytes``."""
        return self.extra_maxrss_bytes < self.limit_bytes


def numpy_attention(
    q: NDArray[np.float32], k: NDArray[np.float32], v: NDArray[np.float32]
) -> NDArray[np.float32]:
    """The NumPy float32 baseline: matmul, scale, stable exp softmax, matmul."""
    s = np.matmul(q, np.swapaxes(k, -1, -2))
    s *= np.float32(1.0 / math.sqrt(q.shape[-1]))
    s -= s.max(axis=-1, keepdims=True)
    np.exp(s, out=s)
    s /= s.sum(axis=-1, keepdims=True)
    return np.matmul(s, v)


def numpy_softmax(s: NDArray[np.float32]) -> NDArray[np.float32]:
    """The NumPy float32 softmax baseline over the last axis."""
    e = s - s.max(axis=-1, keepdims=True)
    np.exp(e, out=e)
    e /= e.sum(axis=-1, keepdims=True)
    return e


def _time(fn: Callable[[], object], repeats: int, warmup: int) -> tuple[float, float]:
    time.sleep(_SETTLE_S)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def _tracemalloc_extra(fn: Callable[[], Any]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        out = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return int(max(0, peak - int(getattr(out, "nbytes", 0))))


def _installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def _host_facts(n_threads: int | None) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or _cpu_model(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "kernels_backend": kernels.backend(),
        "n_threads": n_threads,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }
    facts["kernels_simd"] = kernels.simd()
    facts["kernels_simd_paths"] = list(kernels.simd_paths())
    for name in _OPTIONAL:
        if _installed(name):
            try:
                facts[name] = __import__(name).__version__
            except Exception as exc:  # noqa: BLE001 - a broken optional package is a fact
                facts[name] = f"error: {exc}"
        else:
            facts[name] = "not installed"
    return facts


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _torch_attention(n_threads: int | None) -> Callable[..., Callable[[], object]] | str:
    if not _installed("torch"):
        return "not installed"
    import torch

    if n_threads:
        torch.set_num_threads(n_threads)

    def make(q: NDArray[np.float32], k: NDArray[np.float32], v: NDArray[np.float32]) -> Callable[[], object]:
        tq, tk, tv = (torch.from_numpy(a) for a in (q, k, v))

        def run() -> object:
            with torch.inference_mode():
                return torch.nn.functional.scaled_dot_product_attention(tq, tk, tv)

        return run

    return make


def _onnx_attention(n_threads: int | None) -> Callable[..., Callable[[], object]] | str:
    if not (_installed("onnxruntime") and _installed("onnx")):
        return "not installed"
    import onnxruntime as ort
    from onnx import TensorProto, helper

    def make(q: NDArray[np.float32], k: NDArray[np.float32], v: NDArray[np.float32]) -> Callable[[], object]:
        d = q.shape[-1]
        shape = list(q.shape)
        nodes = [
            helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]),
            helper.make_node("MatMul", ["q", "kt"], ["s"]),
            helper.make_node("Mul", ["s", "c"], ["ss"]),
            helper.make_node("Softmax", ["ss"], ["p"], axis=-1),
            helper.make_node("MatMul", ["p", "v"], ["o"]),
        ]
        graph = helper.make_graph(
            nodes,
            "attention",
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in ("q", "k", "v")],
            [helper.make_tensor_value_info("o", TensorProto.FLOAT, shape)],
            [helper.make_tensor("c", TensorProto.FLOAT, [], [1.0 / math.sqrt(d)])],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        opts = ort.SessionOptions()
        if n_threads:
            opts.intra_op_num_threads = n_threads
        sess = ort.InferenceSession(
            model.SerializeToString(), opts, providers=["CPUExecutionProvider"]
        )
        feed = {"q": q, "k": k, "v": v}
        return lambda: sess.run(None, feed)

    return make


def run_bench(
    *,
    seq_lens: Sequence[int] = (512, 2048),
    heads: int = 12,
    head_dim: int = 64,
    repeats: int = 7,
    warmup: int = 3,
    n_threads: int | None = None,
    include: Sequence[str] = ("numpy", "torch", "onnxruntime"),
    seed: int = 0,
    simd_paths: Sequence[str] | None = None,
    peaks: bool = True,
    peak_s: float = 0.05,
) -> BenchReport:
    """Time the kernels side by side with the baselines, in this process, in one run.

    Parameters
    ----------
    seq_lens : sequence of int
        Sequence lengths (batch 1, ``heads`` heads of ``head_dim``).
    heads, head_dim : int
        Attention shape (BERT-Base: 12, 64).
    repeats, warmup : int
        Timed calls (the median is reported) and untimed calls before them.
    n_threads : int, optional
        Threads for every implementation (OpenMP, torch, onnxruntime); default: their own.
    include : sequence of str
        Baselines to run among "numpy", "torch", "onnxruntime"; an uninstalled one is
        reported as "not installed". The hastily kernels always run.
    seed : int
        Seed of the input data.
    simd_paths : sequence of str, optional
        SIMD paths to run the hastily kernels on, side by side (see
        :func:`hastily_bench.kernels.simd_paths`); default: the one chosen at import.
    peaks : bool
        Measure the int8 and fp32 peaks first (:func:`measure_peaks`, about a second) and
        fill every row's ``pct_of_peak``.
    peak_s : float
        Seconds per peak measurement (``target_s`` of :func:`measure_peaks`).

    Returns
    -------
    BenchReport
        Rows for attention (hastily int8 lut, hastily int8 exact, numpy float32, torch float32
        sdpa, onnxruntime float32) and softmax (hastily int32 lut, numpy float32, torch
        float32, and the memory wall "memory int32->float32") at each sequence length.
    """
    for name in include:
        if name not in ("numpy", *_OPTIONAL):
            raise ValueError(f"include: unknown baseline {name!r} (numpy, torch, onnxruntime)")
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats: expected >= 1 (and warmup >= 0), got {repeats}, {warmup}")
    paths = [kernels.simd()] if simd_paths is None else list(simd_paths)
    for p in paths:
        if kernels.COMPILED and p not in kernels.simd_paths():
            raise ValueError(f"simd_paths: {p!r} is not available here "
                             f"(available: {', '.join(kernels.simd_paths())})")
    if not kernels.COMPILED:
        paths = ["none"]
    peak = measure_peaks(n_threads=n_threads, simd_paths=paths, target_s=peak_s) if peaks else None
    rows: list[BenchRow] = []
    rng = np.random.default_rng(seed)
    torch_make = _torch_attention(n_threads) if "torch" in include else None
    onnx_make = _onnx_attention(n_threads) if "onnxruntime" in include else None

    for seq in seq_lens:
        ops = 4.0 * heads * seq * seq * head_dim
        qf, kf, vf = (rng.standard_normal((heads, seq, head_dim), dtype=np.float32) for _ in range(3))
        (q8, qs), (k8, ks), (v8, vs) = (kernels.quantize_int8(a) for a in (qf, kf, vf))

        # -- attention -------------------------------------------------------------------
        timed: list[_Timed] = []
        scratch = kernels.attention_scratch_bytes(seq, seq, head_dim, n_threads)
        method = "kernel accounting" if kernels.COMPILED else "not measured"
        for path in paths:
            for sm in ("lut", "exact"):
                timed.append((
                    f"hastily int8 {sm}",
                    _on_path(path, functools.partial(kernels.attention_int8, q8, k8, v8, qs, ks,
                                                     vs, softmax=sm, n_threads=n_threads)),
                    scratch if kernels.COMPILED else None,
                    method,
                    path,
                ))
        if "numpy" in include:
            timed.append(("numpy float32", lambda: numpy_attention(qf, kf, vf),
                          lambda: _tracemalloc_extra(lambda: numpy_attention(qf, kf, vf)),
                          "tracemalloc", ""))
        if torch_make is not None:
            fn = torch_make if isinstance(torch_make, str) else torch_make(qf, kf, vf)
            timed.append(("torch float32 sdpa", fn, None, "not measured", ""))
        if onnx_make is not None:
            fn = onnx_make if isinstance(onnx_make, str) else onnx_make(qf, kf, vf)
            timed.append(("onnxruntime float32", fn, None, "not measured", ""))
        rows += _attention_pct(_measure("attention", seq, timed, repeats, warmup,
                                        lambda t: {"gops": ops / t / 1e9}), peak)

        # -- softmax ---------------------------------------------------------------------
        n_el = heads * seq * seq
        sf = (rng.standard_normal((heads * seq, seq), dtype=np.float32) * 3.0)
        sc = 1.0 / 4096.0
        si = np.round(sf / np.float32(sc)).astype(np.int32)
        sm_scratch = kernels.softmax_scratch_bytes(seq, n_threads) if kernels.COMPILED else None
        sm_timed: list[_Timed] = [
            ("hastily int32 lut",
             _on_path(path, functools.partial(kernels.softmax_lut, si, sc, n_threads=n_threads)),
             sm_scratch, method, path)
            for path in paths
        ]
        # the memory wall: read the int32 scores once, write a fresh float32 array
        sm_timed.append((_MEMORY_WALL, lambda: si.astype(np.float32), 0, "no scratch", ""))
        if "numpy" in include:
            sm_timed.append(("numpy float32", lambda: numpy_softmax(sf),
                             lambda: _tracemalloc_extra(lambda: numpy_softmax(sf)),
                             "tracemalloc", ""))
        if "torch" in include:
            if _installed("torch"):
                import torch

                ts = torch.from_numpy(sf)

                def torch_softmax() -> object:
                    with torch.inference_mode():
                        return torch.softmax(ts, dim=-1)

                sm_timed.append(("torch float32", torch_softmax, None, "not measured", ""))
            else:
                sm_timed.append(("torch float32", "not installed", None, "not measured", ""))
        rows += _softmax_pct(_measure("softmax", seq, sm_timed, repeats, warmup,
                                      lambda t: {"ns_per_element": t / n_el * 1e9}))

    config = {"seq_lens": list(seq_lens), "heads": heads, "head_dim": head_dim, "batch": 1,
              "repeats": repeats, "warmup": warmup, "n_threads": n_threads,
              "include": list(include), "seed": seed, "simd_paths": paths}
    return BenchReport(rows=tuple(rows), config=config, host=_host_facts(n_threads), peaks=peak)


_MEMORY_WALL = "memory int32->float32"


def _on_path(path: str, fn: Callable[[], object]) -> Callable[[], object]:
    """``fn`` run on SIMD path ``path`` ("none": the NumPy backend, as is)."""
    if path == "none":
        return fn

    def run() -> object:
        with kernels.simd_path(path):
            return fn()

    return run


def _attention_pct(rows: list[BenchRow], peak: Peaks | None) -> list[BenchRow]:
    if peak is None:
        return rows
    out = []
    for r in rows:
        bound = peak.int8_gops.get(r.simd_path) if r.simd_path else peak.fp32_best_gops
        if r.gops is not None and bound:
            r = BenchRow(**{**asdict(r), "pct_of_peak": 100.0 * r.gops / bound})
        out.append(r)
    return out


def _softmax_pct(rows: list[BenchRow]) -> list[BenchRow]:
    wall = next((r for r in rows if r.impl == _MEMORY_WALL and r.median_s), None)
    if wall is None or wall.median_s is None:
        return rows
    return [BenchRow(**{**asdict(r), "pct_of_peak": 100.0 * wall.median_s / r.median_s})
            if r.median_s else r for r in rows]


def measure_peaks(
    *, n_threads: int | None = None, simd_paths: Sequence[str] | None = None,
    target_s: float = 0.05, repeats: int = 3,
) -> Peaks | None:
    """Measure this machine's int8 and fp32 peaks on each SIMD path (GOPS, best of ``repeats``).

    Each thread runs independent multiply-add chains in registers for about ``target_s``
    seconds (``kernels/simd/hb_peak.c``): int8 is the attention kernel's own arithmetic
    (int16 x int16 -> int32: vpdpwssd on avx512, vpmaddwd + vpaddd on avx2), fp32 float32
    multiply-adds (FMA on the SIMD paths). None on the NumPy backend.
    """
    if not kernels.COMPILED or kernels._attention is None:
        return None
    att = kernels._attention
    nt = n_threads or kernels._default_threads()
    names = list(kernels.simd_paths() if simd_paths is None else simd_paths)
    if "none" in names:
        return None
    # the fp32 peak is the machine's: always measure the best path too
    best = kernels.simd_paths()[-1]
    fp32_paths = sorted({*names, best}, key=kernels.SIMD_LEVELS.index)
    int8: dict[str, float] = {}
    fp32: dict[str, float] = {}
    for kind, paths, into in ((0, names, int8), (1, fp32_paths, fp32)):
        for name in paths:
            level = kernels.SIMD_LEVELS.index(name)
            # calibrate on one thread (waking the others can cost milliseconds on a busy
            # machine): each thread then does this work, about target_s at full speed
            iters = 2**12
            while True:
                t0 = time.perf_counter()
                att.peak_ops(level, kind, iters, 1)
                dt = time.perf_counter() - t0
                if dt >= target_s / 4 or iters >= 2**40:
                    break
                iters *= 4
            iters = max(1, int(iters * target_s / max(dt, 1e-9)))
            rates = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                n_ops = att.peak_ops(level, kind, iters, nt)
                rates.append(n_ops / (time.perf_counter() - t0) / 1e9)
            if max(rates) > 0:
                into[name] = max(rates)
    return Peaks(int8_gops=int8, fp32_gops=fp32, n_threads=nt)


def _measure(
    kernel: str,
    seq: int,
    timed: list[_Timed],
    repeats: int,
    warmup: int,
    metric: Callable[[float], dict[str, float]],
) -> list[BenchRow]:
    results: list[BenchRow] = []
    for impl, fn, mem, method, path in timed:
        if isinstance(fn, str):
            results.append(BenchRow(kernel, impl, seq, fn, simd_path=path))
            continue
        try:
            med, best = _time(fn, repeats, warmup)
        except Exception as exc:  # noqa: BLE001 - one failing baseline must not stop the run
            results.append(BenchRow(kernel, impl, seq, f"error: {type(exc).__name__}: {exc}",
                                    simd_path=path))
            continue
        # memory after timing: a traced extra call must not disturb the timed ones
        mem_bytes = mem() if callable(mem) else mem
        results.append(BenchRow(kernel, impl, seq, "ok", med, best, extra_memory_bytes=mem_bytes,
                                memory_method=method, simd_path=path, **metric(med)))
    base = next((r for r in results if r.impl == "numpy float32" and r.median_s), None)
    if base is None or base.median_s is None:
        return results
    out = []
    for r in results:
        if r.median_s:
            r = BenchRow(**{**asdict(r), "ratio_vs_numpy": base.median_s / r.median_s})
        out.append(r)
    return out


def render_bench(report: BenchReport, console: Console) -> None:
    """Print ``report`` as a rich table on ``console``."""
    from rich.table import Table

    host = report.host
    caption = None
    if report.peaks is not None:
        pk = report.peaks
        i8 = ", ".join(f"{k} {v:.0f}" for k, v in pk.int8_gops.items())
        f32 = ", ".join(f"{k} {v:.0f}" for k, v in pk.fp32_gops.items())
        caption = (f"peaks on {pk.n_threads} threads (GOPS): int8 {i8}; fp32 {f32}. "
                   "% of peak: attention vs the int8 peak of its SIMD path (float32 "
                   "baselines: best fp32 peak); softmax vs the memory wall row")
    table = Table(
        title=f"Kernel benchmark ({host.get('kernels_backend')}, {host.get('cpu_count')} CPUs, "
        f"{report.config['heads']} heads x {report.config['head_dim']})",
        caption=caption,
    )
    for col, just in (("kernel", "left"), ("implementation", "left"), ("SIMD", "left"),
                      ("seq", "right"), ("median ms", "right"), ("GOPS", "right"),
                      ("ns/elem", "right"), ("x NumPy", "right"), ("% of peak", "right"),
                      ("extra memory", "right"), ("status", "left")):
        table.add_column(col, justify=just)  # type: ignore[arg-type]

    def fmt(v: float | None, spec: str) -> str:
        return "" if v is None else format(v, spec)

    for r in report.rows:
        mem = "" if r.extra_memory_bytes is None else f"{r.extra_memory_bytes / 2**20:.1f} MiB"
        table.add_row(
            r.kernel, r.impl, r.simd_path, str(r.seq_len),
            fmt(None if r.median_s is None else r.median_s * 1e3, ".2f"),
            fmt(r.gops, ".1f"), fmt(r.ns_per_element, ".2f"), fmt(r.ratio_vs_numpy, ".2f"),
            fmt(r.pct_of_peak, ".0f"), mem, r.status,
        )
    console.print(table)


_MEMORY_SCRIPT = r"""
import json, resource, sys, time
import numpy as np
from hastily_bench import kernels
seq, heads, d, nt = (int(a) for a in sys.argv[1:5])
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()
rng = np.random.default_rng(0)
q, k, v = (rng.integers(-128, 128, (heads, seq, d), dtype=np.int8) for _ in range(3))
before = rss()
t0 = time.perf_counter()
out = kernels.attention_int8(q, k, v, 0.02, 0.02, 0.02, n_threads=nt or None)
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"before": before, "peak": peak, "out": out.nbytes, "seconds": seconds,
                  "inputs": q.nbytes * 3, "backend": kernels.backend(),
                  "scratch": kernels.attention_scratch_bytes(seq, seq, d, nt or None)}))
"""


def attention_memory_check(
    *, seq_len: int = 16384, heads: int = 12, head_dim: int = 64, n_threads: int | None = None
) -> MemoryCheck:
    """Run ``attention_int8`` once in a fresh subprocess and measure its extra memory.

    The extra memory is the peak RSS (``ru_maxrss``) after the call minus the RSS just
    before it (inputs already resident), minus the output array. An earlier, higher peak
    can only make it larger, so it is an upper bound. Linux only (reads /proc/self/statm).
    """
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    proc = subprocess.run(
        [sys.executable, "-c", _MEMORY_SCRIPT, str(seq_len), str(heads), str(head_dim),
         str(n_threads or 0)],
        capture_output=True, text=True, env=env, check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"memory check subprocess failed: {proc.stderr.strip()[-2000:]}")
    m = json.loads(proc.stdout.strip().splitlines()[-1])
    return MemoryCheck(
        seq_len=seq_len, heads=heads, head_dim=head_dim, inputs_bytes=m["inputs"],
        output_bytes=m["out"], extra_maxrss_bytes=max(0, m["peak"] - m["before"] - m["out"]),
        kernel_scratch_bytes=m["scratch"], seconds=m["seconds"], backend=m["backend"],
    )
