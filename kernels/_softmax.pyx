"""Compiled table exponent and row softmax (see ``hastily_bench.kernels`` for the public API).

These functions trust their arguments: ``hastily_bench.kernels`` validates dtypes, shapes and
scales and passes C-contiguous memoryviews. Arithmetic: ``docs/kernels.md``.
"""

from cython.parallel cimport parallel, prange
from libc.stdint cimport int32_t, int64_t
from libc.stdlib cimport free, malloc

from _common cimport HB_OPENMP, HB_SIMD_NAME, hb_exp_array, hb_table_q15

cdef extern from *:
    """
    /* One softmax row: max, exponent into scratch with the sum in 8 fixed lanes (element j
       goes to lane j mod 8, in increasing j: the order the reference reproduces), then one
       reciprocal and a scaled float32 store. */
    static void hb_softmax_row(const int32_t *s, int64_t n, double scale, const double *tab,
                               const int32_t *tab32, int mode, double *scratch, float *out) {
        int64_t j;
        int32_t m = s[0];
        double dm, sum, inv;
        double acc[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
        for (j = 1; j < n; j++) m = s[j] > m ? s[j] : m;
        dm = (double)m;
        j = 0;
    #if defined(HB_HAVE_AVX512)
        {
            __m512i T[8];
            const __m512d sv = _mm512_set1_pd(scale), dmv = _mm512_set1_pd(dm);
            const __m512d lo = _mm512_set1_pd(HB_X_FLUSH);
            __m512d a = _mm512_setzero_pd();
            hb_table_regs(tab32, T);
            #define HB_SOFTMAX_LOOP(M) \
                for (; j + 16 <= n; j += 16) { \
                    const __m512i si = _mm512_loadu_si512((const void *)(s + j)); \
                    __m512d x0 = _mm512_cvtepi32_pd(_mm512_castsi512_si256(si)); \
                    __m512d x1 = _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(si, 1)); \
                    __m512d e0, e1; \
                    x0 = _mm512_max_pd(_mm512_mul_pd(sv, _mm512_sub_pd(x0, dmv)), lo); \
                    x1 = _mm512_max_pd(_mm512_mul_pd(sv, _mm512_sub_pd(x1, dmv)), lo); \
                    hb_exp16(x0, x1, T, tab, M, 1, &e0, &e1); \
                    _mm512_storeu_pd(scratch + j, e0); \
                    _mm512_storeu_pd(scratch + j + 8, e1); \
                    a = _mm512_add_pd(a, e0); \
                    a = _mm512_add_pd(a, e1); \
                }
            if (mode == 0) { HB_SOFTMAX_LOOP(0) } else { HB_SOFTMAX_LOOP(1) }
            #undef HB_SOFTMAX_LOOP
            _mm512_storeu_pd(acc, a);
        }
    #else
        (void)tab32;
    #endif
        for (; j < n; j++) {
            double x = scale * ((double)s[j] - dm);
            x = x < HB_X_FLUSH ? HB_X_FLUSH : x;
            scratch[j] = hb_exp_m(x, tab, mode);
            acc[j & 7] += scratch[j];
        }
        sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        inv = 1.0 / sum;
        for (j = 0; j < n; j++) out[j] = (float)(scratch[j] * inv);
    }
    """
    void hb_softmax_row(const int32_t *s, int64_t n, double scale, const double *tab,
                        const int32_t *tab32, int mode, double *scratch,
                        float *out) noexcept nogil

#: True when this module was compiled with OpenMP.
OPENMP = bool(HB_OPENMP)
#: The widest integer SIMD the compiler was allowed to use ("avx512vnni", "avx2", "scalar").
SIMD = HB_SIMD_NAME.decode("ascii")

cdef enum:
    # Elements per parallel chunk of lut_exp: big enough to amortise scheduling.
    EXP_CHUNK = 16384


def lut_exp(const double[::1] x, double[::1] out, const double[::1] table, int mode,
            int n_threads):
    """out = e^x elementwise (x flattened, already validated <= 0 and not NaN)."""
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
            hb_exp_array(&x[start], &out[start], stop - start, &table[0], tab32, mode)


def softmax_lut(const int32_t[:, ::1] scores, double scale, float[:, ::1] out,
                const double[::1] table, int mode, int n_threads):
    """Row softmax of int32 scores (real value scale * score) with the table exponent."""
    cdef int64_t rows = scores.shape[0]
    cdef int64_t n = scores.shape[1]
    cdef int64_t i
    cdef double *scratch = NULL
    cdef int64_t failed = 0
    cdef int32_t tab32[128]
    hb_table_q15(&table[0], tab32)
    with nogil, parallel(num_threads=n_threads):
        scratch = <double *> malloc(n * sizeof(double))
        # Every thread must reach the worksharing loop, so a failed allocation is
        # counted inside it rather than branched around it.
        for i in prange(rows, schedule="static"):
            if scratch == NULL:
                failed += 1
            else:
                hb_softmax_row(&scores[i, 0], n, scale, &table[0], tab32, mode, scratch,
                               &out[i, 0])
        free(scratch)
    if failed:
        raise MemoryError("softmax_lut: could not allocate the row scratch buffer")


def scratch_bytes(int64_t n, int n_threads):
    """Bytes softmax_lut allocates beyond its inputs and output (one row per thread)."""
    return int(n * 8 * n_threads)
