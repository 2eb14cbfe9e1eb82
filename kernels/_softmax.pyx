"""Compiled table exponent and row softmax (see ``hastily_bench.kernels`` for the public API).

These functions trust their arguments: ``hastily_bench.kernels`` validates dtypes, shapes and
scales and passes C-contiguous memoryviews. Arithmetic: ``docs/kernels.md``.
"""

from cython.parallel cimport parallel, prange
from libc.stdint cimport int32_t, int64_t, uint16_t
from libc.stdlib cimport free, malloc

from _common cimport HB_OPENMP, HB_SIMD_NAME, hb_exp_array, hb_table_q15, hb_table_w16

cdef extern from *:
    """
    /* One softmax row (m: its maximum), operation for operation: exponent into scratch with the sum in 8 fixed lanes (element j
       goes to lane j mod 8, in increasing j: the order the reference reproduces), then one
       reciprocal and a scaled float32 store. */
    static void hb_softmax_row(const int32_t *s, int64_t n, int32_t m, double scale,
                               const double *tab, const int32_t *tab32, int mode,
                               double *scratch, float *out) {
        int64_t j;
        double dm, sum, inv;
        double acc[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
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

    #if defined(HB_HAVE_AVX512) && defined(__AVX512BW__)
    #define HB_FAST_SOFTMAX 1
    /* Rows whose smallest x = scale * (min s - max s) is >= HB_FAST_X_MIN take the fast path
       below: no clamp to HB_X_FLUSH is needed (x > -1000), n >= -1011, so every e is normal
       and the n < -1022 rule never applies. */
    #define HB_FAST_X_MIN (-700.0)

    /* 16 lanes of e' = 2^15 e (e: the specification's exponent), lanes outside mk zero.
       Exact rewrites (see hb_softmax_row_fast): N = floor(x * (LOG2E * 128)); the table as
       integers T[d] = 2^15 tab[d] (16-bit words in 4 registers, two vpermt2w per 16 lanes);
       2^n applied with vscalefpd by k = N / 128 (floor(k) = n). isub: s - m fits int32, so
       float64(s - m) = float64(s) - float64(m). */
    HB_INLINE void hb_sm_exp16(const int32_t *sp, const __mmask16 mk, const int tail,
                               const int mode, const int isub, const __m512i mv,
                               const __m512d dmv, const __m512d sv, const __m512i T0,
                               const __m512i T1, const __m512i T2, const __m512i T3,
                               __m512d *e0, __m512d *e1) {
        const __m512i si = tail ? _mm512_maskz_loadu_epi32(mk, (const void *)sp)
                                : _mm512_loadu_si512((const void *)sp);
        __m512d x0, x1, k0, k1, y0, y1;
        if (isub) {
            const __m512i di = _mm512_sub_epi32(si, mv);
            x0 = _mm512_cvtepi32_pd(_mm512_castsi512_si256(di));
            x1 = _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(di, 1));
        } else {
            x0 = _mm512_sub_pd(_mm512_cvtepi32_pd(_mm512_castsi512_si256(si)), dmv);
            x1 = _mm512_sub_pd(_mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(si, 1)), dmv);
        }
        x0 = _mm512_mul_pd(sv, x0);
        x1 = _mm512_mul_pd(sv, x1);
        hb_lut16(x0, x1, mode, T0, T1, T2, T3, &y0, &y1, &k0, &k1);
        if (tail) {
            *e0 = _mm512_maskz_scalef_pd((__mmask8)mk, y0, k0);
            *e1 = _mm512_maskz_scalef_pd((__mmask8)(mk >> 8), y1, k1);
        } else {
            *e0 = _mm512_scalef_pd(y0, k0);
            *e1 = _mm512_scalef_pd(y1, k1);
        }
    }

    /* One row on the fast path (mn: the row minimum, m: its maximum; scale * (mn - m) >=
       HB_FAST_X_MIN). The whole row is computed scaled by 2^15: e' = 2^15 e exactly (e is
       normal), so the lane sums are 2^15 times the specification's (every partial sum is
       normal: no rounding changes), 1 / sum' = 2^-15 (1 / sum) exactly, and e' * (1 / sum')
       is the same real product as e * (1 / sum): the same float64, the same float32. */
    HB_INLINE void hb_softmax_row_fast(const int32_t *s, int64_t n, int32_t m, double scale,
                                       const __m512i *T, const int mode, const int isub,
                                       double *scratch, float *out) {
        const __m512i mv = _mm512_set1_epi32(m);
        const __m512d dmv = _mm512_set1_pd((double)m), sv = _mm512_set1_pd(scale);
        const __m512i T0 = T[0], T1 = T[1], T2 = T[2], T3 = T[3];
        __m512d a = _mm512_setzero_pd(), e0, e1, iv;
        double acc[8], sum;
        int64_t j = 0;
        for (; j + 16 <= n; j += 16) {
            hb_sm_exp16(s + j, 0xffff, 0, mode, isub, mv, dmv, sv, T0, T1, T2, T3, &e0, &e1);
            _mm512_storeu_pd(scratch + j, e0);
            _mm512_storeu_pd(scratch + j + 8, e1);
            a = _mm512_add_pd(a, e0);
            a = _mm512_add_pd(a, e1);
        }
        if (j < n) {
            /* lanes past the end add +0.0: the lane sums are unchanged */
            const __mmask16 mk = (__mmask16)((1u << (n - j)) - 1u);
            hb_sm_exp16(s + j, mk, 1, mode, isub, mv, dmv, sv, T0, T1, T2, T3, &e0, &e1);
            _mm512_mask_storeu_pd(scratch + j, (__mmask8)mk, e0);
            _mm512_mask_storeu_pd(scratch + j + 8, (__mmask8)(mk >> 8), e1);
            a = _mm512_add_pd(a, e0);
            a = _mm512_add_pd(a, e1);
        }
        _mm512_storeu_pd(acc, a);
        sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        iv = _mm512_set1_pd(1.0 / sum);
        for (j = 0; j + 16 <= n; j += 16) {
            const __m256 p0 = _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_loadu_pd(scratch + j), iv));
            const __m256 p1 = _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_loadu_pd(scratch + j + 8), iv));
            _mm512_storeu_ps(out + j, _mm512_insertf32x8(_mm512_castps256_ps512(p0), p1, 1));
        }
        if (j < n) {
            const __mmask16 mk = (__mmask16)((1u << (n - j)) - 1u);
            const __m256 p0 = _mm512_cvtpd_ps(_mm512_mul_pd(
                _mm512_maskz_loadu_pd((__mmask8)mk, scratch + j), iv));
            const __m256 p1 = _mm512_cvtpd_ps(_mm512_mul_pd(
                _mm512_maskz_loadu_pd((__mmask8)(mk >> 8), scratch + j + 8), iv));
            _mm512_mask_storeu_ps(out + j, mk, _mm512_insertf32x8(_mm512_castps256_ps512(p0), p1, 1));
        }
    }
    #endif

    /* Row maximum and minimum. */
    static inline void hb_row_minmax(const int32_t *s, int64_t n, int32_t *mx, int32_t *mn) {
        int64_t j = 0;
        int32_t hi = s[0], lo = s[0];
    #if defined(HB_HAVE_AVX512)
        if (n >= 16) {
            __m512i vh = _mm512_loadu_si512((const void *)s), vl = vh;
            for (j = 16; j + 16 <= n; j += 16) {
                const __m512i v = _mm512_loadu_si512((const void *)(s + j));
                vh = _mm512_max_epi32(vh, v);
                vl = _mm512_min_epi32(vl, v);
            }
            hi = _mm512_reduce_max_epi32(vh);
            lo = _mm512_reduce_min_epi32(vl);
        }
    #endif
        for (; j < n; j++) {
            hi = s[j] > hi ? s[j] : hi;
            lo = s[j] < lo ? s[j] : lo;
        }
        *mx = hi;
        *mn = lo;
    }

    static void hb_softmax_row_any(const int32_t *s, int64_t n, double scale, const double *tab,
                                   const int32_t *tab32, const uint16_t *w, int mode,
                                   double *scratch, float *out) {
        int32_t m, mn;
        hb_row_minmax(s, n, &m, &mn);
    #if defined(HB_FAST_SOFTMAX)
        if (mode != 2 && scale * ((double)mn - (double)m) >= HB_FAST_X_MIN) {
            __m512i T[4];
            const int isub = (int64_t)mn - (int64_t)m >= (int64_t)INT32_MIN;
            hb_w16_regs(w, T);
            if (mode == 0) {
                if (isub) hb_softmax_row_fast(s, n, m, scale, T, 0, 1, scratch, out);
                else hb_softmax_row_fast(s, n, m, scale, T, 0, 0, scratch, out);
            } else {
                if (isub) hb_softmax_row_fast(s, n, m, scale, T, 1, 1, scratch, out);
                else hb_softmax_row_fast(s, n, m, scale, T, 1, 0, scratch, out);
            }
            return;
        }
    #else
        (void)w;
    #endif
        hb_softmax_row(s, n, m, scale, tab, tab32, mode, scratch, out);
    }
    """
    void hb_softmax_row_any(const int32_t *s, int64_t n, double scale, const double *tab,
                            const int32_t *tab32, const uint16_t *w, int mode, double *scratch,
                            float *out) noexcept nogil

#: True when this module was compiled with OpenMP.
OPENMP = bool(HB_OPENMP)
#: The widest integer SIMD the compiler was allowed to use ("avx512vnni", "avx2", "scalar").
SIMD = HB_SIMD_NAME.decode("ascii")

cdef enum:
    # Elements per parallel chunk of lut_exp: big enough to amortise scheduling.
    EXP_CHUNK = 16384
    # Elements per dynamically scheduled chunk of softmax rows.
    ROW_CHUNK = 524288


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
                hb_softmax_row_any(&scores[i, 0], n, scale, &table[0], tab32, w16, mode,
                                   scratch, &out[i, 0])
        free(scratch)
    if failed:
        raise MemoryError("softmax_lut: could not allocate the row scratch buffer")


def scratch_bytes(int64_t n, int n_threads):
    """Bytes softmax_lut allocates beyond its inputs and output (one row per thread)."""
    return int(n * 8 * n_threads)
