#ifndef STORYLOOM_BLOCK_6X16_H
#define STORYLOOM_BLOCK_6X16_H

/* The AVX2 + FMA register block shared by linear_products.c (prefill products) and winograd_products.c (Winograd
   products on CPUs without AVX-512): m[R, 16] = (accumulate ? m : 0) + a[R, depth] · panel[depth, 16] for R ≤ 6 rows
   of a (row stride lda) against one 16-column panel stored depth × 16 contiguous. 12 accumulators (with the panel's
   two vectors and the broadcast, 15 of the 16 registers, BLIS's Haswell shape); a's rows broadcast one value at a
   time. `masked` limits m's loads and stores to the lanes set in mask0 / mask1 (a panel's last columns). R,
   `accumulate` and `masked` are constants at each call site, so the branches fold away. Each output is one FMA chain
   over k in order whatever R is, so a result does not depend on how rows were grouped into blocks or onto threads. */

#include <immintrin.h>
#include <stddef.h>

#define BLOCK_AVX2_TARGET __attribute__((target("avx2,fma")))

BLOCK_AVX2_TARGET static inline __attribute__((always_inline)) void
block_6x16(const int R, const int accumulate, const int masked, size_t depth, const float *a, size_t lda,
           const float *panel, float *m, size_t ldm, __m256i mask0, __m256i mask1) {
    __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
    c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = _mm256_setzero_ps();
#define BLOCK_LOAD(r, lo, hi)                                                                                          \
    if (R > r) {                                                                                                       \
        if (masked) { lo = _mm256_maskload_ps(m + r * ldm, mask0); hi = _mm256_maskload_ps(m + r * ldm + 8, mask1); }  \
        else { lo = _mm256_loadu_ps(m + r * ldm); hi = _mm256_loadu_ps(m + r * ldm + 8); }                             \
    }
    if (accumulate) {
        BLOCK_LOAD(0, c00, c01) BLOCK_LOAD(1, c10, c11) BLOCK_LOAD(2, c20, c21)
        BLOCK_LOAD(3, c30, c31) BLOCK_LOAD(4, c40, c41) BLOCK_LOAD(5, c50, c51)
    }
#undef BLOCK_LOAD
    const float *a0 = a, *a1 = a + lda, *a2 = a + 2 * lda, *a3 = a + 3 * lda, *a4 = a + 4 * lda, *a5 = a + 5 * lda;
    for (size_t k = 0; k < depth; k++) {
        __m256 b0 = _mm256_loadu_ps(panel + 16 * k), b1 = _mm256_loadu_ps(panel + 16 * k + 8), x;
        if (R > 0) { x = _mm256_broadcast_ss(a0 + k); c00 = _mm256_fmadd_ps(x, b0, c00); c01 = _mm256_fmadd_ps(x, b1, c01); }
        if (R > 1) { x = _mm256_broadcast_ss(a1 + k); c10 = _mm256_fmadd_ps(x, b0, c10); c11 = _mm256_fmadd_ps(x, b1, c11); }
        if (R > 2) { x = _mm256_broadcast_ss(a2 + k); c20 = _mm256_fmadd_ps(x, b0, c20); c21 = _mm256_fmadd_ps(x, b1, c21); }
        if (R > 3) { x = _mm256_broadcast_ss(a3 + k); c30 = _mm256_fmadd_ps(x, b0, c30); c31 = _mm256_fmadd_ps(x, b1, c31); }
        if (R > 4) { x = _mm256_broadcast_ss(a4 + k); c40 = _mm256_fmadd_ps(x, b0, c40); c41 = _mm256_fmadd_ps(x, b1, c41); }
        if (R > 5) { x = _mm256_broadcast_ss(a5 + k); c50 = _mm256_fmadd_ps(x, b0, c50); c51 = _mm256_fmadd_ps(x, b1, c51); }
    }
#define BLOCK_STORE(r, lo, hi)                                                                                         \
    if (R > r) {                                                                                                       \
        if (masked) { _mm256_maskstore_ps(m + r * ldm, mask0, lo); _mm256_maskstore_ps(m + r * ldm + 8, mask1, hi); }  \
        else { _mm256_storeu_ps(m + r * ldm, lo); _mm256_storeu_ps(m + r * ldm + 8, hi); }                             \
    }
    BLOCK_STORE(0, c00, c01) BLOCK_STORE(1, c10, c11) BLOCK_STORE(2, c20, c21)
    BLOCK_STORE(3, c30, c31) BLOCK_STORE(4, c40, c41) BLOCK_STORE(5, c50, c51)
#undef BLOCK_STORE
}

/* Every row of a (`rows`, stride lda) against one panel: blocks of 6 rows, then the remaining 1–5. */
BLOCK_AVX2_TARGET static inline __attribute__((always_inline)) void
rows_6x16(const int accumulate, const int masked, size_t rows, size_t depth, const float *a, size_t lda,
          const float *panel, float *m, size_t ldm, __m256i mask0, __m256i mask1) {
    size_t i = 0;
    for (; i + 6 <= rows; i += 6) block_6x16(6, accumulate, masked, depth, a + i * lda, lda, panel, m + i * ldm, ldm, mask0, mask1);
    const float *ar = a + i * lda;
    float *mr = m + i * ldm;
    switch (rows - i) {
    case 5: block_6x16(5, accumulate, masked, depth, ar, lda, panel, mr, ldm, mask0, mask1); break;
    case 4: block_6x16(4, accumulate, masked, depth, ar, lda, panel, mr, ldm, mask0, mask1); break;
    case 3: block_6x16(3, accumulate, masked, depth, ar, lda, panel, mr, ldm, mask0, mask1); break;
    case 2: block_6x16(2, accumulate, masked, depth, ar, lda, panel, mr, ldm, mask0, mask1); break;
    case 1: block_6x16(1, accumulate, masked, depth, ar, lda, panel, mr, ldm, mask0, mask1); break;
    default: break;
    }
}

#endif
