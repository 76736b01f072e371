#include "winograd_products.h"

#include <immintrin.h>
#include <stdlib.h>

#include "block_6x16.h"

#define AVX512_TARGET __attribute__((target("avx512f")))

/* One block of R ≤ 8 rows of U by a 32-column panel of V (stores masked to the panel's columns): 2·R
   accumulators over the whole depth, U's R rows broadcast one value at a time. With R a constant at each call
   site the loops unroll. */
AVX512_TARGET static inline __attribute__((always_inline)) void block(const int R, size_t depth, const float *u,
                                                                     size_t ldu, const float *v, size_t ldv, float *m,
                                                                     size_t ldm, __mmask16 mask0, __mmask16 mask1,
                                                                     int accumulate) {
    __m512 acc[8][2];
    for (int r = 0; r < R; r++) {
        acc[r][0] = accumulate ? _mm512_maskz_loadu_ps(mask0, m + r * ldm) : _mm512_setzero_ps();
        acc[r][1] = accumulate ? _mm512_maskz_loadu_ps(mask1, m + r * ldm + 16) : _mm512_setzero_ps();
    }
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
                                         size_t ldv, float *m, size_t ldm, int accumulate, float *panel) {
    for (size_t j = 0; j < cols; j += 32) {
        size_t w = cols - j < 32 ? cols - j : 32;
        __mmask16 mask0 = (__mmask16)(w >= 16 ? 0xFFFF : (1u << w) - 1);
        __mmask16 mask1 = (__mmask16)(w >= 32 ? 0xFFFF : w > 16 ? (1u << (w - 16)) - 1 : 0);
        // V's 32-column panel copied contiguous (zeros past the last column): read in place, its rows lie
        // `ldv` floats apart, and at 512 or 1,024 columns (2 or 4 KB) they fall into a few cache sets and evict
        // each other. The copy is one pass over the panel; every block of U's rows then reads it from L1/L2.
        for (size_t k = 0; k < depth; k++) {
            const float *b = v + k * ldv + j;
            _mm512_storeu_ps(panel + 32 * k, _mm512_maskz_loadu_ps(mask0, b));
            _mm512_storeu_ps(panel + 32 * k + 16, _mm512_maskz_loadu_ps(mask1, b + 16));
        }
        size_t i = 0;
        if (accumulate) {
            for (; i + 8 <= rows; i += 8) block(8, depth, u + i * depth, depth, panel, 32, m + i * ldm + j, ldm, mask0, mask1, 1);
        } else {
            for (; i + 8 <= rows; i += 8) block(8, depth, u + i * depth, depth, panel, 32, m + i * ldm + j, ldm, mask0, mask1, 0);
        }
        const float *ur = u + i * depth;
        float *mr = m + i * ldm + j;
        switch (rows - i) {
#define TAIL(n) case n: if (accumulate) block(n, depth, ur, depth, panel, 32, mr, ldm, mask0, mask1, 1); \
                        else block(n, depth, ur, depth, panel, 32, mr, ldm, mask0, mask1, 0); break;
        TAIL(7) TAIL(6) TAIL(5) TAIL(4) TAIL(3) TAIL(2) TAIL(1)
#undef TAIL
        default: break;
        }
    }
}

/* AVX2 + FMA (CPUs without AVX-512, such as Zen 2/3): the 6 × 16 block of block_6x16.h over V packed once into
   16-column panels. Loops as in a blocked GEMM: columns in groups of 256 and depth in chunks of 256, so that a
   group's panel slices (256 × 256 floats, 256 KB) stay in L2 while each block of U's 6 rows × 256 depth (6 KB) stays
   in L1 across the group's panels; partial sums are kept in m between depth chunks. */
#define AVX2_TARGET __attribute__((target("avx2,fma")))
#define AVX2_DEPTH_CHUNK 256
#define AVX2_COLUMN_GROUP 256

AVX2_TARGET static void product_avx2(size_t rows, size_t cols, size_t depth, const float *u, const float *v, float *m,
                                     float *panels) {
    size_t panelCount = (cols + 15) / 16;
    // V packed into 16-column panels, each depth × 16 contiguous, zeros past the last column.
    for (size_t p = 0; p < panelCount; p++) {
        size_t j = p * 16, w = cols - j < 16 ? cols - j : 16;
        float *panel = panels + p * 16 * depth;
        for (size_t k = 0; k < depth; k++) {
            const float *b = v + k * cols + j;
            if (w == 16) {
                _mm256_storeu_ps(panel + 16 * k, _mm256_loadu_ps(b));
                _mm256_storeu_ps(panel + 16 * k + 8, _mm256_loadu_ps(b + 8));
            } else {
                for (size_t c = 0; c < 16; c++) panel[16 * k + c] = c < w ? b[c] : 0;
            }
        }
    }
    const __m256i full = _mm256_set1_epi32(-1);
    size_t tail = cols % 16;
    __m256i tail0 = full, tail1 = full;
    if (tail) {
        int lanes[16];
        for (int c = 0; c < 16; c++) lanes[c] = (size_t)c < tail ? -1 : 0;
        tail0 = _mm256_loadu_si256((const __m256i *)lanes);
        tail1 = _mm256_loadu_si256((const __m256i *)(lanes + 8));
    }
    for (size_t g = 0; g < panelCount; g += AVX2_COLUMN_GROUP / 16) {
        size_t groupEnd = panelCount - g < AVX2_COLUMN_GROUP / 16 ? panelCount : g + AVX2_COLUMN_GROUP / 16;
        for (size_t k0 = 0; k0 < depth; k0 += AVX2_DEPTH_CHUNK) {
            size_t kc = depth - k0 < AVX2_DEPTH_CHUNK ? depth - k0 : AVX2_DEPTH_CHUNK;
            for (size_t i0 = 0; i0 < rows; i0 += 6) {
                size_t r = rows - i0 < 6 ? rows - i0 : 6;
                const float *ub = u + i0 * depth + k0;
                for (size_t p = g; p < groupEnd; p++) {
                    const float *panel = panels + p * 16 * depth + 16 * k0;
                    float *mb = m + i0 * cols + p * 16;
                    int masked = tail && p == panelCount - 1;
                    if (k0 == 0) {
                        if (masked) rows_6x16(0, 1, r, kc, ub, depth, panel, mb, cols, tail0, tail1);
                        else rows_6x16(0, 0, r, kc, ub, depth, panel, mb, cols, full, full);
                    } else {
                        if (masked) rows_6x16(1, 1, r, kc, ub, depth, panel, mb, cols, tail0, tail1);
                        else rows_6x16(1, 0, r, kc, ub, depth, panel, mb, cols, full, full);
                    }
                }
            }
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

static int has_avx2_fma(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return cached;
}

int storyloom_winograd_products_available(void) { return has_avx512() ? 2 : has_avx2_fma() ? 1 : 0; }

void storyloom_winograd_product(size_t rows, size_t cols, size_t depth, const float *u, const float *v, float *m) {
    storyloom_winograd_product_with(has_avx512() ? 2 : 1, rows, cols, depth, u, v, m);
}

void storyloom_winograd_product_with(int kernel, size_t rows, size_t cols, size_t depth, const float *u,
                                     const float *v, float *m) {
    if (rows == 0 || cols == 0) return;
    if (depth == 0) {
        for (size_t i = 0; i < rows * cols; i++) m[i] = 0;
        return;
    }
    if (kernel == 2) {
        float *panel = malloc(depth * 32 * sizeof(float));
        if (!panel) abort();
        product_avx512(rows, cols, depth, u, v, cols, m, cols, 0, panel);
        free(panel);
    } else {
        float *panels = malloc((cols + 15) / 16 * 16 * depth * sizeof(float));
        if (!panels) abort();
        product_avx2(rows, cols, depth, u, v, m, panels);
        free(panels);
    }
}

int storyloom_weight_product_available(void) { return has_avx512(); }

void storyloom_weight_product(size_t rows, size_t cols, size_t depth, const float *u, const float *v, size_t ldv,
                              float *m, size_t ldm, int accumulate) {
    if (rows == 0 || cols == 0 || depth == 0) {
        if (!accumulate)
            for (size_t r = 0; r < rows; r++)
                for (size_t c = 0; c < cols; c++) m[r * ldm + c] = 0;
        return;
    }
    float *panel = malloc(depth * 32 * sizeof(float));
    if (!panel) abort();
    product_avx512(rows, cols, depth, u, v, ldv, m, ldm, accumulate, panel);
    free(panel);
}
