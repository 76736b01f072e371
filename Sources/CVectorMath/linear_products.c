#include "linear_products.h"

#include <immintrin.h>

#include "block_6x16.h"

#define AVX2_TARGET __attribute__((target("avx2,fma")))
#define AVX512_TARGET __attribute__((target("avx512f")))

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

/* ---- A single row (decode): y = w · x + bias --------------------------------------------------------------------

   Four weight rows at a time share each load of x; two accumulators per row (8 in flight, enough to cover the FMA
   latency while the loads stream). Each row's sum is its own, so a band split between threads changes nothing. */
AVX2_TARGET static inline float gemv_hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2_TARGET static void gemv_avx2(const float *w, size_t rows, size_t cols, const float *x, const float *bias,
                                  float *y) {
    size_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        const float *p0 = w + r * cols, *p1 = p0 + cols, *p2 = p1 + cols, *p3 = p2 + cols;
        __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0, u0 = s0, u1 = s0, u2 = s0, u3 = s0;
        size_t j = 0;
        for (; j + 16 <= cols; j += 16) {
            __m256 xa = _mm256_loadu_ps(x + j), xb = _mm256_loadu_ps(x + j + 8);
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(p0 + j), xa, s0); u0 = _mm256_fmadd_ps(_mm256_loadu_ps(p0 + j + 8), xb, u0);
            s1 = _mm256_fmadd_ps(_mm256_loadu_ps(p1 + j), xa, s1); u1 = _mm256_fmadd_ps(_mm256_loadu_ps(p1 + j + 8), xb, u1);
            s2 = _mm256_fmadd_ps(_mm256_loadu_ps(p2 + j), xa, s2); u2 = _mm256_fmadd_ps(_mm256_loadu_ps(p2 + j + 8), xb, u2);
            s3 = _mm256_fmadd_ps(_mm256_loadu_ps(p3 + j), xa, s3); u3 = _mm256_fmadd_ps(_mm256_loadu_ps(p3 + j + 8), xb, u3);
        }
        if (j + 8 <= cols) {
            __m256 xa = _mm256_loadu_ps(x + j);
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(p0 + j), xa, s0); s1 = _mm256_fmadd_ps(_mm256_loadu_ps(p1 + j), xa, s1);
            s2 = _mm256_fmadd_ps(_mm256_loadu_ps(p2 + j), xa, s2); s3 = _mm256_fmadd_ps(_mm256_loadu_ps(p3 + j), xa, s3);
            j += 8;
        }
        float t0 = gemv_hsum(_mm256_add_ps(s0, u0)), t1 = gemv_hsum(_mm256_add_ps(s1, u1));
        float t2 = gemv_hsum(_mm256_add_ps(s2, u2)), t3 = gemv_hsum(_mm256_add_ps(s3, u3));
        for (; j < cols; j++) { t0 += p0[j] * x[j]; t1 += p1[j] * x[j]; t2 += p2[j] * x[j]; t3 += p3[j] * x[j]; }
        y[r] = (bias ? bias[r] : 0.0f) + t0;
        y[r + 1] = (bias ? bias[r + 1] : 0.0f) + t1;
        y[r + 2] = (bias ? bias[r + 2] : 0.0f) + t2;
        y[r + 3] = (bias ? bias[r + 3] : 0.0f) + t3;
    }
    for (; r < rows; r++) {
        const float *p = w + r * cols;
        __m256 s = _mm256_setzero_ps(), u = s;
        size_t j = 0;
        for (; j + 16 <= cols; j += 16) {
            s = _mm256_fmadd_ps(_mm256_loadu_ps(p + j), _mm256_loadu_ps(x + j), s);
            u = _mm256_fmadd_ps(_mm256_loadu_ps(p + j + 8), _mm256_loadu_ps(x + j + 8), u);
        }
        if (j + 8 <= cols) { s = _mm256_fmadd_ps(_mm256_loadu_ps(p + j), _mm256_loadu_ps(x + j), s); j += 8; }
        float t = gemv_hsum(_mm256_add_ps(s, u));
        for (; j < cols; j++) t += p[j] * x[j];
        y[r] = (bias ? bias[r] : 0.0f) + t;
    }
}

void storyloom_linear_gemv(const float *w, size_t rows, size_t cols, const float *x, const float *bias, float *y) {
    gemv_avx2(w, rows, cols, x, bias, y);
}

/* ---- AVX-512: the blocked product for every other row count ---------------------------------------------------

   BLIS's loop order: the weight in blocks of GEMM_FEATURES features × GEMM_DEPTH depth, packed transposed into
   32-feature panels ([depth][32], 384 KB for a block: L2), then every 12 rows of x packed as [depth][12] (18 KB: L1)
   against each panel in a 12 × 32 register block (24 of the 32 registers). Each block adds into out, which the
   caller's bias (or zeros) seeds, so each output is one FMA chain over the depth in order, whatever the rows,
   features or threads. Packing x's rows also keeps 12 rows 4 KB apart (1,024 inputs) from falling into one L1 set. */
#define GEMM_ROWS 12
#define GEMM_FEATURES 256
#define GEMM_DEPTH 384

int storyloom_linear_gemm_available(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512f");
    }
    return cached;
}

size_t storyloom_linear_gemm_scratch_size(void) { return GEMM_FEATURES * GEMM_DEPTH + GEMM_ROWS * GEMM_DEPTH; }

/* out[R, 32] (stores masked to the panel's features) += a[depth][GEMM_ROWS] · panel[depth][32]. R is a constant at
   each call site, so the loops unroll. */
AVX512_TARGET static inline __attribute__((always_inline)) void
gemm_block(const int R, size_t depth, const float *a, const float *panel, float *out, size_t ldo, __mmask16 mask0,
           __mmask16 mask1) {
    __m512 c[GEMM_ROWS][2];
    for (int r = 0; r < R; r++) {
        c[r][0] = _mm512_maskz_loadu_ps(mask0, out + r * ldo);
        c[r][1] = _mm512_maskz_loadu_ps(mask1, out + r * ldo + 16);
    }
    for (size_t k = 0; k < depth; k++) {
        __m512 b0 = _mm512_loadu_ps(panel + 32 * k), b1 = _mm512_loadu_ps(panel + 32 * k + 16);
        for (int r = 0; r < R; r++) {
            __m512 x = _mm512_set1_ps(a[GEMM_ROWS * k + r]);
            c[r][0] = _mm512_fmadd_ps(x, b0, c[r][0]);
            c[r][1] = _mm512_fmadd_ps(x, b1, c[r][1]);
        }
    }
    for (int r = 0; r < R; r++) {
        _mm512_mask_storeu_ps(out + r * ldo, mask0, c[r][0]);
        _mm512_mask_storeu_ps(out + r * ldo + 16, mask1, c[r][1]);
    }
}

AVX512_TARGET static void gemm_rows(size_t R, size_t depth, const float *a, const float *panel, float *out, size_t ldo,
                                    __mmask16 mask0, __mmask16 mask1) {
    switch (R) {
#define GEMM_CASE(n) case n: gemm_block(n, depth, a, panel, out, ldo, mask0, mask1); break;
    GEMM_CASE(12) GEMM_CASE(11) GEMM_CASE(10) GEMM_CASE(9) GEMM_CASE(8) GEMM_CASE(7)
    GEMM_CASE(6) GEMM_CASE(5) GEMM_CASE(4) GEMM_CASE(3) GEMM_CASE(2) GEMM_CASE(1)
#undef GEMM_CASE
    default: break;
    }
}

/* r[i] (16 values of row i) → r[i] (the i-th value of each row): unpack, shuffle within 128-bit lanes, then
   exchange lanes twice. */
AVX512_TARGET static inline __attribute__((always_inline)) void transpose_16x16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xDD);
        t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xDD);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xDD);
        r[i + 4] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0x88);
        r[i + 12] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0xDD);
    }
}

/* panel[depth][32] from weight rows 0..<n (n ≤ 32, row stride ldw), zeros past n: 16 × 16 tiles transposed in
   registers (a scalar strided copy took a fifth of the time at 257 rows). */
AVX512_TARGET static void gemm_pack_panel(size_t n, size_t depth, const float *w, size_t ldw, float *panel) {
    for (size_t half = 0; half < 2; half++) {
        for (size_t k0 = 0; k0 < depth; k0 += 16) {
            size_t kn = depth - k0 < 16 ? depth - k0 : 16;
            __mmask16 km = (__mmask16)(kn == 16 ? 0xFFFF : (1u << kn) - 1);
            __m512 r[16];
            for (size_t i = 0; i < 16; i++) {
                size_t f = 16 * half + i;
                r[i] = f < n ? _mm512_maskz_loadu_ps(km, w + f * ldw + k0) : _mm512_setzero_ps();
            }
            transpose_16x16(r);
            for (size_t i = 0; i < kn; i++) _mm512_storeu_ps(panel + 32 * (k0 + i) + 16 * half, r[i]);
        }
    }
}

/* panel[depth][32] from a depth-major weight: row k of `w` (stride ldw) holds features 0..<n (n ≤ 32) contiguous,
   so each row of the panel is a masked copy. */
AVX512_TARGET static void gemm_pack_panel_depth_major(size_t n, size_t depth, const float *w, size_t ldw, float *panel) {
    __mmask16 mask0 = (__mmask16)(n >= 16 ? 0xFFFF : (1u << n) - 1);
    __mmask16 mask1 = (__mmask16)(n >= 32 ? 0xFFFF : n > 16 ? (1u << (n - 16)) - 1 : 0);
    for (size_t k = 0; k < depth; k++) {
        _mm512_storeu_ps(panel + 32 * k, _mm512_maskz_loadu_ps(mask0, w + k * ldw));
        _mm512_storeu_ps(panel + 32 * k + 16, _mm512_maskz_loadu_ps(mask1, w + k * ldw + 16));
    }
}

/* rowPack[depth][GEMM_ROWS] from x's rows 0..<R (R ≤ 12, row stride ldx), zeros past R: 16 × 16 tiles transposed in
   registers, as the weight's panels are (a scalar gather of the 12 strided rows cost a tenth of the product). */
AVX512_TARGET static void gemm_pack_rows(size_t R, size_t depth, const float *x, size_t ldx, float *rowPack) {
    const __mmask16 rowsMask = (__mmask16)((1u << GEMM_ROWS) - 1);
    for (size_t k0 = 0; k0 < depth; k0 += 16) {
        size_t kn = depth - k0 < 16 ? depth - k0 : 16;
        __mmask16 km = (__mmask16)(kn == 16 ? 0xFFFF : (1u << kn) - 1);
        __m512 r[16];
        for (size_t i = 0; i < 16; i++) r[i] = i < R ? _mm512_maskz_loadu_ps(km, x + i * ldx + k0) : _mm512_setzero_ps();
        transpose_16x16(r);
        for (size_t j = 0; j < kn; j++) _mm512_mask_storeu_ps(rowPack + GEMM_ROWS * (k0 + j), rowsMask, r[j]);
    }
}

/* The same from a depth-major x: row k of `x` holds the R values contiguous. */
AVX512_TARGET static void gemm_pack_rows_depth_major(size_t R, size_t depth, const float *x, size_t ldx, float *rowPack) {
    const __mmask16 rowsMask = (__mmask16)((1u << GEMM_ROWS) - 1), present = (__mmask16)((1u << R) - 1);
    for (size_t k = 0; k < depth; k++)
        _mm512_mask_storeu_ps(rowPack + GEMM_ROWS * k, rowsMask, _mm512_maskz_loadu_ps(present, x + k * ldx));
}

AVX512_TARGET static void gemm_avx512(size_t rows, size_t depth, const float *x, size_t ldx, int x_depth_major,
                                      size_t features, const float *w, size_t ldw, int w_depth_major, float *out,
                                      size_t ldo, float *scratch) {
    float *rowPack = scratch + GEMM_FEATURES * GEMM_DEPTH;
    for (size_t jc = 0; jc < features; jc += GEMM_FEATURES) {
        size_t nc = features - jc < GEMM_FEATURES ? features - jc : GEMM_FEATURES;
        for (size_t pc = 0; pc < depth; pc += GEMM_DEPTH) {
            size_t kc = depth - pc < GEMM_DEPTH ? depth - pc : GEMM_DEPTH;
            for (size_t p = 0; p * 32 < nc; p++) {
                size_t n = nc - p * 32 < 32 ? nc - p * 32 : 32;
                float *panel = scratch + p * 32 * GEMM_DEPTH;
                if (w_depth_major) gemm_pack_panel_depth_major(n, kc, w + pc * ldw + jc + p * 32, ldw, panel);
                else gemm_pack_panel(n, kc, w + (jc + p * 32) * ldw + pc, ldw, panel);
            }
            for (size_t i = 0; i < rows; i += GEMM_ROWS) {
                size_t R = rows - i < GEMM_ROWS ? rows - i : GEMM_ROWS;
                if (x_depth_major) gemm_pack_rows_depth_major(R, kc, x + pc * ldx + i, ldx, rowPack);
                else gemm_pack_rows(R, kc, x + i * ldx + pc, ldx, rowPack);
                for (size_t p = 0; p * 32 < nc; p++) {
                    size_t width = nc - p * 32 < 32 ? nc - p * 32 : 32;
                    __mmask16 mask0 = (__mmask16)(width >= 16 ? 0xFFFF : (1u << width) - 1);
                    __mmask16 mask1 = (__mmask16)(width >= 32 ? 0xFFFF : width > 16 ? (1u << (width - 16)) - 1 : 0);
                    gemm_rows(R, kc, rowPack, scratch + p * 32 * GEMM_DEPTH, out + i * ldo + jc + p * 32, ldo, mask0,
                              mask1);
                }
            }
        }
    }
}

void storyloom_linear_gemm(size_t rows, size_t depth, const float *x, size_t features, const float *w, float *out,
                           size_t ldo, float *scratch) {
    if (rows == 0 || features == 0 || depth == 0) return;
    gemm_avx512(rows, depth, x, depth, 0, features, w, depth, 0, out, ldo, scratch);
}

void storyloom_gemm_strided(size_t rows, size_t depth, const float *x, size_t ldx, int x_depth_major, size_t features,
                            const float *w, size_t ldw, int w_depth_major, float *out, size_t ldo, float *scratch) {
    if (rows == 0 || features == 0 || depth == 0) return;
    gemm_avx512(rows, depth, x, ldx, x_depth_major, features, w, ldw, w_depth_major, out, ldo, scratch);
}
