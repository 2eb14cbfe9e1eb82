"""Type stubs for the compiled module built from kernels/_softmax.pyx (private: use
hastily_bench.kernels). Arrays are trusted: the public wrappers validate them; level and mode
are checked (ValueError)."""

import numpy as np
from numpy.typing import NDArray

OPENMP: bool
LEVEL_NAMES: tuple[str, str, str]

def cpu_level() -> int: ...
def compiled_levels() -> tuple[int, ...]: ...
def lut_exp(
    x: NDArray[np.float64],
    out: NDArray[np.float64],
    table: NDArray[np.float64],
    mode: int,
    n_threads: int,
    level: int,
) -> None: ...
def softmax_lut(
    scores: NDArray[np.int32],
    scale: float,
    out: NDArray[np.float32],
    table: NDArray[np.float64],
    mode: int,
    n_threads: int,
    level: int,
) -> None: ...
def scratch_bytes(n: int, n_threads: int) -> int: ...
