"""Type stubs for the compiled module built from kernels/_attention.pyx (private: use
hastily_bench.kernels). Arrays are trusted: the public wrappers validate them; level and mode
are checked (ValueError)."""

import numpy as np
from numpy.typing import NDArray

OPENMP: bool

def tiles(level: int) -> dict[str, int]: ...
def peak_ops(level: int, kind: int, iters: int, n_threads: int) -> int: ...
def scratch_bytes(lq: int, lk: int, d: int, n_threads: int, level: int) -> int: ...
def attention(
    q: NDArray[np.int8],
    k: NDArray[np.int8],
    v: NDArray[np.int8],
    c: float,
    v_scale: float,
    table: NDArray[np.float64],
    mode: int,
    out: NDArray[np.float32],
    n_threads: int,
    level: int,
) -> None: ...
