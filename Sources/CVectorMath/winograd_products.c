#include "winograd_products.h"

#include <immintrin.h>
#include <stdlib.h>

#define AVX512_TARGET __attribute__((target("avx512f")))

/* One block of R ≤ 8 rows of U by a 32-column panel of V (stores masked to the panel's columns): 2·R
   accumulators over the whole depth, U's R rows broadcast one value at a time. With R a constant at each call
   site the loops unroll. */
AVX512_TARGET static inline __attribute__((always_inline)) void block(const int R, size_t depth, const float *u,
                                                                     size_t ldu, const float *v, size_t ldv, float *m,
                                                                     size_t ldm, __mmask16 mask0, __mmask16 mask1) {
    __m512 acc[8][2];
    for (int r = 0; r < R; r++) { acc[r][0] = _mm512_setzero_ps(); acc[r][1] = _mm512_setzero_ps(); }
    for (size_t k = 0; k < depth; k++) {
        const float *b = v + k * ldv;
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

AVX512_TARGET static void product_avx512(size_t rows, size_t cols, size_t depth, const float *u, const float *v,
                                         float *m, float *panel) {
    for (size_t j = 0; j < cols; j += 32) {
        size_t w = cols - j < 32 ? cols - j : 32;
        __mmask16 mask0 = (__mmask16)(w >= 16 ? 0xFFFF : (1u << w) - 1);
        __mmask16 mask1 = (__mmask16)(w >= 32 ? 0xFFFF : w > 16 ? (1u << (w - 16)) - 1 : 0);
        // V's 32-column panel copied contiguous (zeros past the last column): read in place, its rows lie
        // `cols` floats apart, and at 512 or 1,024 columns (2 or 4 KB) they fall into a few cache sets and evict
        // each other. The copy is one pass over the panel; every block of U's rows then reads it from L1/L2.
        for (size_t k = 0; k < depth; k++) {
            const float *b = v + k * cols + j;
            _mm512_storeu_ps(panel + 32 * k, _mm512_maskz_loadu_ps(mask0, b));
            _mm512_storeu_ps(panel + 32 * k + 16, _mm512_maskz_loadu_ps(mask1, b + 16));
        }
        size_t i = 0;
        for (; i + 8 <= rows; i += 8) block(8, depth, u + i * depth, depth, panel, 32, m + i * cols + j, cols, mask0, mask1);
        const float *ur = u + i * depth;
        float *mr = m + i * cols + j;
        switch (rows - i) {
        case 7: block(7, depth, ur, depth, panel, 32, mr, cols, mask0, mask1); break;
        case 6: block(6, depth, ur, depth, panel, 32, mr, cols, mask0, mask1); break;
        case 5: block(5, depth, ur, depth, panel, 32, mr, cols, mask0, mask1); break;
        case 4: block(4, depth, ur, depth, panel, 32, mr, cols, mask0, mask1); break;
        case 3: block(3, depth, ur, depth, panel, 32, mr, cols, mask0, mask1); break;
        case 2: block(2, depth, ur, depth, panel, 32, mr, cols, mask0, mask1); break;
        case 1: block(1, depth, ur, depth, panel, 32, mr, cols, mask0, mask1); break;
        default: break;
        }
    }
}

static int has_avx512(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512f");
    }
    return cached;
}

int storyloom_winograd_products_available(void) { return has_avx512(); }

void storyloom_winograd_product(size_t rows, size_t cols, size_t depth, const float *u, const float *v, float *m) {
    if (rows == 0 || cols == 0) return;
    float *panel = malloc((depth > 0 ? depth : 1) * 32 * sizeof(float));
    if (!panel) abort();
    product_avx512(rows, cols, depth, u, v, m, panel);
    free(panel);
}
