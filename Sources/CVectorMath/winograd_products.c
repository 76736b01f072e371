#include "winograd_products.h"

#include "avx512_block.h"

#include <stdlib.h>

AVX512_TARGET static void product_avx512(size_t rows, size_t cols, size_t depth, const float *u, const float *v,
                                         float *m, float *panel) {
    for (size_t j = 0; j < cols; j += 32) {
        size_t w = cols - j < 32 ? cols - j : 32;
        __mmask16 mask0 = storyloom_avx512_mask0(w), mask1 = storyloom_avx512_mask1(w);
        // V's 32-column panel copied contiguous (zeros past the last column): read in place, its rows lie
        // `cols` floats apart, and at 512 or 1,024 columns (2 or 4 KB) they fall into a few cache sets and evict
        // each other. The copy is one pass over the panel; every block of U's rows then reads it from L1/L2.
        for (size_t k = 0; k < depth; k++) {
            const float *b = v + k * cols + j;
            _mm512_storeu_ps(panel + 32 * k, _mm512_maskz_loadu_ps(mask0, b));
            _mm512_storeu_ps(panel + 32 * k + 16, _mm512_maskz_loadu_ps(mask1, b + 16));
        }
        storyloom_avx512_rows(0, rows, depth, u, depth, panel, m + j, cols, mask0, mask1);
    }
}

int storyloom_winograd_products_available(void) { return storyloom_has_avx512(); }

void storyloom_winograd_product(size_t rows, size_t cols, size_t depth, const float *u, const float *v, float *m) {
    if (rows == 0 || cols == 0) return;
    float *panel = malloc((depth > 0 ? depth : 1) * 32 * sizeof(float));
    if (!panel) abort();
    product_avx512(rows, cols, depth, u, v, m, panel);
    free(panel);
}
