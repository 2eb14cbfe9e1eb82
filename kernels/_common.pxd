# cython: language_level=3
"""Declarations of the C core in ``kernels/simd/`` (see ``hb_simd.h``): the build facts, the
table helpers, and the per-level tables of kernel entry points chosen at run time.

The arithmetic is the specification written out in ``docs/kernels.md`` and in
``hastily_bench/kernels/reference.py``. ``setup.py`` compiles every level with
``-ffp-contract=off``: a fused multiply-add would round once instead of twice and break it.
"""

from libc.stdint cimport int16_t, int32_t, int64_t, uint16_t


cdef extern from "hb_common.h" nogil:
    void hb_table_q15(const double *tab, int32_t *tab32) noexcept
    void hb_table_w16(const int32_t *tab32, uint16_t *w) noexcept


cdef extern from "hb_simd.h" nogil:
    const int HB_OPENMP
    const int HB_LEVEL_SCALAR
    const int HB_LEVEL_AVX2
    const int HB_LEVEL_AVX512
    const int HB_N_LEVELS
    const int HB_QB
    const int HB_VT

    ctypedef struct hb_ops:
        const char *name
        int level
        int kb
        int dc
        void (*exp_array)(const double *x, double *out, int64_t n, const double *tab,
                          const int32_t *tab32, int mode) noexcept nogil
        void (*softmax_row)(const int32_t *s, int64_t n, double scale, const double *tab,
                            const int32_t *tab32, const uint16_t *w, int mode,
                            double *scratch, float *out) noexcept nogil
        void (*qk_block)(const int32_t *qw, const int16_t *kb, int64_t P, int32_t *out,
                         int64_t ldo) noexcept nogil
        void (*pv_tile)(const int16_t *E, int64_t ldE, int64_t jp0, int64_t jp1,
                        const int16_t *Vp, int64_t Dv, int64_t *A) noexcept nogil
        int64_t (*exp_row_q15)(const int32_t *S, int64_t n, double c, const double *tab,
                               const int32_t *tab32, int mode, int16_t *E) noexcept nogil
        int64_t (*q15_from_table)(const int32_t *S, int64_t n, const int16_t *Etab,
                                  int64_t K, int16_t *E) noexcept nogil

    int hb_cpu_level() noexcept
    int64_t hb_peak(int level, int kind, int64_t iters, int32_t *sink) noexcept
    const hb_ops *hb_ops_for(int level) noexcept


cdef inline const hb_ops *ops_or_raise(int level) except NULL:
    """The entry points of SIMD ``level``: ValueError when this build lacks it or when this
    CPU cannot execute it (running it would end in an illegal instruction)."""
    cdef const hb_ops *ops
    if level < 0 or level >= HB_N_LEVELS:
        raise ValueError(f"level: expected 0 (scalar), 1 (avx2) or 2 (avx512), got {level}")
    ops = hb_ops_for(level)
    if ops == NULL:
        raise ValueError(f"level: SIMD level {level} is not compiled into this build")
    if level > hb_cpu_level():
        raise ValueError(f"level: this CPU cannot run the {ops.name.decode()} path")
    return ops


cdef inline int check_mode(int mode, int highest) except -1:
    """Refuse an exponent mode the kernel does not implement (0 none, 1 linear, 2 exact)."""
    if mode < 0 or mode > highest:
        raise ValueError(f"mode: expected 0..{highest}, got {mode}")
    return 0


cdef inline list built_levels():
    """The levels compiled into this build, lowest first."""
    return [lv for lv in range(HB_N_LEVELS) if hb_ops_for(lv) != NULL]
