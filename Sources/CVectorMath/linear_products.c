#include "linear_products.h"

#include <immintrin.h>

#include "block_6x16.h"

#define AVX2_TARGET __attribute__((target("avx2,fma")))

/* Depth per pass: a block's accumulators are stored and reloaded every 2,048 of depth, so that at OPT-1.3b's
   fc2 (depth 8,192) the panels' slices and the weight rows in flight stay in L2. */
#define DEPTH_CHUNK 2048

int storyloom_linear_products_available(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return cached;
}

size_t storyloom_linear_product_stride(size_t rows) { return (rows + 15) / 16 * 16; }

size_t storyloom_linear_panels_size(size_t rows, size_t depth) { return storyloom_linear_product_stride(rows) * depth; }

void storyloom_linear_pack(size_t rows, size_t depth, const float *x, float *panels) {
    for (size_t p = 0; p * 16 < rows; p++) {
        float *panel = panels + p * 16 * depth;
        size_t width = rows - p * 16 < 16 ? rows - p * 16 : 16;
        for (size_t c = 0; c < 16; c++) {
            if (c < width) {
                const float *row = x + (p * 16 + c) * depth;
                for (size_t k = 0; k < depth; k++) panel[k * 16 + c] = row[k];
            } else {
                for (size_t k = 0; k < depth; k++) panel[k * 16 + c] = 0;
            }
        }
    }
}

AVX2_TARGET static void product_avx2(size_t features, size_t rows, size_t depth, const float *w, const float *panels,
                                     float *product) {
    size_t ldm = storyloom_linear_product_stride(rows);
    const __m256i all = _mm256_set1_epi32(-1);  // every lane: the panels are padded to 16 rows
    for (size_t k0 = 0; k0 < depth; k0 += DEPTH_CHUNK) {
        size_t d = depth - k0 < DEPTH_CHUNK ? depth - k0 : DEPTH_CHUNK;
        // Every panel against the same weight rows: they are read from memory once and from cache after.
        for (size_t p = 0; p * 16 < rows; p++) {
            const float *panel = panels + p * 16 * depth + k0 * 16;
            if (k0 == 0) {
                rows_6x16(0, 0, features, d, w + k0, depth, panel, product + p * 16, ldm, all, all);
            } else {
                rows_6x16(1, 0, features, d, w + k0, depth, panel, product + p * 16, ldm, all, all);
            }
        }
    }
}

void storyloom_linear_product(size_t features, size_t rows, size_t depth, const float *w, const float *panels,
                              float *product) {
    if (features == 0 || rows == 0) return;
    if (depth == 0) {
        for (size_t i = 0; i < features * storyloom_linear_product_stride(rows); i++) product[i] = 0;
        return;
    }
    product_avx2(features, rows, depth, w, panels, product);
}
