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
from libc.math cimport ceil
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memset

from _common cimport (
    HB_OPENMP,
    HB_QB,
    HB_VT,
    check_mode,
    hb_ops,
    hb_peak,
    hb_table_q15,
    ops_or_raise,
)

#: True when this module was compiled with OpenMP.
OPENMP = bool(HB_OPENMP)


def tiles(int level):
    """Query rows per block, keys per score micro-tile, keys per P.V tile and head_dim chunk
    of SIMD ``level`` (the micro-tiles follow the register width)."""
    cdef const hb_ops *ops = ops_or_raise(level)
    return {"query_rows": HB_QB, "score_keys": ops.kb, "pv_keys": HB_VT, "pv_cols": ops.dc}


def peak_ops(int level, int kind, int64_t iters, int n_threads):
    """Run the peak microbenchmark (``kernels/simd/hb_peak.c``) once on each of ``n_threads``
    threads: ``iters`` steps of independent multiply-add chains, kind 0 int16 pairs -> int32
    (the arithmetic of ``attention``), kind 1 float32. Returns the operations done in all
    (2 per multiply-add); 0 when this level cannot be measured here. Time it from Python."""
    ops_or_raise(level)
    if kind not in (0, 1):
        raise ValueError(f"kind: expected 0 (int8) or 1 (fp32), got {kind}")
    if n_threads < 1 or iters < 1:
        raise ValueError(f"n_threads, iters: expected >= 1, got {n_threads}, {iters}")
    cdef int64_t total = 0
    cdef int t
    cdef int32_t *sinks = <int32_t *> malloc(n_threads * sizeof(int32_t))
    if sinks == NULL:
        raise MemoryError("peak_ops: could not allocate")
    with nogil, parallel(num_threads=n_threads):
        for t in prange(n_threads, schedule="static", chunksize=1):
            total += hb_peak(level, kind, iters, &sinks[t])
    free(sinks)
    return int(total)


cdef enum:
    # Largest table of probabilities by distance to the row maximum (int16 entries): 256 KiB.
    Q15_TABLE_MAX = 131072


cdef inline int64_t _round_up(int64_t n, int64_t m) noexcept nogil:
    return (n + m - 1) // m * m


def scratch_bytes(int64_t lq, int64_t lk, int64_t d, int n_threads, int level):
    """Bytes ``attention`` allocates beyond its inputs and output (its own accounting).

    Packed K and V of one head (int16) plus, per thread, one block of scores (int32),
    probabilities (int16), int64 accumulators and the packed query rows.
    """
    cdef const hb_ops *ops = ops_or_raise(level)
    cdef int64_t HB_KB = ops.kb
    cdef int64_t HB_DC = ops.dc
    cdef int64_t P = (d + 1) // 2
    cdef int64_t lk16 = _round_up(lk, HB_KB)
    cdef int64_t lk2 = _round_up(lk, 2)
    cdef int64_t dv = _round_up(d, HB_DC)
    # packed K and V, and at most the probability table (with its ramp, while it is built)
    shared = lk16 * P * 2 * 2 + lk2 * dv * 2 + (Q15_TABLE_MAX + 2) * 2 + Q15_TABLE_MAX * 4
    per_thread = HB_QB * (P * 4 + lk16 * 4 + lk2 * 2 + dv * 8 + 8)
    return int(shared + per_thread * max(n_threads, 1))


def attention(const int8_t[:, :, ::1] q, const int8_t[:, :, ::1] k, const int8_t[:, :, ::1] v,
              double c, double v_scale, const double[::1] table, int mode,
              float[:, :, ::1] out, int n_threads, int level):
    """out[h] = softmax(c * q[h] k[h]^T) v[h] * v_scale, in the arithmetic of the module doc.

    q: (H, Lq, D), k and v: (H, Lk, D), out: (H, Lq, D); c is the real value of one score
    unit, (q_scale * k_scale) / sqrt(D); mode 0/1/2: residual none / linear / exact exponent;
    level: the SIMD level (its micro-tiles HB_KB x HB_DC set the packing of K and V).
    """
    cdef const hb_ops *ops = ops_or_raise(level)
    check_mode(mode, 2)
    cdef int64_t HB_KB = ops.kb
    cdef int64_t HB_DC = ops.dc
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
    cdef int16_t *Etab = NULL
    cdef int32_t *ramp = NULL
    cdef int64_t K = 0
    cdef int64_t row_sum
    hb_table_q15(&table[0], tab32)

    # Probabilities by distance to the row maximum, delta = max S - S: E depends on delta
    # only, and is 0 once c * delta >= 11.2 (e^-11.2 * 2^15 < 0.46 even with the table's
    # 0.6 % error), so Etab[delta] for delta < K = ceil(11.3 / c) and Etab[K] = 0 give every
    # probability. Etab comes from ops.exp_row_q15 itself on the row 0, -1, ..., -(K-1): the
    # same bits. Used when the table is small and the call has many more scores than entries.
    if c * Q15_TABLE_MAX > 11.3:
        K = <int64_t> ceil(11.3 / c)
    if K < 1 or K > Q15_TABLE_MAX or H * Lq * Lk < 8 * K:
        K = 0
    if K:
        Etab = <int16_t *> malloc((K + 2) * sizeof(int16_t))
        ramp = <int32_t *> malloc(K * sizeof(int32_t))
        if Etab == NULL or ramp == NULL:
            free(Etab)
            free(ramp)
            raise MemoryError("attention_int8: could not allocate the probability table")
        for j in range(K):
            ramp[j] = <int32_t> -j
        ops.exp_row_q15(ramp, K, c, &table[0], tab32, mode, Etab)
        Etab[K] = 0
        Etab[K + 1] = 0
        free(ramp)

    Kp = <int16_t *> malloc(lk16 * P * 2 * sizeof(int16_t))
    Vp = <int16_t *> malloc(lk2 * Dv * sizeof(int16_t))
    if Kp == NULL or Vp == NULL:
        free(Kp)
        free(Vp)
        free(Etab)
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
                    ops.qk_block(qw, Kp + kb * P * HB_KB * 2, P, S + kb * HB_KB, lk16)
                # pass 2: Q0.15 probabilities (the padded key of an odd Lk stays 0)
                for r in range(HB_QB):
                    E[r * lk2 + lk2 - 1] = 0
                    if r < nr:
                        row_sum = -1
                        if Etab != NULL:
                            row_sum = ops.q15_from_table(S + r * lk16, Lk, Etab, K,
                                                         E + r * lk2)
                        if row_sum < 0:
                            row_sum = ops.exp_row_q15(S + r * lk16, Lk, c, &table[0], tab32,
                                                      mode, E + r * lk2)
                        sums[r] = row_sum
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
                    ops.pv_tile(E, lk2, t, jp1, Vp, Dv, A)
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
    free(Etab)
    if failed:
        raise MemoryError("attention_int8: could not allocate the per-thread scratch")
