/* Shared core of the kernels: constants, the scalar table exponent, table helpers.

   The arithmetic is the specification written out in docs/kernels.md and in
   hastily_bench/kernels/reference.py; every operation is an IEEE float64 operation in a fixed
   order, so the NumPy reference reproduces it bit for bit. setup.py compiles every file with
   -ffp-contract=off: a fused multiply-add would round once instead of twice and break that.

   Included by every SIMD level (hb_level_*.c) and by the Cython modules. */
#ifndef HB_COMMON_H
#define HB_COMMON_H

#include <stdint.h>
#include <string.h>
#include <math.h>

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

/* Exponent modes: residual "none", residual "linear", the "exact" exponent. */
#define HB_MODE_NONE 0
#define HB_MODE_LINEAR 1
#define HB_MODE_EXACT 2

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
   tab: 128 doubles, 2^(d/128) (the 16-bit ROM / 2^15 for modes 0 and 1). This is the scalar
   exponent of every level: the SIMD levels use it for their tails. */
HB_INLINE double hb_exp_m(double x, const double *tab, const int mode) {
    const double t = x * HB_LOG2E;
    const double N = floor(t * 128.0);
    const int32_t Ni = (int32_t)N;
    const int32_t n = Ni >> 7;
    const double k = N * 0.0078125;
    double e, r, p;
    e = tab[Ni & 127];
    if (mode == HB_MODE_LINEAR) {
        r = x - k * HB_LN2;
        e = e * (1.0 + r);
    } else if (mode == HB_MODE_EXACT) {
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

/* The Q15 ROM as int32 (tab[d] * 2^15), for the register-resident and gathered lookups. */
static inline void hb_table_q15(const double *tab, int32_t *tab32) {
    int i;
    for (i = 0; i < 128; i++) tab32[i] = (int32_t)(tab[i] * 32768.0);
}

/* The Q15 table as 128 16-bit words, w[d] = T[d] = tab[d] * 2^15. */
static inline void hb_table_w16(const int32_t *tab32, uint16_t *w) {
    int i;
    for (i = 0; i < 128; i++) w[i] = (uint16_t)tab32[i];
}

#endif /* HB_COMMON_H */
