#include "attention_kernels.h"
#include "vector_math.h"

#include <math.h>
#include <string.h>

#include "exp_core.h"

size_t storyloom_attention_padded_keys(size_t tk) { return (tk + 15) & ~(size_t)15; }

void storyloom_attention_pack(const float *k, size_t k_stride, const float *v, size_t v_stride,
                              size_t tk, size_t hd, float *kpack, float *vpack) {
    size_t tp = storyloom_attention_padded_keys(tk);
    for (size_t p = 0; p < tp; p += 16) {
        float *panel = kpack + p * hd;
        for (size_t j = 0; j < 16; j++) {
            if (p + j < tk) {
                const float *row = k + (p + j) * k_stride;
                for (size_t d = 0; d < hd; d++) panel[d * 16 + j] = row[d];
            } else {
                for (size_t d = 0; d < hd; d++) panel[d * 16 + j] = 0;
            }
        }
    }
    for (size_t c = 0; c < hd; c += 16) {
        size_t w = hd - c < 16 ? hd - c : 16;
        float *panel = vpack + c * tp;
        for (size_t t = 0; t < tk; t++) memcpy(panel + t * w, v + t * v_stride + c, w * sizeof(float));
        memset(panel + tk * w, 0, (tp - tk) * w * sizeof(float));
    }
}

#ifdef STORYLOOM_X86

#define INLINE __attribute__((always_inline)) static inline

/* S[r][0..16) = scale · Σ_d Q[r][d] · panel[d][0..16) for r < R (R ≤ 6: 12 accumulators, 2 loads and R
   broadcasts per 2R FMAs, the classic 6×16 shape for 16 ymm registers). */
AVX2_TARGET INLINE void qk_tile(const int R, const float *q, size_t qs, const float *panel, size_t hd,
                                __m256 scale, float *s, size_t ss) {
    __m256 c0[6], c1[6];
    for (int r = 0; r < R; r++) { c0[r] = _mm256_setzero_ps(); c1[r] = _mm256_setzero_ps(); }
    for (size_t d = 0; d < hd; d++) {
        __m256 b0 = _mm256_loadu_ps(panel + d * 16), b1 = _mm256_loadu_ps(panel + d * 16 + 8);
        for (int r = 0; r < R; r++) {
            __m256 a = _mm256_broadcast_ss(q + r * qs + d);
            c0[r] = _mm256_fmadd_ps(a, b0, c0[r]);
            c1[r] = _mm256_fmadd_ps(a, b1, c1[r]);
        }
    }
    for (int r = 0; r < R; r++) {
        _mm256_storeu_ps(s + r * ss, _mm256_mul_ps(c0[r], scale));
        _mm256_storeu_ps(s + r * ss + 8, _mm256_mul_ps(c1[r], scale));
    }
}

/* O[r][0..8·W) = row_scale[r] · Σ_t P[r][t] · panel[t][0..8·W) for r < R, W ∈ {1, 2} vectors. */
AVX2_TARGET INLINE void pv_tile(const int R, const int W, const float *p, size_t ps, const float *panel, size_t tp,
                                const float *row_scale, float *o, size_t os) {
    __m256 c0[6], c1[6];
    for (int r = 0; r < R; r++) { c0[r] = _mm256_setzero_ps(); c1[r] = _mm256_setzero_ps(); }
    for (size_t t = 0; t < tp; t++) {
        __m256 b0 = _mm256_loadu_ps(panel + t * 8 * W);
        __m256 b1 = W == 2 ? _mm256_loadu_ps(panel + t * 8 * W + 8) : b0;
        for (int r = 0; r < R; r++) {
            __m256 a = _mm256_broadcast_ss(p + r * ps + t);
            c0[r] = _mm256_fmadd_ps(a, b0, c0[r]);
            if (W == 2) c1[r] = _mm256_fmadd_ps(a, b1, c1[r]);
        }
    }
    for (int r = 0; r < R; r++) {
        __m256 k = _mm256_broadcast_ss(row_scale + r);
        _mm256_storeu_ps(o + r * os, _mm256_mul_ps(c0[r], k));
        if (W == 2) _mm256_storeu_ps(o + r * os + 8, _mm256_mul_ps(c1[r], k));
    }
}

/* One call per row count so each tile is compiled with R (and W) constant and its loops unrolled. */
#define QK_CASE(R) case R: qk_tile(R, q, qs, panel, hd, scale, s, ss); break;
AVX2_TARGET static void qk_rows(int R, const float *q, size_t qs, const float *panel, size_t hd, __m256 scale,
                                float *s, size_t ss) {
    switch (R) { QK_CASE(1) QK_CASE(2) QK_CASE(3) QK_CASE(4) QK_CASE(5) QK_CASE(6) default: break; }
}
#define PV_CASE(R) case R: if (W == 2) pv_tile(R, 2, p, ps, panel, tp, rs, o, os); \
                           else pv_tile(R, 1, p, ps, panel, tp, rs, o, os); break;
AVX2_TARGET static void pv_rows(int R, int W, const float *p, size_t ps, const float *panel, size_t tp,
                                const float *rs, float *o, size_t os) {
    switch (R) { PV_CASE(1) PV_CASE(2) PV_CASE(3) PV_CASE(4) PV_CASE(5) PV_CASE(6) default: break; }
}

AVX2_TARGET static float max_avx2(const float *x, size_t n) {
    __m256 acc = _mm256_set1_ps(-INFINITY);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) acc = _mm256_max_ps(acc, _mm256_loadu_ps(x + i));
    float lanes[8], m = -INFINITY;
    _mm256_storeu_ps(lanes, acc);
    for (int j = 0; j < 8; j++) if (lanes[j] > m) m = lanes[j];
    for (; i < n; i++) if (x[i] > m) m = x[i];
    return m;
}

/* x[i] = exp(x[i] - m) for x[i] ≤ m, returning their sum: vector_math.c's exp (the same `exp8_reduced`)
   without what a softmax never needs: its arguments are ≤ 0, so no overflow branch,
   and one 2^n factor covers n ≥ -126 once they are clamped at -87.33 (below that the result is about
   1.2e-38 instead of 0, nothing beside a denominator ≥ 1). NaN still propagates. Two vectors per iteration
   for the out-of-order core (the softmax took a third of a block at head dimension 40 before these). */
AVX2_TARGET INLINE __m256 softmax_exp8(__m256 x) {
    __m256 shifted;
    __m256 p = exp8_reduced(_mm256_max_ps(_mm256_set1_ps(EXP_LO), x), &shifted); /* NaN in x: max returns x */
    /* shifted's low bits hold n + 0x400000 (n ≥ -126): the exponent field of 2^n is n + 127. */
    __m256i e = _mm256_add_epi32(_mm256_castps_si256(shifted), _mm256_set1_epi32(127 - 0x4B400000));
    return _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32(e, 23)));
}

AVX2_TARGET static float softmax_exp_sum(float *x, size_t n, float m) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), s = _mm256_set1_ps(m);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 e0 = softmax_exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), s));
        __m256 e1 = softmax_exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), s));
        _mm256_storeu_ps(x + i, e0);
        _mm256_storeu_ps(x + i + 8, e1);
        acc0 = _mm256_add_ps(acc0, e0);
        acc1 = _mm256_add_ps(acc1, e1);
    }
    float lanes[8], sum = 0;
    _mm256_storeu_ps(lanes, _mm256_add_ps(acc0, acc1));
    for (int j = 0; j < 8; j++) sum += lanes[j];
    for (; i < n; i++) { x[i] = storyloom_exp(x[i] - m); sum += x[i]; }
    return sum;
}

/* Each row of scores (tk real keys of tp) → its exponentials, and row_scale[r] = 1 / their sum. */
AVX2_TARGET static void softmax_rows(float *scores, size_t rows, size_t tk, size_t tp, float *row_scale) {
    for (size_t r = 0; r < rows; r++) {
        float *row = scores + r * tp;
        float m = max_avx2(row, tk);
        if (m == -INFINITY) {  /* a row of -inf scores: zeros, as softmaxRow gives */
            memset(row, 0, tp * sizeof(float));
            row_scale[r] = 0;
            continue;
        }
        /* The padding keys' scores go to -inf so that the exponentials run whole vectors (no scalar tail:
           77 text tokens would leave 13 of them per row); they come out as ~1e-38 and are zeroed after. */
        for (size_t j = tk; j < tp; j++) row[j] = -INFINITY;
        row_scale[r] = 1 / softmax_exp_sum(row, tp, m);
        memset(row + tk, 0, (tp - tk) * sizeof(float));
    }
}

AVX2_TARGET static void attention_rows_avx2(const float *q, size_t qs, size_t rows, const float *kpack,
                                            const float *vpack, size_t tk, size_t hd, float scale, float *scores,
                                            float *row_scale, float *out, size_t os) {
    size_t tp = storyloom_attention_padded_keys(tk);
    __m256 sc = _mm256_set1_ps(scale);
    /* Panel-outer: each 16-key panel (16·hd floats) stays in L1 while every row group reads it. */
    for (size_t p = 0; p < tp; p += 16)
        for (size_t r0 = 0; r0 < rows; r0 += 6)
            qk_rows((int)(rows - r0 < 6 ? rows - r0 : 6), q + r0 * qs, qs, kpack + p * hd, hd, sc,
                    scores + r0 * tp + p, tp);
    softmax_rows(scores, rows, tk, tp, row_scale);
    for (size_t c = 0; c < hd; c += 16) {
        int w = hd - c < 16 ? 1 : 2;
        for (size_t r0 = 0; r0 < rows; r0 += 6)
            pv_rows((int)(rows - r0 < 6 ? rows - r0 : 6), w, scores + r0 * tp, tp, vpack + c * tp, tp,
                    row_scale + r0, out + r0 * os + c, os);
    }
}

/* ---- AVX-512 (CPUs with 512-bit FMA run these at twice the AVX2 tiles' rate) ---------------------------------

   The same packed layouts, read two 16-key (or 16-column) panels at a time into 12-row register blocks: 24
   accumulators of the 32 zmm registers. The softmax between the products is the AVX2 one. */
#define AVX512_TARGET __attribute__((target("avx512f")))

/* SwiftPM compiles C at -O2, where clang leaves the row loops rolled and the 24 accumulators in memory (the tiles
   then ran at 60–80 GFLOP/s instead of 110–190): unrolled by hand of the compiler, whatever the level. */
#if defined(__clang__)
#define UNROLL _Pragma("clang loop unroll(full)")
#else
#define UNROLL _Pragma("GCC unroll 16")
#endif

/* S[r][0..16·P) = scale · Σ_d Q[r][d] · K panels p (and p + 1 when P = 2) for r < R ≤ 12. */
AVX512_TARGET INLINE void qk_tile512(const int R, const int P, const float *q, size_t qs, const float *panel,
                                     size_t hd, __m512 scale, float *s, size_t ss) {
    __m512 c0[12], c1[12];
    UNROLL for (int r = 0; r < R; r++) { c0[r] = _mm512_setzero_ps(); c1[r] = _mm512_setzero_ps(); }
    for (size_t d = 0; d < hd; d++) {
        __m512 b0 = _mm512_loadu_ps(panel + d * 16);
        __m512 b1 = P == 2 ? _mm512_loadu_ps(panel + 16 * hd + d * 16) : b0;
        UNROLL for (int r = 0; r < R; r++) {
            __m512 a = _mm512_set1_ps(q[r * qs + d]);
            c0[r] = _mm512_fmadd_ps(a, b0, c0[r]);
            if (P == 2) c1[r] = _mm512_fmadd_ps(a, b1, c1[r]);
        }
    }
    UNROLL for (int r = 0; r < R; r++) {
        _mm512_storeu_ps(s + r * ss, _mm512_mul_ps(c0[r], scale));
        if (P == 2) _mm512_storeu_ps(s + r * ss + 16, _mm512_mul_ps(c1[r], scale));
    }
}

/* O[r][columns of panel0 (and panel1 when P = 2)] = row_scale[r] · Σ_t P[r][t] · V panels, for r < R ≤ 12; a panel
   w floats wide (16, or 8 for the last when hd is not a multiple of 16) is read and written under its mask. */
AVX512_TARGET INLINE void pv_tile512(const int R, const int P, const float *p, size_t ps, const float *panel0,
                                     size_t w0, const float *panel1, size_t w1, size_t tp, const float *row_scale,
                                     float *o, size_t os, __mmask16 m0, __mmask16 m1) {
    __m512 c0[12], c1[12];
    UNROLL for (int r = 0; r < R; r++) { c0[r] = _mm512_setzero_ps(); c1[r] = _mm512_setzero_ps(); }
    for (size_t t = 0; t < tp; t++) {
        __m512 b0 = _mm512_maskz_loadu_ps(m0, panel0 + t * w0);
        __m512 b1 = P == 2 ? _mm512_maskz_loadu_ps(m1, panel1 + t * w1) : b0;
        UNROLL for (int r = 0; r < R; r++) {
            __m512 a = _mm512_set1_ps(p[r * ps + t]);
            c0[r] = _mm512_fmadd_ps(a, b0, c0[r]);
            if (P == 2) c1[r] = _mm512_fmadd_ps(a, b1, c1[r]);
        }
    }
    UNROLL for (int r = 0; r < R; r++) {
        __m512 k = _mm512_set1_ps(row_scale[r]);
        _mm512_mask_storeu_ps(o + r * os, m0, _mm512_mul_ps(c0[r], k));
        if (P == 2) _mm512_mask_storeu_ps(o + r * os + 16, m1, _mm512_mul_ps(c1[r], k));
    }
}

#define QK512_CASE(R) case R: if (P == 2) qk_tile512(R, 2, q, qs, panel, hd, scale, s, ss); \
                              else qk_tile512(R, 1, q, qs, panel, hd, scale, s, ss); break;
AVX512_TARGET static void qk_rows512(int R, int P, const float *q, size_t qs, const float *panel, size_t hd,
                                     __m512 scale, float *s, size_t ss) {
    switch (R) {
    QK512_CASE(1) QK512_CASE(2) QK512_CASE(3) QK512_CASE(4) QK512_CASE(5) QK512_CASE(6)
    QK512_CASE(7) QK512_CASE(8) QK512_CASE(9) QK512_CASE(10) QK512_CASE(11) QK512_CASE(12)
    default: break;
    }
}
#define PV512_CASE(R) case R: if (P == 2) pv_tile512(R, 2, p, ps, panel0, w0, panel1, w1, tp, rs, o, os, m0, m1); \
                              else pv_tile512(R, 1, p, ps, panel0, w0, panel1, w1, tp, rs, o, os, m0, m1); break;
AVX512_TARGET static void pv_rows512(int R, int P, const float *p, size_t ps, const float *panel0, size_t w0,
                                     const float *panel1, size_t w1, size_t tp, const float *rs, float *o, size_t os,
                                     __mmask16 m0, __mmask16 m1) {
    switch (R) {
    PV512_CASE(1) PV512_CASE(2) PV512_CASE(3) PV512_CASE(4) PV512_CASE(5) PV512_CASE(6)
    PV512_CASE(7) PV512_CASE(8) PV512_CASE(9) PV512_CASE(10) PV512_CASE(11) PV512_CASE(12)
    default: break;
    }
}

/* softmax_rows with sixteen lanes. Bit for bit the AVX2 one: the same exponential per lane, the maximum is
   order-free, and lanes j and j + 8 of the sum accumulate what the AVX2 loop's two accumulators do, added the same
   way at the end. */
AVX512_TARGET INLINE __m512 softmax_exp16(__m512 x) {
    __m512 shifted;
    __m512 p = exp16_reduced(_mm512_max_ps(_mm512_set1_ps(EXP_LO), x), &shifted); /* NaN in x: max returns x */
    __m512i e = _mm512_add_epi32(_mm512_castps_si512(shifted), _mm512_set1_epi32(127 - 0x4B400000));
    return _mm512_mul_ps(p, _mm512_castsi512_ps(_mm512_slli_epi32(e, 23)));
}

AVX512_TARGET static void softmax_rows512(float *scores, size_t rows, size_t tk, size_t tp, float *row_scale) {
    for (size_t r = 0; r < rows; r++) {
        float *row = scores + r * tp;
        float m = max_avx2(row, tk);
        if (m == -INFINITY) {
            memset(row, 0, tp * sizeof(float));
            row_scale[r] = 0;
            continue;
        }
        for (size_t j = tk; j < tp; j++) row[j] = -INFINITY;
        __m512 acc = _mm512_setzero_ps(), s = _mm512_set1_ps(m);
        for (size_t i = 0; i < tp; i += 16) {  /* tp is a whole number of 16-key panels */
            __m512 e = softmax_exp16(_mm512_sub_ps(_mm512_loadu_ps(row + i), s));
            _mm512_storeu_ps(row + i, e);
            acc = _mm512_add_ps(acc, e);
        }
        float lanes[8], sum = 0;
        _mm256_storeu_ps(lanes, _mm256_add_ps(_mm512_castps512_ps256(acc), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc), 1))));
        for (int j = 0; j < 8; j++) sum += lanes[j];
        row_scale[r] = 1 / sum;
        memset(row + tk, 0, (tp - tk) * sizeof(float));
    }
}

AVX512_TARGET static void attention_rows_avx512(const float *q, size_t qs, size_t rows, const float *kpack,
                                                const float *vpack, size_t tk, size_t hd, float scale, float *scores,
                                                float *row_scale, float *out, size_t os) {
    size_t tp = storyloom_attention_padded_keys(tk);
    __m512 sc = _mm512_set1_ps(scale);
    for (size_t p = 0; p < tp; p += 32) {
        int P = tp - p >= 32 ? 2 : 1;
        for (size_t r0 = 0; r0 < rows; r0 += 12)
            qk_rows512((int)(rows - r0 < 12 ? rows - r0 : 12), P, q + r0 * qs, qs, kpack + p * hd, hd, sc,
                       scores + r0 * tp + p, tp);
    }
    softmax_rows512(scores, rows, tk, tp, row_scale);
    for (size_t c = 0; c < hd; c += 32) {
        size_t w0 = hd - c < 16 ? hd - c : 16, rest = hd - c - w0, w1 = rest < 16 ? rest : 16;
        int P = rest > 0 ? 2 : 1;
        __mmask16 m0 = (__mmask16)((1u << w0) - 1), m1 = (__mmask16)(w1 ? (1u << w1) - 1 : 0);
        const float *panel0 = vpack + c * tp, *panel1 = vpack + (c + 16) * tp;
        for (size_t r0 = 0; r0 < rows; r0 += 12)
            pv_rows512((int)(rows - r0 < 12 ? rows - r0 : 12), P, scores + r0 * tp, tp, panel0, w0, panel1, w1, tp,
                       row_scale + r0, out + r0 * os + c, os, m0, m1);
    }
}

static int has_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

static int has_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

int storyloom_attention_fused_available(size_t hd) { return hd > 0 && hd % 8 == 0 && has_avx2(); }

int storyloom_attention_kernels_available(void) { return has_avx2() ? (has_avx512() ? 2 : 1) : 0; }

void storyloom_attention_rows_with(int kernel, const float *q, size_t q_stride, size_t rows, const float *kpack,
                                   const float *vpack, size_t tk, size_t hd, float scale, float *scores,
                                   float *row_scale, float *out, size_t out_stride) {
    if (!storyloom_attention_fused_available(hd)) return;
    if (kernel == 2 && has_avx512())
        attention_rows_avx512(q, q_stride, rows, kpack, vpack, tk, hd, scale, scores, row_scale, out, out_stride);
    else
        attention_rows_avx2(q, q_stride, rows, kpack, vpack, tk, hd, scale, scores, row_scale, out, out_stride);
}

void storyloom_attention_rows(const float *q, size_t q_stride, size_t rows, const float *kpack,
                              const float *vpack, size_t tk, size_t hd, float scale, float *scores,
                              float *row_scale, float *out, size_t out_stride) {
    storyloom_attention_rows_with(storyloom_attention_kernels_available(), q, q_stride, rows, kpack, vpack, tk, hd,
                                  scale, scores, row_scale, out, out_stride);
}

#else

int storyloom_attention_fused_available(size_t hd) { (void)hd; return 0; }

int storyloom_attention_kernels_available(void) { return 0; }

void storyloom_attention_rows_with(int kernel, const float *q, size_t q_stride, size_t rows, const float *kpack,
                                   const float *vpack, size_t tk, size_t hd, float scale, float *scores,
                                   float *row_scale, float *out, size_t out_stride) {
    (void)kernel;
    storyloom_attention_rows(q, q_stride, rows, kpack, vpack, tk, hd, scale, scores, row_scale, out, out_stride);
}

void storyloom_attention_rows(const float *q, size_t q_stride, size_t rows, const float *kpack,
                              const float *vpack, size_t tk, size_t hd, float scale, float *scores,
                              float *row_scale, float *out, size_t out_stride) {
    (void)q; (void)q_stride; (void)rows; (void)kpack; (void)vpack; (void)tk; (void)hd; (void)scale;
    (void)scores; (void)row_scale; (void)out; (void)out_stride;
}

#endif
