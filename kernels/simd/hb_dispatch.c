/* Which SIMD level this CPU can run, and the entry points of each level in this build.

   Compiled with the baseline flags of the platform. setup.py defines HB_BUILT_AVX2 and
   HB_BUILT_AVX512 for the levels it compiled (x86-64 with a compiler that accepts their
   flags); elsewhere (aarch64, ...) only the scalar level exists. */
#include "hb_simd.h"

extern HB_HIDDEN const hb_ops hb_ops_scalar;
#if defined(HB_BUILT_AVX2)
extern HB_HIDDEN const hb_ops hb_ops_avx2;
#endif
#if defined(HB_BUILT_AVX512)
extern HB_HIDDEN const hb_ops hb_ops_avx512;
#endif

#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64) || defined(_M_IX86)
#define HB_X86 1
#if defined(_MSC_VER)
#include <intrin.h>
static void hb_cpuid(int leaf, int sub, unsigned r[4]) {
    int v[4];
    __cpuidex(v, leaf, sub);
    r[0] = (unsigned)v[0]; r[1] = (unsigned)v[1]; r[2] = (unsigned)v[2]; r[3] = (unsigned)v[3];
}
static unsigned long long hb_xgetbv(void) { return _xgetbv(0); }
#else
#include <cpuid.h>
static void hb_cpuid(int leaf, int sub, unsigned r[4]) {
    r[0] = r[1] = r[2] = r[3] = 0;
    __cpuid_count((unsigned)leaf, (unsigned)sub, r[0], r[1], r[2], r[3]);
}
static unsigned long long hb_xgetbv(void) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}
#endif
#endif

int hb_cpu_level(void) {
#if defined(HB_X86)
    unsigned r1[4], r7[4], r0[4];
    unsigned long long xcr0;
    int avx2, avx512;
    hb_cpuid(0, 0, r0);
    if (r0[0] < 7) return HB_LEVEL_SCALAR;
    hb_cpuid(1, 0, r1);
    /* OSXSAVE (ECX bit 27) and AVX (bit 28): the OS saves the ymm registers? */
    if (!((r1[2] >> 27) & 1) || !((r1[2] >> 28) & 1)) return HB_LEVEL_SCALAR;
    xcr0 = hb_xgetbv();
    if ((xcr0 & 0x6) != 0x6) return HB_LEVEL_SCALAR;
    hb_cpuid(7, 0, r7);
    avx2 = ((r7[1] >> 5) & 1)                                   /* EBX bit 5 */
           && ((r1[2] >> 12) & 1);   /* FMA: every AVX2 CPU has it; the fp32 peak uses it */
    avx512 = ((r7[1] >> 16) & 1) && ((r7[1] >> 17) & 1)         /* F, DQ */
             && ((r7[1] >> 30) & 1) && ((r7[1] >> 31) & 1)      /* BW, VL */
             && ((r7[2] >> 11) & 1)                             /* ECX: VNNI */
             && (xcr0 & 0xe6) == 0xe6;                          /* opmask, zmm state */
    if (avx2 && avx512) return HB_LEVEL_AVX512;
    if (avx2) return HB_LEVEL_AVX2;
#endif
    return HB_LEVEL_SCALAR;
}

const hb_ops *hb_ops_for(int level) {
    switch (level) {
    case HB_LEVEL_SCALAR:
        return &hb_ops_scalar;
#if defined(HB_BUILT_AVX2)
    case HB_LEVEL_AVX2:
        return &hb_ops_avx2;
#endif
#if defined(HB_BUILT_AVX512)
    case HB_LEVEL_AVX512:
        return &hb_ops_avx512;
#endif
    default:
        return 0;
    }
}
