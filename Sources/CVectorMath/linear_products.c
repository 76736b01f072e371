#include "linear_products.h"

#include "avx512_block.h"

/* Depth per pass: a block's accumulators are stored and reloaded every 2,048 of depth, so that at OPT-1.3b's
   fc2 (depth 8,192) the two 32-row panels' slices (2 × 256 KB) and the weight rows in flight stay in L2
   (harness, 64 × 8192 → 2048: 190–212 GFLOP/s without the split, 211–214 with it). */
#define DEPTH_CHUNK 2048

int storyloom_linear_products_available(void) { return storyloom_has_avx512(); }

size_t storyloom_linear_panels_size(size_t rows, size_t depth) { return (rows + 31) / 32 * 32 * depth; }

void storyloom_linear_pack(size_t rows, size_t depth, const float *x, float *panels) {
    for (size_t p = 0; p * 32 < rows; p++) {
        float *panel = panels + p * 32 * depth;
        size_t width = rows - p * 32 < 32 ? rows - p * 32 : 32;
        for (size_t c = 0; c < 32; c++) {
            if (c < width) {
                const float *row = x + (p * 32 + c) * depth;
                for (size_t k = 0; k < depth; k++) panel[k * 32 + c] = row[k];
            } else {
                for (size_t k = 0; k < depth; k++) panel[k * 32 + c] = 0;
            }
        }
    }
}

AVX512_TARGET static void product_avx512(size_t features, size_t rows, size_t depth, const float *w,
                                         const float *panels, float *product) {
    for (size_t k0 = 0; k0 < depth; k0 += DEPTH_CHUNK) {
        size_t d = depth - k0 < DEPTH_CHUNK ? depth - k0 : DEPTH_CHUNK;
        // Every panel against the same weight rows: they are read from memory once and from L2 after.
        for (size_t p = 0; p * 32 < rows; p++) {
            size_t width = rows - p * 32 < 32 ? rows - p * 32 : 32;
            __mmask16 mask0 = storyloom_avx512_mask0(width), mask1 = storyloom_avx512_mask1(width);
            const float *panel = panels + p * 32 * depth + k0 * 32;
            float *m = product + p * 32;
            if (k0 == 0) {
                storyloom_avx512_rows(0, features, d, w + k0, depth, panel, m, rows, mask0, mask1);
            } else {
                storyloom_avx512_rows(1, features, d, w + k0, depth, panel, m, rows, mask0, mask1);
            }
        }
    }
}

void storyloom_linear_product(size_t features, size_t rows, size_t depth, const float *w, const float *panels,
                              float *product) {
    if (features == 0 || rows == 0) return;
    if (depth == 0) {
        for (size_t i = 0; i < features * rows; i++) product[i] = 0;
        return;
    }
    product_avx512(features, rows, depth, w, panels, product);
}
