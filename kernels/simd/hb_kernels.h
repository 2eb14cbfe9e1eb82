/* The kernels of one SIMD level: the table exponent, the softmax row, the attention pieces.

   Included once by each hb_level_*.c, which defines HB_TARGET (HB_LEVEL_SCALAR, _AVX2 or
   _AVX512) and HB_OPS_NAME (the exported table) and is compiled with that level's flags. The
   code below chooses its branches by HB_TARGET, never by what the compiler happens to allow,
   so a level contains exactly its own instructions. Every branch computes the same bits (the
   specification: docs/kernels.md, hastily_bench/kernels/reference.py); the comments say why
   each rewrite is exact. Everything is static except the one hb_ops table at the end. */
#ifndef HB_TARGET
#error "define HB_TARGET (HB_LEVEL_*) before including hb_kernels.h"
#endif

#include "hb_common.h"
#include "hb_simd.h"

#if HB_TARGET == HB_LEVEL_AVX512
#if !(defined(__AVX512F__) && defined(__AVX512DQ__) && defined(__AVX512BW__) && \
      defined(__AVX512VL__) && defined(__AVX512VNNI__))
#error "the avx512 level needs -mavx512f -mavx512dq -mavx512bw -mavx512vl -mavx512vnni"
#endif
#include <immintrin.h>
#elif HB_TARGET == HB_LEVEL_AVX2
#if !defined(__AVX2__)
#error "the avx2 level needs -mavx2"
#endif
#include <immintrin.h>
#endif

/* ------------------------------------------------------------------------------------------ */
/* The exponent, one implementation per level                                                 */
/* ------------------------------------------------------------------------------------------ */

#if HB_TARGET == HB_LEVEL_AVX512
/* 16 lanes of tab32[d] from 8 registers (4 two-source permutes + 3 blends, no gather). */
HB_INLINE __m512i hb_lookup16(const __m512i *T, __m512i d) {
    __m512i r0 = _mm512_permutex2var_epi32(T[0], d, T[1]);
    __m512i r1 = _mm512_permutex2var_epi32(T[2], d, T[3]);
    __m512i r2 = _mm512_permutex2var_epi32(T[4], d, T[5]);
    __m512i r3 = _mm512_permutex2var_epi32(T[6], d, T[7]);
    const __mmask16 m5 = _mm512_test_epi32_mask(d, _mm512_set1_epi32(32));
    const __mmask16 m6 = _mm512_test_epi32_mask(d, _mm512_set1_epi32(64));
    r0 = _mm512_mask_blend_epi32(m5, r0, r1);
    r2 = _mm512_mask_blend_epi32(m5, r2, r3);
    return _mm512_mask_blend_epi32(m6, r0, r2);
}

HB_INLINE __m512d hb_exp8_tail(__m512d x, __m512d N, __m512d b, __m256i n, const int mode,
                               const int flush) {
    const __m512d k = _mm512_mul_pd(N, _mm512_set1_pd(0.0078125));
    __m512d e = b, r, p;
    __m256i nc;
    if (mode == HB_MODE_LINEAR) {
        r = _mm512_sub_pd(x, _mm512_mul_pd(k, _mm512_set1_pd(HB_LN2)));
        e = _mm512_mul_pd(b, _mm512_add_pd(_mm512_set1_pd(1.0), r));
    } else if (mode == HB_MODE_EXACT) {
        r = _mm512_sub_pd(_mm512_sub_pd(x, _mm512_mul_pd(k, _mm512_set1_pd(HB_LN2_HI))),
                          _mm512_mul_pd(k, _mm512_set1_pd(HB_LN2_LO)));
        p = _mm512_add_pd(_mm512_mul_pd(r, _mm512_set1_pd(HB_C6)), _mm512_set1_pd(HB_C5));
        p = _mm512_add_pd(_mm512_mul_pd(p, r), _mm512_set1_pd(HB_C4));
        p = _mm512_add_pd(_mm512_mul_pd(p, r), _mm512_set1_pd(HB_C3));
        p = _mm512_add_pd(_mm512_mul_pd(p, r), _mm512_set1_pd(HB_C2));
        p = _mm512_add_pd(_mm512_mul_pd(p, r), _mm512_set1_pd(1.0));
        p = _mm512_add_pd(_mm512_mul_pd(p, r), _mm512_set1_pd(1.0));
        e = _mm512_mul_pd(b, p);
    }
    nc = flush ? _mm256_max_epi32(n, _mm256_set1_epi32(-1022)) : n;
    e = _mm512_mul_pd(e, _mm512_castsi512_pd(_mm512_slli_epi64(
        _mm512_add_epi64(_mm512_cvtepi32_epi64(nc), _mm512_set1_epi64(1023)), 52)));
    if (flush)
        e = _mm512_maskz_mov_pd(_mm256_cmpge_epi32_mask(n, _mm256_set1_epi32(-1022)), e);
    return e;
}

/* 16 lanes of hb_exp_m: (x0, x1) -> (*e0, *e1). T: the Q15 ROM in 8 registers (modes 0, 1);
   tab: the float64 table (mode 2, gathered). flush: apply the n < -1022 rule. */
HB_INLINE void hb_exp16(__m512d x0, __m512d x1, const __m512i *T, const double *tab,
                        const int mode, const int flush, __m512d *e0, __m512d *e1) {
    const __m512d l2e = _mm512_set1_pd(HB_LOG2E), s128 = _mm512_set1_pd(128.0);
    const __m512d N0 = _mm512_roundscale_pd(_mm512_mul_pd(_mm512_mul_pd(x0, l2e), s128),
                                            _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    const __m512d N1 = _mm512_roundscale_pd(_mm512_mul_pd(_mm512_mul_pd(x1, l2e), s128),
                                            _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    const __m256i I0 = _mm512_cvttpd_epi32(N0), I1 = _mm512_cvttpd_epi32(N1);
    const __m256i m127 = _mm256_set1_epi32(127);
    __m512d b0, b1;
    if (mode == HB_MODE_EXACT) {
        b0 = _mm512_i32gather_pd(_mm256_and_si256(I0, m127), tab, 8);
        b1 = _mm512_i32gather_pd(_mm256_and_si256(I1, m127), tab, 8);
    } else {
        const __m512i I = _mm512_inserti64x4(_mm512_castsi256_si512(I0), I1, 1);
        const __m512i L = hb_lookup16(T, _mm512_and_si512(I, _mm512_set1_epi32(127)));
        const __m512d inv = _mm512_set1_pd(1.0 / 32768.0);
        b0 = _mm512_mul_pd(_mm512_cvtepi32_pd(_mm512_castsi512_si256(L)), inv);
        b1 = _mm512_mul_pd(_mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(L, 1)), inv);
    }
    *e0 = hb_exp8_tail(x0, N0, b0, _mm256_srai_epi32(I0, 7), mode, flush);
    *e1 = hb_exp8_tail(x1, N1, b1, _mm256_srai_epi32(I1, 7), mode, flush);
}

static inline void hb_table_regs(const int32_t *tab32, __m512i *T) {
    int i;
    for (i = 0; i < 8; i++) T[i] = _mm512_loadu_si512((const void *)(tab32 + 16 * i));
}

/* The words in four registers of 32, the operands of hb_lut16. */
static inline void hb_w16_regs(const uint16_t *w, __m512i *T) {
    int i;
    for (i = 0; i < 4; i++) T[i] = _mm512_loadu_si512((const void *)(w + 32 * i));
}

/* 16 lanes of the table exponent before its power of two, for the table modes 0 and 1:
   N = floor(x * (LOG2E * 128)), y = T[N & 127] (times 1 + r in mode 1, r = x - k ln2),
   k = N / 128, so that vscalefpd(y, k) = 2^15 e with floor(k) = n. Each rewrite of the
   specification is exact while x is in [HB_X_CLAMP, 0] (no overflow, no subnormal):
   scaling by 2^7 commutes with rounding, and applying 2^n by vscalefpd is exact.
   vpermt2w reads the low 6 bits of each index word; bit 6 picks the register pair, so
   N needs no masking. */
HB_INLINE void hb_lut16(const __m512d x0, const __m512d x1, const int mode,
                        const __m512i T0, const __m512i T1, const __m512i T2,
                        const __m512i T3, __m512d *y0, __m512d *y1, __m512d *k0,
                        __m512d *k1) {
    const __m512d l2e128 = _mm512_set1_pd(HB_LOG2E * 128.0);
    const __m512d inv128 = _mm512_set1_pd(0.0078125);
    const __m512d N0 = _mm512_roundscale_pd(_mm512_mul_pd(x0, l2e128),
                                            _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    const __m512d N1 = _mm512_roundscale_pd(_mm512_mul_pd(x1, l2e128),
                                            _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    const __m512i I = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvttpd_epi32(N0)),
                                         _mm512_cvttpd_epi32(N1), 1);
    const __mmask16 m6 = _mm512_test_epi32_mask(I, _mm512_set1_epi32(64));
    const __m512i L = _mm512_mask_blend_epi32(m6,
        _mm512_maskz_permutex2var_epi16(0x55555555u, T0, I, T1),
        _mm512_maskz_permutex2var_epi16(0x55555555u, T2, I, T3));
    *y0 = _mm512_cvtepi32_pd(_mm512_castsi512_si256(L));
    *y1 = _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(L, 1));
    *k0 = _mm512_mul_pd(N0, inv128);
    *k1 = _mm512_mul_pd(N1, inv128);
    if (mode == HB_MODE_LINEAR) {
        const __m512d one = _mm512_set1_pd(1.0), ln2 = _mm512_set1_pd(HB_LN2);
        *y0 = _mm512_mul_pd(*y0, _mm512_add_pd(one, _mm512_sub_pd(x0, _mm512_mul_pd(*k0, ln2))));
        *y1 = _mm512_mul_pd(*y1, _mm512_add_pd(one, _mm512_sub_pd(x1, _mm512_mul_pd(*k1, ln2))));
    }
}

#elif HB_TARGET == HB_LEVEL_AVX2
/* Four lanes of hb_exp_m with a gather from the float64 table. */
HB_INLINE __m256d hb_exp4(__m256d x, const double *tab, const int mode, const int flush) {
    const __m256d N = _mm256_floor_pd(_mm256_mul_pd(
        _mm256_mul_pd(x, _mm256_set1_pd(HB_LOG2E)), _mm256_set1_pd(128.0)));
    const __m128i I = _mm256_cvttpd_epi32(N);
    const __m128i n = _mm_srai_epi32(I, 7);
    const __m256d k = _mm256_mul_pd(N, _mm256_set1_pd(0.0078125));
    __m256d e = _mm256_i32gather_pd(tab, _mm_and_si128(I, _mm_set1_epi32(127)), 8), r, p;
    __m128i nc;
    if (mode == HB_MODE_LINEAR) {
        r = _mm256_sub_pd(x, _mm256_mul_pd(k, _mm256_set1_pd(HB_LN2)));
        e = _mm256_mul_pd(e, _mm256_add_pd(_mm256_set1_pd(1.0), r));
    } else if (mode == HB_MODE_EXACT) {
        r = _mm256_sub_pd(_mm256_sub_pd(x, _mm256_mul_pd(k, _mm256_set1_pd(HB_LN2_HI))),
                          _mm256_mul_pd(k, _mm256_set1_pd(HB_LN2_LO)));
        p = _mm256_add_pd(_mm256_mul_pd(r, _mm256_set1_pd(HB_C6)), _mm256_set1_pd(HB_C5));
        p = _mm256_add_pd(_mm256_mul_pd(p, r), _mm256_set1_pd(HB_C4));
        p = _mm256_add_pd(_mm256_mul_pd(p, r), _mm256_set1_pd(HB_C3));
        p = _mm256_add_pd(_mm256_mul_pd(p, r), _mm256_set1_pd(HB_C2));
        p = _mm256_add_pd(_mm256_mul_pd(p, r), _mm256_set1_pd(1.0));
        p = _mm256_add_pd(_mm256_mul_pd(p, r), _mm256_set1_pd(1.0));
        e = _mm256_mul_pd(e, p);
    }
    nc = flush ? _mm_max_epi32(n, _mm_set1_epi32(-1022)) : n;
    e = _mm256_mul_pd(e, _mm256_castsi256_pd(_mm256_slli_epi64(
        _mm256_add_epi64(_mm256_cvtepi32_epi64(nc), _mm256_set1_epi64x(1023)), 52)));
    if (flush)
        e = _mm256_and_pd(e, _mm256_castsi256_pd(_mm256_cvtepi32_epi64(
            _mm_cmpgt_epi32(n, _mm_set1_epi32(-1023)))));
    return e;
}

/* 8 lanes of y' = 2^15 e for the table modes 0 and 1 and x in [-700, 0] (the fast rows of
   softmax, the clamped rows of attention): the 8-lane form of the AVX-512 hb_lut16.
   N = floor(x * (LOG2E * 128)) equals floor((x * LOG2E) * 128) (scaling by 2^7 commutes
   with rounding; a subnormal x * LOG2E still floors to -1 both ways); one 8-lane gather of the
   int32 ROM T[d] = 2^15 tab[d]; T[d] * (1 + r) rounds to 2^15 times the rounding of
   tab[d] * (1 + r) (both normal); 2^n is applied by adding n to the exponent field, exact
   because y' >= 2^14 and y' 2^n >= 2^-997 are normal. */
HB_INLINE void hb_lut8(const __m256d x0, const __m256d x1, const int32_t *tab32,
                       const int mode, __m256d *e0, __m256d *e1) {
    const __m256d l2e128 = _mm256_set1_pd(HB_LOG2E * 128.0);
    const __m256d N0 = _mm256_floor_pd(_mm256_mul_pd(x0, l2e128));
    const __m256d N1 = _mm256_floor_pd(_mm256_mul_pd(x1, l2e128));
    const __m256i I = _mm256_set_m128i(_mm256_cvttpd_epi32(N1), _mm256_cvttpd_epi32(N0));
    const __m256i L = _mm256_i32gather_epi32((const int *)tab32,
                                             _mm256_and_si256(I, _mm256_set1_epi32(127)), 4);
    const __m256i n = _mm256_srai_epi32(I, 7);
    __m256d y0 = _mm256_cvtepi32_pd(_mm256_castsi256_si128(L));
    __m256d y1 = _mm256_cvtepi32_pd(_mm256_extracti128_si256(L, 1));
    if (mode == HB_MODE_LINEAR) {
        const __m256d one = _mm256_set1_pd(1.0), ln2 = _mm256_set1_pd(HB_LN2);
        const __m256d inv128 = _mm256_set1_pd(0.0078125);
        y0 = _mm256_mul_pd(y0, _mm256_add_pd(one, _mm256_sub_pd(
            x0, _mm256_mul_pd(_mm256_mul_pd(N0, inv128), ln2))));
        y1 = _mm256_mul_pd(y1, _mm256_add_pd(one, _mm256_sub_pd(
            x1, _mm256_mul_pd(_mm256_mul_pd(N1, inv128), ln2))));
    }
    *e0 = _mm256_castsi256_pd(_mm256_add_epi64(_mm256_castpd_si256(y0), _mm256_slli_epi64(
        _mm256_cvtepi32_epi64(_mm256_castsi256_si128(n)), 52)));
    *e1 = _mm256_castsi256_pd(_mm256_add_epi64(_mm256_castpd_si256(y1), _mm256_slli_epi64(
        _mm256_cvtepi32_epi64(_mm256_extracti128_si256(n, 1)), 52)));
}
#endif

/* out[i] = e^max(x[i], HB_X_FLUSH) (out may alias x). */
HB_INLINE void hb_exp_array_m(const double *x, double *out, int64_t n, const double *tab,
                              const int32_t *tab32, const int mode) {
    int64_t i = 0;
#if HB_TARGET == HB_LEVEL_AVX512
    __m512i T[8];
    const __m512d lo = _mm512_set1_pd(HB_X_FLUSH);
    hb_table_regs(tab32, T);
    for (; i + 16 <= n; i += 16) {
        __m512d e0, e1;
        hb_exp16(_mm512_max_pd(_mm512_loadu_pd(x + i), lo),
                 _mm512_max_pd(_mm512_loadu_pd(x + i + 8), lo), T, tab, mode, 1, &e0, &e1);
        _mm512_storeu_pd(out + i, e0);
        _mm512_storeu_pd(out + i + 8, e1);
    }
#elif HB_TARGET == HB_LEVEL_AVX2
    const __m256d lo = _mm256_set1_pd(HB_X_FLUSH);
    (void)tab32;
    for (; i + 4 <= n; i += 4)
        _mm256_storeu_pd(out + i, hb_exp4(_mm256_max_pd(_mm256_loadu_pd(x + i), lo), tab, mode, 1));
#else
    (void)tab32;
#endif
    for (; i < n; i++) {
        double xi = x[i];
        xi = xi < HB_X_FLUSH ? HB_X_FLUSH : xi;
        out[i] = hb_exp_m(xi, tab, mode);
    }
}

/* Modes are checked here, where they are used: an unknown mode computes nothing (the
   Cython caller refuses it before this point). */
static void hb_exp_array(const double *x, double *out, int64_t n, const double *tab,
                         const int32_t *tab32, int mode) {
    if (mode == HB_MODE_NONE) hb_exp_array_m(x, out, n, tab, tab32, HB_MODE_NONE);
    else if (mode == HB_MODE_LINEAR) hb_exp_array_m(x, out, n, tab, tab32, HB_MODE_LINEAR);
    else if (mode == HB_MODE_EXACT) hb_exp_array_m(x, out, n, tab, tab32, HB_MODE_EXACT);
}

/* ------------------------------------------------------------------------------------------ */
/* Softmax rows                                                                               */
/* ------------------------------------------------------------------------------------------ */

/* One softmax row (m: its maximum), operation for operation: exponent into scratch with the
   sum in 8 fixed lanes (element j goes to lane j mod 8, in increasing j: the order the
   reference reproduces), then one reciprocal and a scaled float32 store. */
HB_INLINE void hb_softmax_row(const int32_t *s, int64_t n, int32_t m, double scale,
                              const double *tab, const int32_t *tab32, const int mode,
                              double *scratch, float *out) {
    int64_t j;
    double dm, sum, inv;
    double acc[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
    dm = (double)m;
    j = 0;
#if HB_TARGET == HB_LEVEL_AVX512
    {
        __m512i T[8];
        const __m512d sv = _mm512_set1_pd(scale), dmv = _mm512_set1_pd(dm);
        const __m512d lo = _mm512_set1_pd(HB_X_FLUSH);
        __m512d a = _mm512_setzero_pd();
        hb_table_regs(tab32, T);
        for (; j + 16 <= n; j += 16) {
            const __m512i si = _mm512_loadu_si512((const void *)(s + j));
            __m512d x0 = _mm512_cvtepi32_pd(_mm512_castsi512_si256(si));
            __m512d x1 = _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(si, 1));
            __m512d e0, e1;
            x0 = _mm512_max_pd(_mm512_mul_pd(sv, _mm512_sub_pd(x0, dmv)), lo);
            x1 = _mm512_max_pd(_mm512_mul_pd(sv, _mm512_sub_pd(x1, dmv)), lo);
            hb_exp16(x0, x1, T, tab, mode, 1, &e0, &e1);
            _mm512_storeu_pd(scratch + j, e0);
            _mm512_storeu_pd(scratch + j + 8, e1);
            a = _mm512_add_pd(a, e0);
            a = _mm512_add_pd(a, e1);
        }
        _mm512_storeu_pd(acc, a);
    }
#elif HB_TARGET == HB_LEVEL_AVX2
    {
        const __m256d sv = _mm256_set1_pd(scale), dmv = _mm256_set1_pd(dm);
        const __m256d lo = _mm256_set1_pd(HB_X_FLUSH);
        __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
        (void)tab32;
        for (; j + 8 <= n; j += 8) {
            const __m256i si = _mm256_loadu_si256((const __m256i *)(s + j));
            __m256d x0 = _mm256_cvtepi32_pd(_mm256_castsi256_si128(si));
            __m256d x1 = _mm256_cvtepi32_pd(_mm256_extracti128_si256(si, 1));
            __m256d e0, e1;
            x0 = _mm256_max_pd(_mm256_mul_pd(sv, _mm256_sub_pd(x0, dmv)), lo);
            x1 = _mm256_max_pd(_mm256_mul_pd(sv, _mm256_sub_pd(x1, dmv)), lo);
            e0 = hb_exp4(x0, tab, mode, 1);
            e1 = hb_exp4(x1, tab, mode, 1);
            _mm256_storeu_pd(scratch + j, e0);
            _mm256_storeu_pd(scratch + j + 4, e1);
            a0 = _mm256_add_pd(a0, e0);
            a1 = _mm256_add_pd(a1, e1);
        }
        _mm256_storeu_pd(acc, a0);
        _mm256_storeu_pd(acc + 4, a1);
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

/* Rows whose smallest x = scale * (min s - max s) is >= HB_FAST_X_MIN take a fast path on
   the SIMD levels: no clamp to HB_X_FLUSH is needed (x > -1000), n >= -1011, so every e is
   normal and the n < -1022 rule never applies. The whole row is computed scaled by 2^15:
   e' = 2^15 e exactly (e is normal), so the lane sums are 2^15 times the specification's
   (every partial sum is normal: no rounding changes), 1 / sum' = 2^-15 (1 / sum) exactly, and
   e' * (1 / sum') is the same real product as e * (1 / sum): the same float64, the same
   float32. isub: s - m fits int32, so float64(s - m) = float64(s) - float64(m). */
#define HB_FAST_X_MIN (-700.0)

#if HB_TARGET == HB_LEVEL_AVX512
/* 16 lanes of e' = 2^15 e, lanes outside mk zero; 2^n applied with vscalefpd by
   k = N / 128 (floor(k) = n). */
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

#elif HB_TARGET == HB_LEVEL_AVX2
/* The AVX2 fast row: 8 scores per step into two 4-lane float64 halves (lanes 0-3 and 4-7 of
   the specification's 8 lane sums), exponent by hb_lut8; the last n mod 8 elements by the
   scalar exponent times 2^15 (the same e': hb_exp_m's e is normal here). */
HB_INLINE void hb_softmax_row_fast(const int32_t *s, int64_t n, int32_t m, double scale,
                                   const double *tab, const int32_t *tab32, const int mode,
                                   const int isub, double *scratch, float *out) {
    const __m256i mv = _mm256_set1_epi32(m);
    const double dm = (double)m;
    const __m256d dmv = _mm256_set1_pd(dm), sv = _mm256_set1_pd(scale);
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd(), iv;
    double acc[8], sum, inv;
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        const __m256i si = _mm256_loadu_si256((const __m256i *)(s + j));
        __m256d x0, x1, e0, e1;
        if (isub) {
            const __m256i di = _mm256_sub_epi32(si, mv);
            x0 = _mm256_cvtepi32_pd(_mm256_castsi256_si128(di));
            x1 = _mm256_cvtepi32_pd(_mm256_extracti128_si256(di, 1));
        } else {
            x0 = _mm256_sub_pd(_mm256_cvtepi32_pd(_mm256_castsi256_si128(si)), dmv);
            x1 = _mm256_sub_pd(_mm256_cvtepi32_pd(_mm256_extracti128_si256(si, 1)), dmv);
        }
        hb_lut8(_mm256_mul_pd(sv, x0), _mm256_mul_pd(sv, x1), tab32, mode, &e0, &e1);
        _mm256_storeu_pd(scratch + j, e0);
        _mm256_storeu_pd(scratch + j + 4, e1);
        a0 = _mm256_add_pd(a0, e0);
        a1 = _mm256_add_pd(a1, e1);
    }
    _mm256_storeu_pd(acc, a0);
    _mm256_storeu_pd(acc + 4, a1);
    for (; j < n; j++) {
        const double e = hb_exp_m(scale * ((double)s[j] - dm), tab, mode) * 32768.0;
        scratch[j] = e;
        acc[j & 7] += e;
    }
    sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    inv = 1.0 / sum;
    iv = _mm256_set1_pd(inv);
    for (j = 0; j + 8 <= n; j += 8) {
        const __m128 p0 = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_loadu_pd(scratch + j), iv));
        const __m128 p1 = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_loadu_pd(scratch + j + 4), iv));
        _mm256_storeu_ps(out + j, _mm256_set_m128(p1, p0));
    }
    for (; j < n; j++) out[j] = (float)(scratch[j] * inv);
}
#endif

/* Row maximum and minimum. */
HB_INLINE void hb_row_minmax(const int32_t *s, int64_t n, int32_t *mx, int32_t *mn) {
    int64_t j = 0;
    int32_t hi = s[0], lo = s[0];
#if HB_TARGET == HB_LEVEL_AVX512
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
#elif HB_TARGET == HB_LEVEL_AVX2
    if (n >= 8) {
        __m256i vh = _mm256_loadu_si256((const __m256i *)s), vl = vh;
        __m128i h, l;
        for (j = 8; j + 8 <= n; j += 8) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(s + j));
            vh = _mm256_max_epi32(vh, v);
            vl = _mm256_min_epi32(vl, v);
        }
        h = _mm_max_epi32(_mm256_castsi256_si128(vh), _mm256_extracti128_si256(vh, 1));
        l = _mm_min_epi32(_mm256_castsi256_si128(vl), _mm256_extracti128_si256(vl, 1));
        h = _mm_max_epi32(h, _mm_shuffle_epi32(h, 0x4e));
        l = _mm_min_epi32(l, _mm_shuffle_epi32(l, 0x4e));
        h = _mm_max_epi32(h, _mm_shuffle_epi32(h, 0xb1));
        l = _mm_min_epi32(l, _mm_shuffle_epi32(l, 0xb1));
        hi = _mm_cvtsi128_si32(h);
        lo = _mm_cvtsi128_si32(l);
    }
#endif
    for (; j < n; j++) {
        hi = s[j] > hi ? s[j] : hi;
        lo = s[j] < lo ? s[j] : lo;
    }
    *mx = hi;
    *mn = lo;
}

/* One softmax row, table mode 0 or 1 (any other mode: nothing is written; the Cython caller
   refuses it first). */
static void hb_softmax_row_any(const int32_t *s, int64_t n, double scale, const double *tab,
                               const int32_t *tab32, const uint16_t *w, int mode,
                               double *scratch, float *out) {
    int32_t m, mn;
    if (mode != HB_MODE_NONE && mode != HB_MODE_LINEAR) return;
    hb_row_minmax(s, n, &m, &mn);
#if HB_TARGET == HB_LEVEL_AVX512 || HB_TARGET == HB_LEVEL_AVX2
    if (scale * ((double)mn - (double)m) >= HB_FAST_X_MIN) {
        const int isub = (int64_t)mn - (int64_t)m >= (int64_t)INT32_MIN;
#if HB_TARGET == HB_LEVEL_AVX512
        __m512i T[4];
        hb_w16_regs(w, T);
#define HB_FAST(M, I) hb_softmax_row_fast(s, n, m, scale, T, M, I, scratch, out)
#else
        (void)w;
#define HB_FAST(M, I) hb_softmax_row_fast(s, n, m, scale, tab, tab32, M, I, scratch, out)
#endif
        if (mode == HB_MODE_NONE) {
            if (isub) HB_FAST(HB_MODE_NONE, 1);
            else HB_FAST(HB_MODE_NONE, 0);
        } else {
            if (isub) HB_FAST(HB_MODE_LINEAR, 1);
            else HB_FAST(HB_MODE_LINEAR, 0);
        }
#undef HB_FAST
        return;
    }
#else
    (void)w;
#endif
    if (mode == HB_MODE_NONE) hb_softmax_row(s, n, m, scale, tab, tab32, HB_MODE_NONE, scratch, out);
    else hb_softmax_row(s, n, m, scale, tab, tab32, HB_MODE_LINEAR, scratch, out);
}

/* ------------------------------------------------------------------------------------------ */
/* Attention: int32 scores, Q0.15 probabilities, exact P.V                                    */
/* ------------------------------------------------------------------------------------------ */

#if HB_TARGET == HB_LEVEL_AVX512
/* zmm micro-kernels: 4 rows x 4 zmm = 16 independent accumulators. */
#if defined(__GNUC__) && !defined(__clang__)
/* acc += a . b in place; as an intrinsic in a loop GCC 12 copies the accumulators. */
#define HB_DP(acc, a, b) __asm__("vpdpwssd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b))
#else
#define HB_DP(acc, a, b) acc = _mm512_dpwssd_epi32(acc, a, b)
#endif
#define HB_KB 64    /* keys per score micro-tile */
#define HB_DC 64    /* head_dim columns per P.V micro-tile */
#else
#define HB_KB 16    /* 16 vector registers: 4 rows x 2 vectors */
#define HB_DC 16
#endif
#define HB_NV (HB_KB / 8)   /* int32 vectors per row of a micro-tile */
#define HB_NC (HB_DC / 8)
#define HB_X_CLAMP (-64.0)  /* e^x < 2^-91 below: quantises to 0 either way */

#if HB_TARGET == HB_LEVEL_AVX2
#define HB_MAC(c, a, b) c = _mm256_add_epi32(c, _mm256_madd_epi16(a, b))
#endif

static inline int32_t hb_load_i32(const void *p) { int32_t v; memcpy(&v, p, 4); return v; }

/* Scores of HB_QB query rows against one block of HB_KB keys.
   qw[r * P + p]: the int16 pair (q[2p], q[2p+1]) of row r as one 32-bit word.
   kb: P x HB_KB x 2 int16: for pair p, key l: (k[l][2p], k[l][2p+1]).
   out[r * ldo + l] = sum_d q[r][d] * k[l][d] (exact int32). */
static void hb_qk_block(const int32_t *qw, const int16_t *kb, int64_t P, int32_t *out,
                        int64_t ldo) {
#if HB_TARGET == HB_LEVEL_AVX512
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
#elif HB_TARGET == HB_LEVEL_AVX2
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
#if HB_TARGET == HB_LEVEL_AVX512
    for (c = 0; c < Dv; c += HB_DC) {
        __m512i a00 = _mm512_setzero_si512(), a01 = a00, a02 = a00, a03 = a00;
        __m512i a10 = a00, a11 = a00, a12 = a00, a13 = a00;
        __m512i a20 = a00, a21 = a00, a22 = a00, a23 = a00;
        __m512i a30 = a00, a31 = a00, a32 = a00, a33 = a00;
        const int16_t *e0 = E, *e1 = E + ldE, *e2 = E + 2 * ldE, *e3 = E + 3 * ldE;
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
    }
#else
    int r, i;
    int32_t tmp[HB_QB][HB_DC];
    for (c = 0; c < Dv; c += HB_DC) {
#if HB_TARGET == HB_LEVEL_AVX2
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
#endif
}

/* One score row -> Q0.15 probabilities (unnormalised, max -> 32767); returns their sum.
   E[j] = min(trunc(e^x * 2^15 + 0.5), 32767), x = c * (S[j] - max S). x is raised to
   HB_X_CLAMP first: below it E is 0 with or without the clamp, and 2^n stays normal. */
HB_INLINE int64_t hb_exp_row_q15(const int32_t *S, int64_t n, double c, const double *tab,
                                 const int32_t *tab32, const int mode, int16_t *E) {
    int64_t j = 0, sum = 0;
    int32_t m, mn;
    double dm;
    hb_row_minmax(S, n, &m, &mn);
    dm = (double)m;
    j = 0;
#if HB_TARGET == HB_LEVEL_AVX512
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
#elif HB_TARGET == HB_LEVEL_AVX2
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

#if HB_TARGET == HB_LEVEL_AVX512 || HB_TARGET == HB_LEVEL_AVX2
/* hb_exp_row_q15 for the table modes (0, 1), the same values with fewer operations: the
   exponent of 16 (AVX-512: hb_lut16 and vscalefpd) or 8 (AVX2: hb_lut8) lanes at a time as
   y' = 2^15 e (whose comments say why each rewrite is exact for x in [HB_X_CLAMP, 0]), then
   min(trunc(y' + 0.5), 32767) = trunc(min(y' + 0.5, 32767)) for y' >= 0. */
HB_INLINE int64_t hb_exp_row_q15_fast(const int32_t *S, int64_t n, double c, const double *tab,
                                      const int32_t *tab32, const uint16_t *w, const int mode,
                                      int16_t *E) {
    int64_t j = 0, sum = 0, jc;
    int32_t m, mn;
    double dm;
#if HB_TARGET == HB_LEVEL_AVX512
    __m512i T[4], T0, T1, T2, T3;
    (void)tab32;
    hb_w16_regs(w, T);
    T0 = T[0], T1 = T[1], T2 = T[2], T3 = T[3];
#else
    (void)w;
#endif
    hb_row_minmax(S, n, &m, &mn);
    dm = (double)m;
#if HB_TARGET == HB_LEVEL_AVX512
    {
        const __m512d cv = _mm512_set1_pd(c), dmv = _mm512_set1_pd(dm);
        const __m512d lo = _mm512_set1_pd(HB_X_CLAMP);
        const __m512d half = _mm512_set1_pd(0.5), qmax = _mm512_set1_pd(32767.0);
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
                __m512i q;
                x0 = _mm512_max_pd(_mm512_mul_pd(cv, _mm512_sub_pd(x0, dmv)), lo);
                x1 = _mm512_max_pd(_mm512_mul_pd(cv, _mm512_sub_pd(x1, dmv)), lo);
                hb_lut16(x0, x1, mode, T0, T1, T2, T3, &y0, &y1, &k0, &k1);
                y0 = _mm512_min_pd(_mm512_add_pd(_mm512_scalef_pd(y0, k0), half), qmax);
                y1 = _mm512_min_pd(_mm512_add_pd(_mm512_scalef_pd(y1, k1), half), qmax);
                q = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvttpd_epi32(y0)),
                                       _mm512_cvttpd_epi32(y1), 1);
                acc = _mm512_add_epi32(acc, q);
                _mm256_storeu_si256((__m256i *)(E + j), _mm512_cvtepi32_epi16(q));
            }
            sum += _mm512_reduce_add_epi64(_mm512_add_epi64(
                _mm512_cvtepi32_epi64(_mm512_castsi512_si256(acc)),
                _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(acc, 1))));
        }
    }
#else
    {
        const __m256d cv = _mm256_set1_pd(c), dmv = _mm256_set1_pd(dm);
        const __m256d lo = _mm256_set1_pd(HB_X_CLAMP);
        const __m256d half = _mm256_set1_pd(0.5), qmax = _mm256_set1_pd(32767.0);
        while (j + 8 <= n) {
            /* int32 lane sums: at most 4096 x 32767 per lane before they are flushed */
            __m256i acc = _mm256_setzero_si256();
            int64_t t[4];
            jc = j + 8 * 4096;
            if (jc > n) jc = n;
            for (; j + 8 <= jc; j += 8) {
                const __m256i s = _mm256_loadu_si256((const __m256i *)(S + j));
                __m256d x0 = _mm256_cvtepi32_pd(_mm256_castsi256_si128(s));
                __m256d x1 = _mm256_cvtepi32_pd(_mm256_extracti128_si256(s, 1));
                __m256d y0, y1;
                __m128i q0, q1;
                x0 = _mm256_max_pd(_mm256_mul_pd(cv, _mm256_sub_pd(x0, dmv)), lo);
                x1 = _mm256_max_pd(_mm256_mul_pd(cv, _mm256_sub_pd(x1, dmv)), lo);
                hb_lut8(x0, x1, tab32, mode, &y0, &y1);
                q0 = _mm256_cvttpd_epi32(_mm256_min_pd(_mm256_add_pd(y0, half), qmax));
                q1 = _mm256_cvttpd_epi32(_mm256_min_pd(_mm256_add_pd(y1, half), qmax));
                acc = _mm256_add_epi32(acc, _mm256_set_m128i(q1, q0));
                _mm_storeu_si128((__m128i *)(E + j), _mm_packs_epi32(q0, q1));
            }
            _mm256_storeu_si256((__m256i *)t, _mm256_add_epi64(
                _mm256_cvtepi32_epi64(_mm256_castsi256_si128(acc)),
                _mm256_cvtepi32_epi64(_mm256_extracti128_si256(acc, 1))));
            sum += (t[0] + t[1]) + (t[2] + t[3]);
        }
    }
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
#endif

/* Modes checked where used: an unknown mode writes nothing and returns -1. */
static int64_t hb_exp_row_q15_any(const int32_t *S, int64_t n, double c, const double *tab,
                                  const int32_t *tab32, int mode, int16_t *E) {
#if HB_TARGET == HB_LEVEL_AVX512 || HB_TARGET == HB_LEVEL_AVX2
    uint16_t w[128];
    hb_table_w16(tab32, w);
    if (mode == HB_MODE_NONE) return hb_exp_row_q15_fast(S, n, c, tab, tab32, w, HB_MODE_NONE, E);
    if (mode == HB_MODE_LINEAR) return hb_exp_row_q15_fast(S, n, c, tab, tab32, w, HB_MODE_LINEAR, E);
#else
    if (mode == HB_MODE_NONE) return hb_exp_row_q15(S, n, c, tab, tab32, HB_MODE_NONE, E);
    if (mode == HB_MODE_LINEAR) return hb_exp_row_q15(S, n, c, tab, tab32, HB_MODE_LINEAR, E);
#endif
    if (mode == HB_MODE_EXACT) return hb_exp_row_q15(S, n, c, tab, tab32, HB_MODE_EXACT, E);
    return -1;
}

/* Q0.15 probabilities by table: E[j] = Etab[min(m - S[j], K)], m = max S. The probability of
   a score depends only on its integer distance to the row maximum, delta = m - S (x = c *
   (float64(S) - float64(m)) = c * -float64(delta), both conversions and the difference
   exact), so the caller computes Etab[delta] once per call with exp_row_q15 itself (the same
   bits) for delta < K, where c * K >= 11.3 makes every later E zero. Returns the sum, -1 when
   m - min S does not fit an int32. */
static int64_t hb_q15_from_table(const int32_t *S, int64_t n, const int16_t *Etab, int64_t K,
                                 int16_t *E) {
    int32_t m, mn;
    int64_t j = 0, sum = 0;
    hb_row_minmax(S, n, &m, &mn);
    if ((int64_t)m - (int64_t)mn > (int64_t)INT32_MAX) return -1;
#if HB_TARGET == HB_LEVEL_AVX512
    {
        const __m512i mv = _mm512_set1_epi32(m), kv = _mm512_set1_epi32((int32_t)K);
        const __m512i lo16 = _mm512_set1_epi32(0xffff);
        while (j + 16 <= n) {
            __m512i acc = _mm512_setzero_si512();  /* int32 lane sums, flushed every 4096 */
            int64_t jc = j + 16 * 4096;
            if (jc > n) jc = n;
            for (; j + 16 <= jc; j += 16) {
                const __m512i d = _mm512_min_epu32(
                    _mm512_sub_epi32(mv, _mm512_loadu_si512((const void *)(S + j))), kv);
                /* 32-bit reads at Etab + 2 delta: the low half is the entry */
                const __m512i q = _mm512_and_si512(
                    _mm512_i32gather_epi32(d, (const void *)Etab, 2), lo16);
                acc = _mm512_add_epi32(acc, q);
                _mm256_storeu_si256((__m256i *)(E + j), _mm512_cvtepi32_epi16(q));
            }
            sum += _mm512_reduce_add_epi64(_mm512_add_epi64(
                _mm512_cvtepi32_epi64(_mm512_castsi512_si256(acc)),
                _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(acc, 1))));
        }
    }
#elif HB_TARGET == HB_LEVEL_AVX2
    {
        const __m256i mv = _mm256_set1_epi32(m), kv = _mm256_set1_epi32((int32_t)K);
        const __m256i lo16 = _mm256_set1_epi32(0xffff);
        while (j + 8 <= n) {
            __m256i acc = _mm256_setzero_si256();  /* int32 lane sums, flushed every 4096 */
            int64_t t[4];
            int64_t jc = j + 8 * 4096;
            if (jc > n) jc = n;
            for (; j + 8 <= jc; j += 8) {
                const __m256i d = _mm256_min_epu32(
                    _mm256_sub_epi32(mv, _mm256_loadu_si256((const __m256i *)(S + j))), kv);
                const __m256i q = _mm256_and_si256(
                    _mm256_i32gather_epi32((const int *)Etab, d, 2), lo16);
                acc = _mm256_add_epi32(acc, q);
                _mm_storeu_si128((__m128i *)(E + j), _mm_packs_epi32(
                    _mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1)));
            }
            _mm256_storeu_si256((__m256i *)t, _mm256_add_epi64(
                _mm256_cvtepi32_epi64(_mm256_castsi256_si128(acc)),
                _mm256_cvtepi32_epi64(_mm256_extracti128_si256(acc, 1))));
            sum += (t[0] + t[1]) + (t[2] + t[3]);
        }
    }
#endif
    for (; j < n; j++) {
        const uint32_t d = (uint32_t)m - (uint32_t)S[j];
        const int16_t q = Etab[d < (uint32_t)K ? d : (uint32_t)K];
        E[j] = q;
        sum += q;
    }
    return sum;
}

/* The one exported symbol of this level. */
HB_HIDDEN const hb_ops HB_OPS_NAME = {
    HB_TARGET == HB_LEVEL_AVX512 ? "avx512" : HB_TARGET == HB_LEVEL_AVX2 ? "avx2" : "scalar",
    HB_TARGET, HB_KB, HB_DC,
    hb_exp_array, hb_softmax_row_any, hb_qk_block, hb_pv_tile, hb_exp_row_q15_any,
    hb_q15_from_table,
};
