"""Type stubs for the compiled module built from kernels/_softmax.pyx (private: use
hastily_bench.kernels). Arguments are trusted: the public wrappers validate them."""

import numpy as np
from numpy.typing import NDArray

OPENMP: bool
SIMD: str

def lut_exp(
    x: NDArray[np.float64],
    out: NDArray[np.float64],
    table: NDArray[np.float64],
    mode: int,
    n_threads: int,
) -> None: ...
def softmax_lut(
    scores: NDArray[np.int32],
    scale: float,
    out: NDArray[np.float32],
    table: NDArray[np.float64],
    mode: int,
    n_threads: int,
) -> None: ...
def scratch_bytes(n: int, n_threads: int) -> int: ...
