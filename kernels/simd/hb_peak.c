/* Instruction-level peaks of this machine for the bench command (not a kernel).

   hb_peak(level, kind, iters, sink) runs `iters` steps of independent multiply-add chains in
   registers and returns the operations it did (2 per multiply-add):
     kind 0, "int8": the attention kernel's own arithmetic, int16 x int16 -> int32
       multiply-adds (int8 data widened): vpdpwssd (avx512), vpmaddwd + vpaddd (avx2, the pair
       the kernel issues per 16 multiply-adds), scalar int32 multiply-add (scalar);
     kind 1, "fp32": float32 multiply-adds, the arithmetic of NumPy/PyTorch float32 attention:
       vfmadd231ps zmm (avx512), ymm (avx2; every AVX2 CPU the dispatch accepts has FMA),
       scalar mul + add (scalar).
   The SIMD functions carry target attributes, so this file needs no special flags and the
   CPUID check in hb_dispatch.c decides what may run. Elsewhere than x86 with GCC/Clang,
   levels above scalar return 0 (not measured). */
#include "hb_simd.h"

#define HB_CHAINS 12

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <immintrin.h>
#define HB_PEAK_X86 1

__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
static int64_t hb_peak_i8_avx512(int64_t iters, int32_t *sink) {
    __m512i a[HB_CHAINS], b = _mm512_set1_epi32(0x00030001), c = _mm512_set1_epi32(0x00010002);
    int64_t i;
    int k;
    for (k = 0; k < HB_CHAINS; k++) a[k] = _mm512_set1_epi32(k);
    for (i = 0; i < iters; i++) {
        for (k = 0; k < HB_CHAINS; k++) a[k] = _mm512_dpwssd_epi32(a[k], b, c);
        __asm__ volatile("" : "+v"(b));  /* keep b live: the chains stay dependent */
    }
    for (k = 1; k < HB_CHAINS; k++) a[0] = _mm512_add_epi32(a[0], a[k]);
    *sink = _mm512_reduce_add_epi32(a[0]);
    return iters * HB_CHAINS * 32 * 2;
}

__attribute__((target("avx2")))
static int64_t hb_peak_i8_avx2(int64_t iters, int32_t *sink) {
    __m256i a[HB_CHAINS], b = _mm256_set1_epi32(0x00030001), c = _mm256_set1_epi32(0x00010002);
    int32_t t[8];
    int64_t i;
    int k;
    for (k = 0; k < HB_CHAINS; k++) a[k] = _mm256_set1_epi32(k);
    for (i = 0; i < iters; i++) {
        for (k = 0; k < HB_CHAINS; k++) a[k] = _mm256_add_epi32(_mm256_madd_epi16(a[k], c), b);
        __asm__ volatile("" : "+x"(b));
    }
    for (k = 1; k < HB_CHAINS; k++) a[0] = _mm256_add_epi32(a[0], a[k]);
    _mm256_storeu_si256((__m256i *)t, a[0]);
    *sink = t[0] + t[7];
    return iters * HB_CHAINS * 16 * 2;
}

__attribute__((target("avx512f")))
static int64_t hb_peak_f32_avx512(int64_t iters, int32_t *sink) {
    __m512 a[HB_CHAINS], b = _mm512_set1_ps(0.999f), c = _mm512_set1_ps(1e-3f);
    int64_t i;
    int k;
    for (k = 0; k < HB_CHAINS; k++) a[k] = _mm512_set1_ps((float)k);
    for (i = 0; i < iters; i++) {
        for (k = 0; k < HB_CHAINS; k++) a[k] = _mm512_fmadd_ps(a[k], b, c);
        __asm__ volatile("" : "+v"(b));
    }
    for (k = 1; k < HB_CHAINS; k++) a[0] = _mm512_add_ps(a[0], a[k]);
    *sink = (int32_t)_mm512_reduce_add_ps(a[0]);
    return iters * HB_CHAINS * 16 * 2;
}

__attribute__((target("avx2,fma")))
static int64_t hb_peak_f32_avx2(int64_t iters, int32_t *sink) {
    __m256 a[HB_CHAINS], b = _mm256_set1_ps(0.999f), c = _mm256_set1_ps(1e-3f);
    float t[8];
    int64_t i;
    int k;
    for (k = 0; k < HB_CHAINS; k++) a[k] = _mm256_set1_ps((float)k);
    for (i = 0; i < iters; i++) {
        for (k = 0; k < HB_CHAINS; k++) a[k] = _mm256_fmadd_ps(a[k], b, c);
        __asm__ volatile("" : "+x"(b));
    }
    for (k = 1; k < HB_CHAINS; k++) a[0] = _mm256_add_ps(a[0], a[k]);
    _mm256_storeu_ps(t, a[0]);
    *sink = (int32_t)(t[0] + t[7]);
    return iters * HB_CHAINS * 8 * 2;
}
#endif

#if defined(__GNUC__) && !defined(__clang__)
/* scalar means scalar: no SSE vectorisation across the chains */
#define HB_NOVEC __attribute__((optimize("no-tree-vectorize")))
#else
#define HB_NOVEC
#endif

HB_NOVEC static int64_t hb_peak_i8_scalar(int64_t iters, int32_t *sink) {
    int32_t a[HB_CHAINS], b = 3, c = 2;
    int64_t i;
    int k;
    for (k = 0; k < HB_CHAINS; k++) a[k] = k;
    for (i = 0; i < iters; i++) {
        for (k = 0; k < HB_CHAINS; k++) a[k] = a[k] * c + b;
#if defined(__GNUC__)
        __asm__ volatile("" : "+r"(b));
#endif
    }
    for (k = 1; k < HB_CHAINS; k++) a[0] += a[k];
    *sink = a[0];
    return iters * HB_CHAINS * 2;
}

HB_NOVEC static int64_t hb_peak_f32_scalar(int64_t iters, int32_t *sink) {
    float a[HB_CHAINS], b = 0.999f, c = 1e-3f;
    int64_t i;
    int k;
    for (k = 0; k < HB_CHAINS; k++) a[k] = (float)k;
    for (i = 0; i < iters; i++) {
        for (k = 0; k < HB_CHAINS; k++) a[k] = a[k] * b + c;
#if defined(HB_PEAK_X86)
        __asm__ volatile("" : "+x"(b));
#endif
    }
    for (k = 1; k < HB_CHAINS; k++) a[0] += a[k];
    *sink = (int32_t)a[0];
    return iters * HB_CHAINS * 2;
}

int64_t hb_peak(int level, int kind, int64_t iters, int32_t *sink) {
#if defined(HB_PEAK_X86)
    if (level == HB_LEVEL_AVX512) return kind ? hb_peak_f32_avx512(iters, sink) : hb_peak_i8_avx512(iters, sink);
    if (level == HB_LEVEL_AVX2) return kind ? hb_peak_f32_avx2(iters, sink) : hb_peak_i8_avx2(iters, sink);
#endif
    if (level == HB_LEVEL_SCALAR) return kind ? hb_peak_f32_scalar(iters, sink) : hb_peak_i8_scalar(iters, sink);
    return 0;
}
