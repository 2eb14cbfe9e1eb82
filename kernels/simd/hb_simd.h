/* Runtime SIMD dispatch: one table of kernel entry points per instruction-set level.

   Each level is one translation unit (hb_level_scalar.c, hb_level_avx2.c, hb_level_avx512.c)
   compiled by setup.py with its own flags (none, -mavx2, -mavx512*): the whole build needs no
   -march=native and runs on any x86-64 (or aarch64: scalar only). hb_dispatch.c reads CPUID at
   run time and hands out the table of a level the CPU can execute. Every level computes the
   same bits (docs/kernels.md). */
#ifndef HB_SIMD_H
#define HB_SIMD_H

#include <stdint.h>

#ifdef _OPENMP
#define HB_OPENMP 1
#else
#define HB_OPENMP 0
#endif

#if defined(__GNUC__) && !defined(_WIN32)
#define HB_HIDDEN __attribute__((visibility("hidden")))
#else
#define HB_HIDDEN
#endif

#define HB_LEVEL_SCALAR 0
#define HB_LEVEL_AVX2 1
#define HB_LEVEL_AVX512 2
#define HB_N_LEVELS 3

/* Query rows per attention block (every level), keys per P.V tile:
   256 pairs x 2 x 32767 x 128 < 2^31, so the int32 tile sums cannot overflow. */
#define HB_QB 4
#define HB_VT 512

typedef struct hb_ops {
    const char *name;   /* "scalar", "avx2", "avx512" */
    int level;          /* HB_LEVEL_* */
    int kb;             /* attention: keys per score micro-tile (packing of K) */
    int dc;             /* attention: head_dim columns per P.V micro-tile (padding of V) */
    /* out[i] = e^max(x[i], HB_X_FLUSH), mode 0, 1 or 2 (out may alias x) */
    void (*exp_array)(const double *x, double *out, int64_t n, const double *tab,
                      const int32_t *tab32, int mode);
    /* one softmax row, mode 0 or 1; scratch: n doubles */
    void (*softmax_row)(const int32_t *s, int64_t n, double scale, const double *tab,
                        const int32_t *tab32, const uint16_t *w, int mode, double *scratch,
                        float *out);
    /* attention: scores of HB_QB query rows against kb keys */
    void (*qk_block)(const int32_t *qw, const int16_t *kb, int64_t P, int32_t *out,
                     int64_t ldo);
    /* attention: P.V of HB_QB rows over key pairs [jp0, jp1) */
    void (*pv_tile)(const int16_t *E, int64_t ldE, int64_t jp0, int64_t jp1, const int16_t *Vp,
                    int64_t Dv, int64_t *A);
    /* attention: one score row -> Q0.15 probabilities, mode 0, 1 or 2; returns their sum */
    int64_t (*exp_row_q15)(const int32_t *S, int64_t n, double c, const double *tab,
                           const int32_t *tab32, int mode, int16_t *E);
    /* attention: the same probabilities read from a table of them by distance to the row
       maximum (Etab[K] = 0, Etab padded by one entry); returns their sum, or -1 when the row
       does not fit (max - min >= 2^31): the caller then uses exp_row_q15 */
    int64_t (*q15_from_table)(const int32_t *S, int64_t n, const int16_t *Etab, int64_t K,
                              int16_t *E);
} hb_ops;

/* The highest level this CPU (and its operating system) can execute, HB_LEVEL_*. */
HB_HIDDEN int hb_cpu_level(void);
/* The entry points of a level compiled into this build, or NULL (level not built). */
HB_HIDDEN const hb_ops *hb_ops_for(int level);

/* Peak microbenchmark (hb_peak.c): `iters` steps of independent multiply-add chains of
   `kind` 0 (int16 pairs -> int32, the attention kernel's arithmetic) or 1 (float32) on
   `level`; returns the operations done (2 per multiply-add), 0 when not measurable here. */
HB_HIDDEN int64_t hb_peak(int level, int kind, int64_t iters, int32_t *sink);

#endif /* HB_SIMD_H */
