# cython: language_level=3
"""Shared C core of the kernels: the table exponent and build facts.

The arithmetic here is the specification written out in ``docs/kernels.md`` and in
``hastily_bench/kernels/reference.py``; every operation is an IEEE float64 operation in a
fixed order, so the NumPy reference reproduces it bit for bit. ``setup.py`` compiles with
``-ffp-contract=off``: a fused multiply-add would round once instead of twice and break that.
"""

from libc.stdint cimport int16_t, int32_t, int64_t, uint16_t

cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    #include <math.h>
    #if defined(__AVX2__)
    #include <immintrin.h>
    #endif

    #ifdef _OPENMP
    #define HB_OPENMP 1
    #else
    #define HB_OPENMP 0
    #endif

    #if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    #define HB_SIMD_NAME "avx512vnni"
    #elif defined(__AVX2__)
    #define HB_SIMD_NAME "avx2"
    #else
    #define HB_SIMD_NAME "scalar"
    #endif

    #if defined(__GNUC__)
    #define HB_INLINE static inline __attribute__((always_inline))
    #else
    #define HB_INLINE static inline
    #endif

    /* Same decimal literals as hastily_bench/kernels/reference.py (same doubles). */
    #define HB_LOG2E 1.4426950408889634
    #define HB_LN2 0.6931471805599453
    #define HB_LN2_HI 6.93147180369123816490e-01
    #define HB_LN2_LO 1.90821492927058770002e-10
    #define HB_C2 0.5
    #define HB_C3 0.16666666666666666
    #define HB_C4 0.041666666666666664
    #define HB_C5 0.008333333333333333
    #define HB_C6 0.001388888888888889
    #define HB_X_FLUSH (-1000.0)

    /* 2^n for n in [-1022, 1023], exact, built from the bits (no libm call). */
    HB_INLINE double hb_pow2i(int32_t n) {
        uint64_t b = ((uint64_t)(int64_t)(n + 1023)) << 52;
        double r;
        memcpy(&r, &b, sizeof r);
        return r;
    }

    /* e^x for HB_X_FLUSH <= x <= 0 (see reference._exp_spec, operation for operation):
         t = x * LOG2E; N = floor(t * 128); n = N >> 7; d = N & 127; k = N / 128;
         mode 0: b = tab[d]                      (residual "none")
         mode 1: b = tab[d] * (1 + (x - k*LN2))  (residual "linear")
         mode 2: b = tab[d] * poly6(r), r = (x - k*LN2_HI) - k*LN2_LO  (the "exact" exponent)
         e = b * 2^n, and 0 when n < -1022.
       tab: 128 doubles, 2^(d/128) (the 16-bit ROM / 2^15 for modes 0 and 1). */
    HB_INLINE double hb_exp_m(double x, const double *tab, const int mode) {
        const double t = x * HB_LOG2E;
        const double N = floor(t * 128.0);
        const int32_t Ni = (int32_t)N;
        const int32_t n = Ni >> 7;
        const double k = N * 0.0078125;
        double e, r, p;
        e = tab[Ni & 127];
        if (mode == 1) {
            r = x - k * HB_LN2;
            e = e * (1.0 + r);
        } else if (mode == 2) {
            r = (x - k * HB_LN2_HI) - k * HB_LN2_LO;
            p = r * HB_C6 + HB_C5;
            p = p * r + HB_C4;
            p = p * r + HB_C3;
            p = p * r + HB_C2;
            p = p * r + 1.0;
            p = p * r + 1.0;
            e = e * p;
        }
        e = e * hb_pow2i(n < -1022 ? -1022 : n);
        return n < -1022 ? 0.0 : e;
    }

    /* The Q15 ROM as int32 (tab[d] * 2^15), for the register-resident lookup below. */
    /* The Q15 table as 128 16-bit words, w[d] = T[d] = tab[d] * 2^15. */
    static inline void hb_table_w16(const int32_t *tab32, uint16_t *w) {
        int i;
        for (i = 0; i < 128; i++) w[i] = (uint16_t)tab32[i];
    }

    static inline void hb_table_q15(const double *tab, int32_t *tab32) {
        int i;
        for (i = 0; i < 128; i++) tab32[i] = (int32_t)(tab[i] * 32768.0);
    }

    #if defined(__AVX512F__) && defined(__AVX512DQ__)
    #define HB_HAVE_AVX512 1
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
        if (mode == 1) {
            r = _mm512_sub_pd(x, _mm512_mul_pd(k, _mm512_set1_pd(HB_LN2)));
            e = _mm512_mul_pd(b, _mm512_add_pd(_mm512_set1_pd(1.0), r));
        } else if (mode == 2) {
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

    /* 16 lanes of hb_exp_m: (x0, x1) -> (*e0, *e1). T: the Q15 ROM in 8 registers (modes
       0, 1); tab: the float64 table (mode 2, gathered). flush: apply the n < -1022 rule. */
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
        if (mode == 2) {
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

    #if defined(__AVX512BW__)
    #define HB_HAVE_LUT16 1
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
        if (mode == 1) {
            const __m512d one = _mm512_set1_pd(1.0), ln2 = _mm512_set1_pd(HB_LN2);
            *y0 = _mm512_mul_pd(*y0, _mm512_add_pd(one, _mm512_sub_pd(x0, _mm512_mul_pd(*k0, ln2))));
            *y1 = _mm512_mul_pd(*y1, _mm512_add_pd(one, _mm512_sub_pd(x1, _mm512_mul_pd(*k1, ln2))));
        }
    }
    #endif
    #elif defined(__AVX2__)
    #define HB_HAVE_AVX2_EXP 1
    /* Four lanes of hb_exp_m with a gather from the float64 table. */
    HB_INLINE __m256d hb_exp4(__m256d x, const double *tab, const int mode, const int flush) {
        const __m256d N = _mm256_floor_pd(_mm256_mul_pd(
            _mm256_mul_pd(x, _mm256_set1_pd(HB_LOG2E)), _mm256_set1_pd(128.0)));
        const __m128i I = _mm256_cvttpd_epi32(N);
        const __m128i n = _mm_srai_epi32(I, 7);
        const __m256d k = _mm256_mul_pd(N, _mm256_set1_pd(0.0078125));
        __m256d e = _mm256_i32gather_pd(tab, _mm_and_si128(I, _mm_set1_epi32(127)), 8), r, p;
        __m128i nc;
        if (mode == 1) {
            r = _mm256_sub_pd(x, _mm256_mul_pd(k, _mm256_set1_pd(HB_LN2)));
            e = _mm256_mul_pd(e, _mm256_add_pd(_mm256_set1_pd(1.0), r));
        } else if (mode == 2) {
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
    #endif

    /* out[i] = e^max(x[i], HB_X_FLUSH) (out may alias x). */
    HB_INLINE void hb_exp_array_m(const double *x, double *out, int64_t n, const double *tab,
                                      const int32_t *tab32, const int mode) {
        int64_t i = 0;
    #if defined(HB_HAVE_AVX512)
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
    #elif defined(HB_HAVE_AVX2_EXP)
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

    static inline void hb_exp_array(const double *x, double *out, int64_t n, const double *tab,
                                    const int32_t *tab32, int mode) {
        if (mode == 0) hb_exp_array_m(x, out, n, tab, tab32, 0);
        else if (mode == 1) hb_exp_array_m(x, out, n, tab, tab32, 1);
        else hb_exp_array_m(x, out, n, tab, tab32, 2);
    }
    """
    const int HB_OPENMP
    const char *HB_SIMD_NAME
    double hb_exp_m(double x, const double *tab, int mode) noexcept nogil
    void hb_exp_array(const double *x, double *out, int64_t n, const double *tab,
                      const int32_t *tab32, int mode) noexcept nogil
    void hb_table_q15(const double *tab, int32_t *tab32) noexcept nogil
    void hb_table_w16(const int32_t *tab32, uint16_t *w) noexcept nogil
