#include "linear_products.h"

#include <immintrin.h>

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

/* m[R, 16] = (start ? m : 0) + w[R, depth] · panel[depth, 16] for R ≤ 6 rows of w (row stride ldw): 12 accumulators
   (with the panel's two vectors and the broadcast, 15 of the 16 registers), w's rows broadcast one value at a time.
   R and `start` are constants at each call site, so the branches fold away. Each output is one FMA chain over k in
   order whatever R is, so a result does not depend on how rows were grouped into blocks or onto threads. */
AVX2_TARGET static inline __attribute__((always_inline)) void block(const int R, const int start, size_t depth,
                                                                    const float *w, size_t ldw, const float *panel,
                                                                    float *m, size_t ldm) {
    __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
    c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = _mm256_setzero_ps();
    if (start) {
        if (R > 0) { c00 = _mm256_loadu_ps(m);           c01 = _mm256_loadu_ps(m + 8); }
        if (R > 1) { c10 = _mm256_loadu_ps(m + ldm);     c11 = _mm256_loadu_ps(m + ldm + 8); }
        if (R > 2) { c20 = _mm256_loadu_ps(m + 2 * ldm); c21 = _mm256_loadu_ps(m + 2 * ldm + 8); }
        if (R > 3) { c30 = _mm256_loadu_ps(m + 3 * ldm); c31 = _mm256_loadu_ps(m + 3 * ldm + 8); }
        if (R > 4) { c40 = _mm256_loadu_ps(m + 4 * ldm); c41 = _mm256_loadu_ps(m + 4 * ldm + 8); }
        if (R > 5) { c50 = _mm256_loadu_ps(m + 5 * ldm); c51 = _mm256_loadu_ps(m + 5 * ldm + 8); }
    }
    const float *w0 = w, *w1 = w + ldw, *w2 = w + 2 * ldw, *w3 = w + 3 * ldw, *w4 = w + 4 * ldw, *w5 = w + 5 * ldw;
    for (size_t k = 0; k < depth; k++) {
        __m256 b0 = _mm256_loadu_ps(panel + 16 * k), b1 = _mm256_loadu_ps(panel + 16 * k + 8), a;
        if (R > 0) { a = _mm256_broadcast_ss(w0 + k); c00 = _mm256_fmadd_ps(a, b0, c00); c01 = _mm256_fmadd_ps(a, b1, c01); }
        if (R > 1) { a = _mm256_broadcast_ss(w1 + k); c10 = _mm256_fmadd_ps(a, b0, c10); c11 = _mm256_fmadd_ps(a, b1, c11); }
        if (R > 2) { a = _mm256_broadcast_ss(w2 + k); c20 = _mm256_fmadd_ps(a, b0, c20); c21 = _mm256_fmadd_ps(a, b1, c21); }
        if (R > 3) { a = _mm256_broadcast_ss(w3 + k); c30 = _mm256_fmadd_ps(a, b0, c30); c31 = _mm256_fmadd_ps(a, b1, c31); }
        if (R > 4) { a = _mm256_broadcast_ss(w4 + k); c40 = _mm256_fmadd_ps(a, b0, c40); c41 = _mm256_fmadd_ps(a, b1, c41); }
        if (R > 5) { a = _mm256_broadcast_ss(w5 + k); c50 = _mm256_fmadd_ps(a, b0, c50); c51 = _mm256_fmadd_ps(a, b1, c51); }
    }
    if (R > 0) { _mm256_storeu_ps(m, c00);           _mm256_storeu_ps(m + 8, c01); }
    if (R > 1) { _mm256_storeu_ps(m + ldm, c10);     _mm256_storeu_ps(m + ldm + 8, c11); }
    if (R > 2) { _mm256_storeu_ps(m + 2 * ldm, c20); _mm256_storeu_ps(m + 2 * ldm + 8, c21); }
    if (R > 3) { _mm256_storeu_ps(m + 3 * ldm, c30); _mm256_storeu_ps(m + 3 * ldm + 8, c31); }
    if (R > 4) { _mm256_storeu_ps(m + 4 * ldm, c40); _mm256_storeu_ps(m + 4 * ldm + 8, c41); }
    if (R > 5) { _mm256_storeu_ps(m + 5 * ldm, c50); _mm256_storeu_ps(m + 5 * ldm + 8, c51); }
}

/* Blocks of 6 rows of w, then the remaining 0–5, against one panel. */
AVX2_TARGET static inline __attribute__((always_inline)) void rows_against(const int start, size_t features, size_t depth,
                                                                           const float *w, size_t ldw,
                                                                           const float *panel, float *m, size_t ldm) {
    size_t i = 0;
    for (; i + 6 <= features; i += 6) block(6, start, depth, w + i * ldw, ldw, panel, m + i * ldm, ldm);
    const float *wr = w + i * ldw;
    float *mr = m + i * ldm;
    switch (features - i) {
    case 5: block(5, start, depth, wr, ldw, panel, mr, ldm); break;
    case 4: block(4, start, depth, wr, ldw, panel, mr, ldm); break;
    case 3: block(3, start, depth, wr, ldw, panel, mr, ldm); break;
    case 2: block(2, start, depth, wr, ldw, panel, mr, ldm); break;
    case 1: block(1, start, depth, wr, ldw, panel, mr, ldm); break;
    default: break;
    }
}

AVX2_TARGET static void product_avx2(size_t features, size_t rows, size_t depth, const float *w, const float *panels,
                                     float *product) {
    size_t ldm = storyloom_linear_product_stride(rows);
    for (size_t k0 = 0; k0 < depth; k0 += DEPTH_CHUNK) {
        size_t d = depth - k0 < DEPTH_CHUNK ? depth - k0 : DEPTH_CHUNK;
        // Every panel against the same weight rows: they are read from memory once and from cache after.
        for (size_t p = 0; p * 16 < rows; p++) {
            const float *panel = panels + p * 16 * depth + k0 * 16;
            if (k0 == 0) {
                rows_against(0, features, d, w + k0, depth, panel, product + p * 16, ldm);
            } else {
                rows_against(1, features, d, w + k0, depth, panel, product + p * 16, ldm);
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
