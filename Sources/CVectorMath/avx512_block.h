#ifndef STORYLOOM_AVX512_BLOCK_H
#define STORYLOOM_AVX512_BLOCK_H

/* The register block shared by Storyloom's AVX-512 products (winograd_products.c, linear_products.c). */

#include <immintrin.h>
#include <stddef.h>

#define AVX512_TARGET __attribute__((target("avx512f")))

/* m[R, 32] (+)= u[R, depth] · panel[depth, 32] for R ≤ 8 rows of u (row stride ldu) and a 32-column panel stored
   contiguous: 2·R accumulators over the whole depth, u's rows broadcast one value at a time. Stores (and, with
   `accumulate`, loads) are masked to the panel's real columns. With R and `accumulate` constants at each call
   site the loops unroll. Every output is one FMA chain over k in order, whatever R is, so a result does not
   depend on how rows were grouped into blocks (or blocks onto threads). */
AVX512_TARGET static inline __attribute__((always_inline)) void storyloom_avx512_block(
    const int R, const int accumulate, size_t depth, const float *u, size_t ldu, const float *panel, float *m,
    size_t ldm, __mmask16 mask0, __mmask16 mask1) {
    __m512 acc[8][2];
    for (int r = 0; r < R; r++) {
        if (accumulate) {
            acc[r][0] = _mm512_maskz_loadu_ps(mask0, m + r * ldm);
            acc[r][1] = _mm512_maskz_loadu_ps(mask1, m + r * ldm + 16);
        } else {
            acc[r][0] = _mm512_setzero_ps();
            acc[r][1] = _mm512_setzero_ps();
        }
    }
    for (size_t k = 0; k < depth; k++) {
        const float *b = panel + k * 32;
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
        for (int r = 0; r < R; r++) {
            __m512 a = _mm512_set1_ps(u[r * ldu + k]);
            acc[r][0] = _mm512_fmadd_ps(a, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(a, b1, acc[r][1]);
        }
    }
    for (int r = 0; r < R; r++) {
        _mm512_mask_storeu_ps(m + r * ldm, mask0, acc[r][0]);
        _mm512_mask_storeu_ps(m + r * ldm + 16, mask1, acc[r][1]);
    }
}

/* Blocks of 8 rows, then the remaining 0–7 rows, of u[rows, depth] against one panel. */
AVX512_TARGET static inline __attribute__((always_inline)) void storyloom_avx512_rows(
    const int accumulate, size_t rows, size_t depth, const float *u, size_t ldu, const float *panel, float *m,
    size_t ldm, __mmask16 mask0, __mmask16 mask1) {
    size_t i = 0;
    for (; i + 8 <= rows; i += 8)
        storyloom_avx512_block(8, accumulate, depth, u + i * ldu, ldu, panel, m + i * ldm, ldm, mask0, mask1);
    const float *ur = u + i * ldu;
    float *mr = m + i * ldm;
    switch (rows - i) {
    case 7: storyloom_avx512_block(7, accumulate, depth, ur, ldu, panel, mr, ldm, mask0, mask1); break;
    case 6: storyloom_avx512_block(6, accumulate, depth, ur, ldu, panel, mr, ldm, mask0, mask1); break;
    case 5: storyloom_avx512_block(5, accumulate, depth, ur, ldu, panel, mr, ldm, mask0, mask1); break;
    case 4: storyloom_avx512_block(4, accumulate, depth, ur, ldu, panel, mr, ldm, mask0, mask1); break;
    case 3: storyloom_avx512_block(3, accumulate, depth, ur, ldu, panel, mr, ldm, mask0, mask1); break;
    case 2: storyloom_avx512_block(2, accumulate, depth, ur, ldu, panel, mr, ldm, mask0, mask1); break;
    case 1: storyloom_avx512_block(1, accumulate, depth, ur, ldu, panel, mr, ldm, mask0, mask1); break;
    default: break;
    }
}

/* The masks of a panel with `width` (1–32) real columns. */
static inline __mmask16 storyloom_avx512_mask0(size_t width) {
    return (__mmask16)(width >= 16 ? 0xFFFF : (1u << width) - 1);
}
static inline __mmask16 storyloom_avx512_mask1(size_t width) {
    return (__mmask16)(width >= 32 ? 0xFFFF : width > 16 ? (1u << (width - 16)) - 1 : 0);
}

/* Whether the CPU has AVX-512F (asked once). */
static inline int storyloom_has_avx512(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512f");
    }
    return cached;
}

#endif
