"""Compiled table exponent and row softmax (see ``hastily_bench.kernels`` for the public API).

These functions trust their array arguments: ``hastily_bench.kernels`` validates dtypes,
shapes and scales and passes C-contiguous memoryviews. The C code is in ``kernels/simd/``,
one implementation per SIMD level; ``level`` picks one (``cpu_level()``: the best this CPU
runs) and every level gives the same bits. Arithmetic: ``docs/kernels.md``.
"""

from cython.parallel cimport parallel, prange
from libc.stdint cimport int32_t, int64_t, uint16_t
from libc.stdlib cimport free, malloc

from _common cimport (
    HB_OPENMP,
    built_levels,
    check_mode,
    hb_cpu_level,
    hb_ops,
    hb_ops_for,
    hb_table_q15,
    hb_table_w16,
    ops_or_raise,
)

#: True when this module was compiled with OpenMP.
OPENMP = bool(HB_OPENMP)
#: Names of the SIMD levels, by level number.
LEVEL_NAMES = ("scalar", "avx2", "avx512")

cdef enum:
    # Elements per parallel chunk of lut_exp: big enough to amortise scheduling.
    EXP_CHUNK = 16384
    # Elements per dynamically scheduled chunk of softmax rows.
    ROW_CHUNK = 524288


def cpu_level():
    """The highest SIMD level this CPU (and operating system) can execute: 0, 1 or 2."""
    return hb_cpu_level()


def compiled_levels():
    """The SIMD levels compiled into this build, lowest first."""
    return tuple(built_levels())


def lut_exp(const double[::1] x, double[::1] out, const double[::1] table, int mode,
            int n_threads, int level):
    """out = e^x elementwise (x flattened, already validated <= 0 and not NaN)."""
    cdef const hb_ops *ops = ops_or_raise(level)
    check_mode(mode, 2)
    cdef int64_t n = x.shape[0]
    cdef int64_t nchunks = (n + EXP_CHUNK - 1) // EXP_CHUNK
    cdef int64_t c, start, stop
    cdef int32_t tab32[128]
    hb_table_q15(&table[0], tab32)
    with nogil:
        for c in prange(nchunks, num_threads=n_threads, schedule="static"):
            start = c * EXP_CHUNK
            stop = start + EXP_CHUNK
            if stop > n:
                stop = n
            ops.exp_array(&x[start], &out[start], stop - start, &table[0], tab32, mode)


def softmax_lut(const int32_t[:, ::1] scores, double scale, float[:, ::1] out,
                const double[::1] table, int mode, int n_threads, int level):
    """Row softmax of int32 scores (real value scale * score) with the table exponent;
    mode 0 (residual none) or 1 (linear)."""
    cdef const hb_ops *ops = ops_or_raise(level)
    check_mode(mode, 1)
    cdef int64_t rows = scores.shape[0]
    cdef int64_t n = scores.shape[1]
    cdef int64_t i
    cdef double *scratch = NULL
    cdef int64_t failed = 0
    cdef int32_t tab32[128]
    cdef uint16_t w16[128]
    hb_table_q15(&table[0], tab32)
    cdef int64_t chunk = ROW_CHUNK // n if n < ROW_CHUNK else 1
    hb_table_w16(tab32, w16)
    with nogil, parallel(num_threads=n_threads):
        scratch = <double *> malloc(n * sizeof(double))
        # Every thread must reach the worksharing loop, so a failed allocation is
        # counted inside it rather than branched around it.
        # Dynamic chunks of about ROW_CHUNK elements: the rows are independent, so the
        # split does not change the results, and a core slowed by the rest of the machine
        # no longer holds up the call (a static half each waited for the slower core).
        for i in prange(rows, schedule="dynamic", chunksize=chunk):
            if scratch == NULL:
                failed += 1
            else:
                ops.softmax_row(&scores[i, 0], n, scale, &table[0], tab32, w16, mode,
                                scratch, &out[i, 0])
        free(scratch)
    if failed:
        raise MemoryError("softmax_lut: could not allocate the row scratch buffer")


def scratch_bytes(int64_t n, int n_threads):
    """Bytes softmax_lut allocates beyond its inputs and output (one row per thread)."""
    return int(n * 8 * n_threads)
