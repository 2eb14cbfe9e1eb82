"""Compiled int8 attention (see ``hastily_bench.kernels.attention_int8`` for the public API).

Two passes per block of HB_QB query rows, never the seq x seq score matrix:

1. int32 scores of the block against every key (int8 widened to int16, ``vpmaddwd`` /
   ``vpdpwssd``: exact), kept in an HB_QB x seq scratch row;
2. per row: max, table exponent, probabilities quantised to Q0.15 (int16), then P.V as an
   exact integer product (int16 x int16 -> int32 within a tile of HB_VT keys, int64 across
   tiles), scaled once per row.

Integer arithmetic is exact whatever the order, and the exponent is a fixed sequence of
float64 operations, so the result equals ``hastily_bench.kernels.reference.attention_int8``
bit for bit, with or without OpenMP and for any number of threads. The arguments are trusted:
the Python wrapper validates them.
"""

from cython.parallel cimport parallel, prange
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memset

from _common cimport HB_OPENMP, HB_SIMD_NAME, hb_table_q15

cdef extern from *:
    """
    #if defined(__AVX512VNNI__) && defined(__AVX512BW__) && defined(__AVX512VL__)
    /* zmm micro-kernels: 4 rows x 4 zmm = 16 independent accumulators. */
    #define HB_ZMM 1
    #if defined(__GNUC__) && !defined(__clang__)
    /* acc += a . b in place; as an intrinsic in a loop GCC 12 copies the accumulators. */
    #define HB_DP(acc, a, b) __asm__("vpdpwssd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b))
    #else
    #define HB_DP(acc, a, b) acc = _mm512_dpwssd_epi32(acc, a, b)
    #endif
    #define HB_KB 64    /* keys per score micro-tile */
    #define HB_DC 64    /* head_dim columns per P.V micro-tile */
    #elif defined(__AVX512VL__)
    /* 32 vector registers: 4 rows x 4 vectors = 16 independent accumulators, enough to hide
       the vpdpwssd latency. */
    #define HB_KB 32    /* keys per score micro-tile */
    #define HB_DC 32    /* head_dim columns per P.V micro-tile */
    #else
    #define HB_KB 16    /* 16 vector registers: 4 rows x 2 vectors */
    #define HB_DC 16
    #endif
    #define HB_QB 4     /* query rows per block (register blocking) */
    #define HB_NV (HB_KB / 8)   /* int32 vectors per row of a micro-tile */
    #define HB_NC (HB_DC / 8)
    #define HB_VT 512   /* keys per P.V tile: 256 pairs x 2 x 32767 x 128 < 2^31 */
    #define HB_X_CLAMP (-64.0)  /* e^x < 2^-91 below: quantises to 0 either way */

    #if defined(__AVX2__)
    #if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    #define HB_MAC(c, a, b) c = _mm256_dpwssd_epi32(c, a, b)
    #else
    #define HB_MAC(c, a, b) c = _mm256_add_epi32(c, _mm256_madd_epi16(a, b))
    #endif
    #endif

    static inline int32_t hb_load_i32(const void *p) { int32_t v; memcpy(&v, p, 4); return v; }

    /* Scores of HB_QB query rows against one block of HB_KB keys.
       qw[r * P + p]: the int16 pair (q[2p], q[2p+1]) of row r as one 32-bit word.
       kb: P x HB_KB x 2 int16: for pair p, key l: (k[l][2p], k[l][2p+1]).
       out[r * ldo + l] = sum_d q[r][d] * k[l][d] (exact int32). */
    static void hb_qk_block(const int32_t *qw, const int16_t *kb, int64_t P, int32_t *out,
                            int64_t ldo) {
    #if defined(HB_ZMM)
        /* Written out accumulator by accumulator: with arrays of accumulators GCC 12 copies
           every vpdpwssd operand through extra registers. */
        __m512i a00 = _mm512_setzero_si512(), a01 = a00, a02 = a00, a03 = a00;
        __m512i a10 = a00, a11 = a00, a12 = a00, a13 = a00;
        __m512i a20 = a00, a21 = a00, a22 = a00, a23 = a00;
        __m512i a30 = a00, a31 = a00, a32 = a00, a33 = a00;
        const int32_t *q0 = qw, *q1 = qw + P, *q2 = qw + 2 * P, *q3 = qw + 3 * P;
        int64_t p;
        for (p = 0; p < P; p++) {
            const int16_t *k = kb + p * HB_KB * 2;
            const __m512i b0 = _mm512_loadu_si512((const void *)k);
            const __m512i b1 = _mm512_loadu_si512((const void *)(k + 32));
            const __m512i b2 = _mm512_loadu_si512((const void *)(k + 64));
            const __m512i b3 = _mm512_loadu_si512((const void *)(k + 96));
            __m512i a = _mm512_set1_epi32(q0[p]);
            HB_DP(a00, a, b0); HB_DP(a01, a, b1);
            HB_DP(a02, a, b2); HB_DP(a03, a, b3);
            a = _mm512_set1_epi32(q1[p]);
            HB_DP(a10, a, b0); HB_DP(a11, a, b1);
            HB_DP(a12, a, b2); HB_DP(a13, a, b3);
            a = _mm512_set1_epi32(q2[p]);
            HB_DP(a20, a, b0); HB_DP(a21, a, b1);
            HB_DP(a22, a, b2); HB_DP(a23, a, b3);
            a = _mm512_set1_epi32(q3[p]);
            HB_DP(a30, a, b0); HB_DP(a31, a, b1);
            HB_DP(a32, a, b2); HB_DP(a33, a, b3);
        }
        _mm512_storeu_si512((void *)(out), a00);
        _mm512_storeu_si512((void *)(out + 16), a01);
        _mm512_storeu_si512((void *)(out + 32), a02);
        _mm512_storeu_si512((void *)(out + 48), a03);
        _mm512_storeu_si512((void *)(out + ldo), a10);
        _mm512_storeu_si512((void *)(out + ldo + 16), a11);
        _mm512_storeu_si512((void *)(out + ldo + 32), a12);
        _mm512_storeu_si512((void *)(out + ldo + 48), a13);
        _mm512_storeu_si512((void *)(out + 2 * ldo), a20);
        _mm512_storeu_si512((void *)(out + 2 * ldo + 16), a21);
        _mm512_storeu_si512((void *)(out + 2 * ldo + 32), a22);
        _mm512_storeu_si512((void *)(out + 2 * ldo + 48), a23);
        _mm512_storeu_si512((void *)(out + 3 * ldo), a30);
        _mm512_storeu_si512((void *)(out + 3 * ldo + 16), a31);
        _mm512_storeu_si512((void *)(out + 3 * ldo + 32), a32);
        _mm512_storeu_si512((void *)(out + 3 * ldo + 48), a33);
    #elif defined(__AVX2__)
        __m256i acc[HB_QB][HB_NV];
        int64_t p;
        int r, v;
        for (r = 0; r < HB_QB; r++)
            for (v = 0; v < HB_NV; v++) acc[r][v] = _mm256_setzero_si256();
        for (p = 0; p < P; p++) {
            __m256i b[HB_NV];
            for (v = 0; v < HB_NV; v++)
                b[v] = _mm256_loadu_si256((const __m256i *)(kb + p * HB_KB * 2 + 16 * v));
            for (r = 0; r < HB_QB; r++) {
                const __m256i a = _mm256_set1_epi32(qw[r * P + p]);
                for (v = 0; v < HB_NV; v++) HB_MAC(acc[r][v], a, b[v]);
            }
        }
        for (r = 0; r < HB_QB; r++)
            for (v = 0; v < HB_NV; v++)
                _mm256_storeu_si256((__m256i *)(out + r * ldo + 8 * v), acc[r][v]);
    #else
        int64_t p, r, l;
        for (r = 0; r < HB_QB; r++) {
            int32_t acc[HB_KB] = {0};
            for (p = 0; p < P; p++) {
                const int32_t w = qw[r * P + p];
                const int32_t qa = (int16_t)(w & 0xffff), qb = (int16_t)(w >> 16);
                for (l = 0; l < HB_KB; l++)
                    acc[l] += qa * kb[p * HB_KB * 2 + 2 * l] + qb * kb[p * HB_KB * 2 + 2 * l + 1];
            }
            for (l = 0; l < HB_KB; l++) out[r * ldo + l] = acc[l];
        }
    #endif
    }

    /* A[r][d] += sum over key pairs jp in [jp0, jp1) of E[r][2jp] V[2jp][d] + E[r][2jp+1] V[2jp+1][d]
       E: HB_QB rows of int16 (stride ldE, even); Vp: per key pair, Dv x 2 int16;
       at most HB_VT / 2 pairs per call so the int32 tile sums cannot overflow. */
    static void hb_pv_tile(const int16_t *E, int64_t ldE, int64_t jp0, int64_t jp1,
                           const int16_t *Vp, int64_t Dv, int64_t *A) {
        int64_t c, jp;
        int r, i;
        int32_t tmp[HB_QB][HB_DC];
        for (c = 0; c < Dv; c += HB_DC) {
    #if defined(HB_ZMM)
            __m512i a00 = _mm512_setzero_si512(), a01 = a00, a02 = a00, a03 = a00;
            __m512i a10 = a00, a11 = a00, a12 = a00, a13 = a00;
            __m512i a20 = a00, a21 = a00, a22 = a00, a23 = a00;
            __m512i a30 = a00, a31 = a00, a32 = a00, a33 = a00;
            const int16_t *e0 = E, *e1 = E + ldE, *e2 = E + 2 * ldE, *e3 = E + 3 * ldE;
            (void)i;
            for (jp = jp0; jp < jp1; jp++) {
                const int16_t *vp = Vp + (jp * Dv + c) * 2;
                const __m512i b0 = _mm512_loadu_si512((const void *)vp);
                const __m512i b1 = _mm512_loadu_si512((const void *)(vp + 32));
                const __m512i b2 = _mm512_loadu_si512((const void *)(vp + 64));
                const __m512i b3 = _mm512_loadu_si512((const void *)(vp + 96));
                __m512i a = _mm512_set1_epi32(hb_load_i32(e0 + 2 * jp));
                HB_DP(a00, a, b0); HB_DP(a01, a, b1);
                HB_DP(a02, a, b2); HB_DP(a03, a, b3);
                a = _mm512_set1_epi32(hb_load_i32(e1 + 2 * jp));
                HB_DP(a10, a, b0); HB_DP(a11, a, b1);
                HB_DP(a12, a, b2); HB_DP(a13, a, b3);
                a = _mm512_set1_epi32(hb_load_i32(e2 + 2 * jp));
                HB_DP(a20, a, b0); HB_DP(a21, a, b1);
                HB_DP(a22, a, b2); HB_DP(a23, a, b3);
                a = _mm512_set1_epi32(hb_load_i32(e3 + 2 * jp));
                HB_DP(a30, a, b0); HB_DP(a31, a, b1);
                HB_DP(a32, a, b2); HB_DP(a33, a, b3);
            }
            #define HB_ACC64(dst, x) do { \
                _mm512_storeu_si512((void *)(dst), _mm512_add_epi64(_mm512_loadu_si512((const void *)(dst)), \
                    _mm512_cvtepi32_epi64(_mm512_castsi512_si256(x)))); \
                _mm512_storeu_si512((void *)((dst) + 8), _mm512_add_epi64(_mm512_loadu_si512((const void *)((dst) + 8)), \
                    _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(x, 1)))); } while (0)
            HB_ACC64(A + c, a00); HB_ACC64(A + c + 16, a01); HB_ACC64(A + c + 32, a02); HB_ACC64(A + c + 48, a03);
            HB_ACC64(A + Dv + c, a10); HB_ACC64(A + Dv + c + 16, a11);
            HB_ACC64(A + Dv + c + 32, a12); HB_ACC64(A + Dv + c + 48, a13);
            HB_ACC64(A + 2 * Dv + c, a20); HB_ACC64(A + 2 * Dv + c + 16, a21);
            HB_ACC64(A + 2 * Dv + c + 32, a22); HB_ACC64(A + 2 * Dv + c + 48, a23);
            HB_ACC64(A + 3 * Dv + c, a30); HB_ACC64(A + 3 * Dv + c + 16, a31);
            HB_ACC64(A + 3 * Dv + c + 32, a32); HB_ACC64(A + 3 * Dv + c + 48, a33);
            #undef HB_ACC64
            continue;
    #elif defined(__AVX2__)
            __m256i acc[HB_QB][HB_NC];
            int v;
            for (r = 0; r < HB_QB; r++)
                for (v = 0; v < HB_NC; v++) acc[r][v] = _mm256_setzero_si256();
            for (jp = jp0; jp < jp1; jp++) {
                const int16_t *vp = Vp + (jp * Dv + c) * 2;
                __m256i b[HB_NC];
                for (v = 0; v < HB_NC; v++) b[v] = _mm256_loadu_si256((const __m256i *)(vp + 16 * v));
                for (r = 0; r < HB_QB; r++) {
                    const __m256i a = _mm256_set1_epi32(hb_load_i32(E + r * ldE + 2 * jp));
                    for (v = 0; v < HB_NC; v++) HB_MAC(acc[r][v], a, b[v]);
                }
            }
            for (r = 0; r < HB_QB; r++)
                for (v = 0; v < HB_NC; v++) _mm256_storeu_si256((__m256i *)(tmp[r] + 8 * v), acc[r][v]);
    #else
            for (r = 0; r < HB_QB; r++) {
                for (i = 0; i < HB_DC; i++) tmp[r][i] = 0;
                for (jp = jp0; jp < jp1; jp++) {
                    const int32_t ea = E[r * ldE + 2 * jp], eb = E[r * ldE + 2 * jp + 1];
                    const int16_t *vp = Vp + (jp * Dv + c) * 2;
                    for (i = 0; i < HB_DC; i++) tmp[r][i] += ea * vp[2 * i] + eb * vp[2 * i + 1];
                }
            }
    #endif
            for (r = 0; r < HB_QB; r++)
                for (i = 0; i < HB_DC; i++) A[r * Dv + c + i] += tmp[r][i];
        }
    }

    /* One score row -> Q0.15 probabilities (unnormalised, max -> 32767); returns their sum.
       E[j] = min(trunc(e^x * 2^15 + 0.5), 32767), x = c * (S[j] - max S). x is raised to
       HB_X_CLAMP first: below it E is 0 with or without the clamp, and 2^n stays normal. */
    HB_INLINE int64_t hb_exp_row_q15(const int32_t *S, int64_t n, double c, const double *tab,
                                  const int32_t *tab32, const int mode, int16_t *E) {
        int64_t j = 0, sum = 0;
        int32_t m = S[0];
        double dm;
        for (j = 1; j < n; j++) m = S[j] > m ? S[j] : m;
        dm = (double)m;
        j = 0;
    #if defined(HB_HAVE_AVX512)
        {
            __m512i T[8];
            const __m512d cv = _mm512_set1_pd(c), dmv = _mm512_set1_pd(dm);
            const __m512d lo = _mm512_set1_pd(HB_X_CLAMP);
            const __m512d s15 = _mm512_set1_pd(32768.0), half = _mm512_set1_pd(0.5);
            __m512i acc = _mm512_setzero_si512();
            hb_table_regs(tab32, T);
            for (; j + 16 <= n; j += 16) {
                const __m512i s = _mm512_loadu_si512((const void *)(S + j));
                __m512d x0 = _mm512_cvtepi32_pd(_mm512_castsi512_si256(s));
                __m512d x1 = _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(s, 1));
                __m512d e0, e1;
                __m512i q;
                x0 = _mm512_max_pd(_mm512_mul_pd(cv, _mm512_sub_pd(x0, dmv)), lo);
                x1 = _mm512_max_pd(_mm512_mul_pd(cv, _mm512_sub_pd(x1, dmv)), lo);
                hb_exp16(x0, x1, T, tab, mode, 0, &e0, &e1);
                q = _mm512_inserti64x4(
                    _mm512_castsi256_si512(_mm512_cvttpd_epi32(_mm512_add_pd(_mm512_mul_pd(e0, s15), half))),
                    _mm512_cvttpd_epi32(_mm512_add_pd(_mm512_mul_pd(e1, s15), half)), 1);
                q = _mm512_min_epi32(q, _mm512_set1_epi32(32767));
                acc = _mm512_add_epi64(acc, _mm512_cvtepi32_epi64(_mm512_castsi512_si256(q)));
                acc = _mm512_add_epi64(acc, _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(q, 1)));
                _mm256_storeu_si256((__m256i *)(E + j), _mm512_cvtepi32_epi16(q));
            }
            sum = _mm512_reduce_add_epi64(acc);
        }
    #elif defined(HB_HAVE_AVX2_EXP)
        {
            const __m256d cv = _mm256_set1_pd(c), dmv = _mm256_set1_pd(dm);
            const __m256d lo = _mm256_set1_pd(HB_X_CLAMP);
            const __m256d s15 = _mm256_set1_pd(32768.0), half = _mm256_set1_pd(0.5);
            __m256i acc = _mm256_setzero_si256();
            int64_t t[4];
            (void)tab32;
            for (; j + 4 <= n; j += 4) {
                __m256d x = _mm256_cvtepi32_pd(_mm_loadu_si128((const __m128i *)(S + j)));
                __m128i q;
                x = _mm256_max_pd(_mm256_mul_pd(cv, _mm256_sub_pd(x, dmv)), lo);
                q = _mm256_cvttpd_epi32(_mm256_add_pd(_mm256_mul_pd(hb_exp4(x, tab, mode, 0), s15), half));
                q = _mm_min_epi32(q, _mm_set1_epi32(32767));
                acc = _mm256_add_epi64(acc, _mm256_cvtepi32_epi64(q));
                _mm_storel_epi64((__m128i *)(E + j), _mm_packs_epi32(q, q));
            }
            _mm256_storeu_si256((__m256i *)t, acc);
            sum = t[0] + t[1] + t[2] + t[3];
        }
    #else
        (void)tab32;
    #endif
        for (; j < n; j++) {
            double x = c * ((double)S[j] - dm);
            int32_t q;
            x = x < HB_X_CLAMP ? HB_X_CLAMP : x;
            q = (int32_t)(hb_exp_m(x, tab, mode) * 32768.0 + 0.5);
            q = q > 32767 ? 32767 : q;
            E[j] = (int16_t)q;
            sum += q;
        }
        return sum;
    }

    #if defined(HB_HAVE_AVX512) && defined(__AVX512BW__)
    #define HB_FAST_Q15 1
    /* hb_exp_row_q15 for the table modes (0, 1), the same values with fewer operations: the
       exponent of 16 lanes at a time by hb_lut16 (whose comment says why each rewrite is exact
       for x in [HB_X_CLAMP, 0]), then min(trunc(y), 32767) = trunc(min(y, 32767)) for y >= 0. */
    HB_INLINE int64_t hb_exp_row_q15_fast(const int32_t *S, int64_t n, double c, const double *tab,
                                          const int32_t *tab32, const int mode, int16_t *E) {
        int64_t j = 0, sum = 0, jc;
        int32_t m = S[0];
        double dm;
        __m512i T[4], T0, T1, T2, T3;
        uint16_t w[128];
        for (j = 1; j < n; j++) m = S[j] > m ? S[j] : m;
        dm = (double)m;
        hb_table_w16(tab32, w);
        hb_w16_regs(w, T);
        T0 = T[0], T1 = T[1], T2 = T[2], T3 = T[3];
        {
            const __m512d cv = _mm512_set1_pd(c), dmv = _mm512_set1_pd(dm);
            const __m512d lo = _mm512_set1_pd(HB_X_CLAMP);
            const __m512d half = _mm512_set1_pd(0.5), qmax = _mm512_set1_pd(32767.0);
            j = 0;
            while (j + 16 <= n) {
                /* int32 lane sums: at most 4096 x 32767 per lane before they are flushed */
                __m512i acc = _mm512_setzero_si512();
                jc = j + 16 * 4096;
                if (jc > n) jc = n;
                for (; j + 16 <= jc; j += 16) {
                    const __m512i s = _mm512_loadu_si512((const void *)(S + j));
                    __m512d x0 = _mm512_cvtepi32_pd(_mm512_castsi512_si256(s));
                    __m512d x1 = _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(s, 1));
                    __m512d k0, k1, y0, y1;
                    x0 = _mm512_max_pd(_mm512_mul_pd(cv, _mm512_sub_pd(x0, dmv)), lo);
                    x1 = _mm512_max_pd(_mm512_mul_pd(cv, _mm512_sub_pd(x1, dmv)), lo);
                    hb_lut16(x0, x1, mode, T0, T1, T2, T3, &y0, &y1, &k0, &k1);
                    y0 = _mm512_min_pd(_mm512_add_pd(_mm512_scalef_pd(y0, k0), half), qmax);
                    y1 = _mm512_min_pd(_mm512_add_pd(_mm512_scalef_pd(y1, k1), half), qmax);
                    {
                        const __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvttpd_epi32(y0)),
                                                             _mm512_cvttpd_epi32(y1), 1);
                        acc = _mm512_add_epi32(acc, q);
                        _mm256_storeu_si256((__m256i *)(E + j), _mm512_cvtepi32_epi16(q));
                    }
                }
                sum += _mm512_reduce_add_epi64(_mm512_add_epi64(
                    _mm512_cvtepi32_epi64(_mm512_castsi512_si256(acc)),
                    _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(acc, 1))));
            }
        }
        for (; j < n; j++) {
            double x = c * ((double)S[j] - dm);
            int32_t q;
            x = x < HB_X_CLAMP ? HB_X_CLAMP : x;
            q = (int32_t)(hb_exp_m(x, tab, mode) * 32768.0 + 0.5);
            q = q > 32767 ? 32767 : q;
            E[j] = (int16_t)q;
            sum += q;
        }
        return sum;
    }
    #endif

    static int64_t hb_exp_row_q15_any(const int32_t *S, int64_t n, double c, const double *tab,
                                      const int32_t *tab32, int mode, int16_t *E) {
    #if defined(HB_FAST_Q15)
        if (mode == 0) return hb_exp_row_q15_fast(S, n, c, tab, tab32, 0, E);
        if (mode == 1) return hb_exp_row_q15_fast(S, n, c, tab, tab32, 1, E);
    #else
        if (mode == 0) return hb_exp_row_q15(S, n, c, tab, tab32, 0, E);
        if (mode == 1) return hb_exp_row_q15(S, n, c, tab, tab32, 1, E);
    #endif
        return hb_exp_row_q15(S, n, c, tab, tab32, 2, E);
    }
    """
    int HB_QB
    int HB_KB
    int HB_VT
    int HB_DC
    void hb_qk_block(const int32_t *qw, const int16_t *kb, int64_t P, int32_t *out,
                     int64_t ldo) noexcept nogil
    void hb_pv_tile(const int16_t *E, int64_t ldE, int64_t jp0, int64_t jp1, const int16_t *Vp,
                    int64_t Dv, int64_t *A) noexcept nogil
    int64_t hb_exp_row_q15_any(const int32_t *S, int64_t n, double c, const double *tab,
                               const int32_t *tab32, int mode, int16_t *E) noexcept nogil

#: True when this module was compiled with OpenMP.
OPENMP = bool(HB_OPENMP)
#: The integer SIMD the compiler was allowed to use ("avx512vnni", "avx2", "scalar").
SIMD = HB_SIMD_NAME.decode("ascii")
#: Query rows per block, keys per score micro-tile, keys per P.V tile, head_dim chunk.
TILES = {"query_rows": HB_QB, "score_keys": HB_KB, "pv_keys": HB_VT, "pv_cols": HB_DC}


cdef inline int64_t _round_up(int64_t n, int64_t m) noexcept nogil:
    return (n + m - 1) // m * m


def scratch_bytes(int64_t lq, int64_t lk, int64_t d, int n_threads):
    """Bytes ``attention`` allocates beyond its inputs and output (its own accounting).

    Packed K and V of one head (int16) plus, per thread, one block of scores (int32),
    probabilities (int16), int64 accumulators and the packed query rows.
    """
    cdef int64_t P = (d + 1) // 2
    cdef int64_t lk16 = _round_up(lk, HB_KB)
    cdef int64_t lk2 = _round_up(lk, 2)
    cdef int64_t dv = _round_up(d, HB_DC)
    shared = lk16 * P * 2 * 2 + lk2 * dv * 2
    per_thread = HB_QB * (P * 4 + lk16 * 4 + lk2 * 2 + dv * 8 + 8)
    return int(shared + per_thread * max(n_threads, 1))


def attention(const int8_t[:, :, ::1] q, const int8_t[:, :, ::1] k, const int8_t[:, :, ::1] v,
              double c, double v_scale, const double[::1] table, int mode,
              float[:, :, ::1] out, int n_threads):
    """out[h] = softmax(c * q[h] k[h]^T) v[h] * v_scale, in the arithmetic of the module doc.

    q: (H, Lq, D), k and v: (H, Lk, D), out: (H, Lq, D); c is the real value of one score
    unit, (q_scale * k_scale) / sqrt(D); mode 0/1/2: residual none / linear / exact exponent.
    """
    cdef int64_t H = q.shape[0]
    cdef int64_t Lq = q.shape[1]
    cdef int64_t D = q.shape[2]
    cdef int64_t Lk = k.shape[1]
    cdef int64_t P = (D + 1) // 2            # int16 pairs along head_dim
    cdef int64_t nkb = (Lk + HB_KB - 1) // HB_KB
    cdef int64_t lk16 = nkb * HB_KB          # keys padded to the score micro-tile
    cdef int64_t NP = (Lk + 1) // 2          # key pairs for P.V
    cdef int64_t lk2 = NP * 2
    cdef int64_t Dv = _round_up(D, HB_DC)    # head_dim padded to the P.V micro-tile
    cdef int64_t nqb = (Lq + HB_QB - 1) // HB_QB
    cdef int64_t h = 0
    cdef int64_t kb, jp, l, p, d, j, qb, r, i0, nr, t, ti, jp1
    cdef int16_t *Kp
    cdef int16_t *Vp
    cdef int16_t *kdst
    cdef int16_t *vdst
    cdef int32_t *qw = NULL
    cdef int32_t *S = NULL
    cdef int16_t *E = NULL
    cdef int64_t *A = NULL
    cdef int64_t *sums = NULL
    cdef double w
    cdef int32_t lo, hi
    cdef int64_t failed = 0
    cdef int32_t tab32[128]
    hb_table_q15(&table[0], tab32)

    Kp = <int16_t *> malloc(lk16 * P * 2 * sizeof(int16_t))
    Vp = <int16_t *> malloc(lk2 * Dv * sizeof(int16_t))
    if Kp == NULL or Vp == NULL:
        free(Kp)
        free(Vp)
        raise MemoryError("attention_int8: could not allocate the packed K/V buffers")

    # One parallel region for the whole call: per head, the threads pack K and V together
    # (worksharing loops end in a barrier), then share out the query blocks.
    with nogil, parallel(num_threads=n_threads):
        qw = <int32_t *> malloc(HB_QB * P * sizeof(int32_t))
        S = <int32_t *> malloc(HB_QB * lk16 * sizeof(int32_t))
        E = <int16_t *> malloc(HB_QB * lk2 * sizeof(int16_t))
        A = <int64_t *> malloc(HB_QB * Dv * sizeof(int64_t))
        sums = <int64_t *> malloc(HB_QB * sizeof(int64_t))
        for h in range(H):
            # K: pairs along head_dim, HB_KB keys interleaved; V: pairs of keys interleaved
            # per column; padding keys and columns are zero.
            for kb in prange(nkb, schedule="static"):
                kdst = Kp + kb * P * HB_KB * 2
                for p in range(P):
                    for l in range(HB_KB):
                        j = kb * HB_KB + l
                        lo = 0
                        hi = 0
                        if j < Lk:
                            lo = k[h, j, 2 * p]
                            if 2 * p + 1 < D:
                                hi = k[h, j, 2 * p + 1]
                        kdst[(p * HB_KB + l) * 2] = <int16_t> lo
                        kdst[(p * HB_KB + l) * 2 + 1] = <int16_t> hi
            for jp in prange(NP, schedule="static"):
                vdst = Vp + jp * Dv * 2
                for d in range(Dv):
                    lo = 0
                    hi = 0
                    if d < D:
                        lo = v[h, 2 * jp, d]
                        if 2 * jp + 1 < Lk:
                            hi = v[h, 2 * jp + 1, d]
                    vdst[d * 2] = <int16_t> lo
                    vdst[d * 2 + 1] = <int16_t> hi
            for qb in prange(nqb, schedule="static"):
                if qw == NULL or S == NULL or E == NULL or A == NULL or sums == NULL:
                    failed += 1
                    continue
                i0 = qb * HB_QB
                nr = Lq - i0
                if nr > HB_QB:
                    nr = HB_QB
                # query rows as int16 pairs in 32-bit words; missing rows are zero
                for r in range(HB_QB):
                    for p in range(P):
                        lo = 0
                        hi = 0
                        if r < nr:
                            lo = q[h, i0 + r, 2 * p]
                            if 2 * p + 1 < D:
                                hi = q[h, i0 + r, 2 * p + 1]
                        qw[r * P + p] = <int32_t> ((<unsigned int> (lo & 0xffff))
                                                   | (<unsigned int> hi << 16))
                # pass 1: int32 scores of the block
                for kb in range(nkb):
                    hb_qk_block(qw, Kp + kb * P * HB_KB * 2, P, S + kb * HB_KB, lk16)
                # pass 2: Q0.15 probabilities (the padded key of an odd Lk stays 0)
                for r in range(HB_QB):
                    E[r * lk2 + lk2 - 1] = 0
                    if r < nr:
                        sums[r] = hb_exp_row_q15_any(S + r * lk16, Lk, c, &table[0], tab32,
                                                     mode, E + r * lk2)
                    else:
                        memset(E + r * lk2, 0, lk2 * sizeof(int16_t))
                        sums[r] = 1
                # P.V, exact: int32 within a tile, int64 across tiles
                memset(A, 0, HB_QB * Dv * sizeof(int64_t))
                for ti in range((NP + HB_VT // 2 - 1) // (HB_VT // 2)):
                    t = ti * (HB_VT // 2)
                    jp1 = t + (HB_VT // 2)
                    if jp1 > NP:
                        jp1 = NP
                    hb_pv_tile(E, lk2, t, jp1, Vp, Dv, A)
                for r in range(nr):
                    w = v_scale / <double> sums[r]
                    for d in range(D):
                        out[h, i0 + r, d] = <float> (<double> A[r * Dv + d] * w)
        free(qw)
        free(S)
        free(E)
        free(A)
        free(sums)
    free(Kp)
    free(Vp)
    if failed:
        raise MemoryError("attention_int8: could not allocate the per-thread scratch")
