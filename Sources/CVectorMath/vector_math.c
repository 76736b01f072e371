#include "vector_math.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "exp_core.h"

#define SQRT1_2 0.70710678118654752f

/* ---- Scalar path (identical formulas; the compiler may still vectorise it with SSE2). ---- */

static inline float bits_float(uint32_t u) { float f; memcpy(&f, &u, sizeof f); return f; }
static inline uint32_t float_bits(float f) { uint32_t u; memcpy(&u, &f, sizeof u); return u; }

static inline float exp_scalar(float x) {
    float c = x != x ? 0.0f : fminf(fmaxf(x, EXP_LO), EXP_HI);
    float shifted = c * LOG2E + ROUND_MAGIC;
    float n = shifted - ROUND_MAGIC;
    float r = (c - n * LN2_HI) - n * LN2_LO;
    float p = 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1;
    p = p * r + 1;
    int32_t ni = (int32_t)float_bits(shifted) - 0x4B400000;
    int32_t half = ni >> 1;
    float s1 = bits_float((uint32_t)(half + 127) << 23);
    float s2 = bits_float((uint32_t)(ni - half + 127) << 23);
    float y = p * s1 * s2;
    return x < EXP_LO ? 0.0f : (x > EXP_HI ? INFINITY : (x != x ? x : y));
}

static inline float erf_scalar(float x) {
    float a = fabsf(x);
    float t = 1 / (1 + 0.5f * a);
    float p = 0.17087277f;
    p = p * t - 0.82215223f;
    p = p * t + 1.48851587f;
    p = p * t - 1.13520398f;
    p = p * t + 0.27886807f;
    p = p * t - 0.18628806f;
    p = p * t + 0.09678418f;
    p = p * t + 0.37409196f;
    p = p * t + 1.00002368f;
    p = p * t - 1.26551223f;
    float r = 1 - t * exp_scalar(-a * a + p);
    return x < 0 ? -r : r;
}

static inline float gelu_scalar(float v) { return 0.5f * v * (1 + erf_scalar(v * SQRT1_2)); }

static float exp_shifted_sum_scalar(float *x, size_t n, float shift) {
    float s = 0;
    for (size_t i = 0; i < n; i++) { x[i] = exp_scalar(x[i] - shift); s += x[i]; }
    return s;
}

#ifdef STORYLOOM_X86

AVX2_TARGET __attribute__((always_inline)) static inline __m256 exp8(__m256 x) {
    const __m256 lo = _mm256_set1_ps(EXP_LO), hi = _mm256_set1_ps(EXP_HI);
    __m256 isnan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
    __m256 c = _mm256_andnot_ps(isnan, _mm256_min_ps(_mm256_max_ps(x, lo), hi));
    __m256 shifted;
    __m256 p = exp8_reduced(c, &shifted);
    __m256i ni = _mm256_sub_epi32(_mm256_castps_si256(shifted), _mm256_set1_epi32(0x4B400000));
    __m256i half = _mm256_srai_epi32(ni, 1);
    const __m256i bias = _mm256_set1_epi32(127);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(half, bias), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(ni, half), bias), 23));
    __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
    y = _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps(x, lo, _CMP_LT_OQ));
    y = _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(x, hi, _CMP_GT_OQ));
    return _mm256_blendv_ps(y, x, isnan);
}

AVX2_TARGET __attribute__((always_inline)) static inline __m256 erf8(__m256 x) {
    const __m256 sign = _mm256_set1_ps(-0.0f), one = _mm256_set1_ps(1.0f);
    __m256 a = _mm256_andnot_ps(sign, x);
    __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(_mm256_set1_ps(0.5f), a, one));
    __m256 p = _mm256_set1_ps(0.17087277f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.82215223f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.48851587f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.13520398f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.27886807f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.18628806f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.09678418f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.37409196f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.00002368f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.26551223f));
    __m256 r = _mm256_fnmadd_ps(t, exp8(_mm256_fnmadd_ps(a, a, p)), one);
    return _mm256_or_ps(r, _mm256_and_ps(x, sign)); /* r ≥ 0: copy x's sign */
}

AVX2_TARGET __attribute__((always_inline)) static inline __m256 gelu8(__m256 v) {
    __m256 e = erf8(_mm256_mul_ps(v, _mm256_set1_ps(SQRT1_2)));
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), v), _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

AVX2_TARGET static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2_TARGET static float exp_shifted_sum_avx2(float *x, size_t n, float shift) {
    __m256 acc = _mm256_setzero_ps(), s = _mm256_set1_ps(shift);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), s));
        _mm256_storeu_ps(x + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    return hsum8(acc) + exp_shifted_sum_scalar(x + i, n - i, shift);
}

AVX2_TARGET static void gelu_avx2(float *x, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, gelu8(_mm256_loadu_ps(x + i)));
    for (; i < n; i++) x[i] = gelu_scalar(x[i]);
}

AVX2_TARGET static void quick_gelu_avx2(float *x, size_t n) {
    const __m256 one = _mm256_set1_ps(1.0f), k = _mm256_set1_ps(-1.702f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        _mm256_storeu_ps(x + i, _mm256_div_ps(v, _mm256_add_ps(one, exp8(_mm256_mul_ps(k, v)))));
    }
    for (; i < n; i++) x[i] = x[i] / (1 + exp_scalar(-1.702f * x[i]));
}

AVX2_TARGET static void affine_silu_avx2(float *x, size_t n, float scale, float shift) {
    const __m256 one = _mm256_set1_ps(1.0f), sc = _mm256_set1_ps(scale), sh = _mm256_set1_ps(shift);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), sc, sh);
        _mm256_storeu_ps(x + i, _mm256_div_ps(v, _mm256_add_ps(one, exp8(_mm256_xor_ps(v, sign)))));
    }
    for (; i < n; i++) { float v = x[i] * scale + shift; x[i] = v / (1 + exp_scalar(-v)); }
}

AVX2_TARGET static void geglu_avx2(const float *src, float *dst, size_t rows, size_t d) {
    for (size_t r = 0; r < rows; r++) {
        const float *a = src + r * 2 * d, *g = a + d;
        float *o = dst + r * d;
        size_t i = 0;
        for (; i + 8 <= d; i += 8) _mm256_storeu_ps(o + i, _mm256_mul_ps(_mm256_loadu_ps(a + i), gelu8(_mm256_loadu_ps(g + i))));
        for (; i < d; i++) o[i] = a[i] * gelu_scalar(g[i]);
    }
}

/* Two passes, each with four double accumulators of four lanes: a serial double sum waits on each add's latency. */
AVX2_TARGET static void mean_and_squares_avx2(const float *x, size_t n, float *mean, double *squares) {
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd(), a2 = _mm256_setzero_pd(), a3 = _mm256_setzero_pd();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 u = _mm256_loadu_ps(x + i), v = _mm256_loadu_ps(x + i + 8);
        a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm256_castps256_ps128(u)));
        a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm256_extractf128_ps(u, 1)));
        a2 = _mm256_add_pd(a2, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
        a3 = _mm256_add_pd(a3, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
    }
    double lanes[4], sum = 0;
    _mm256_storeu_pd(lanes, _mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3)));
    for (int j = 0; j < 4; j++) sum += lanes[j];
    for (; i < n; i++) sum += (double)x[i];
    float m = (float)(sum / (double)n);
    __m256 mv = _mm256_set1_ps(m);
    a0 = a1 = a2 = a3 = _mm256_setzero_pd();
    for (i = 0; i + 16 <= n; i += 16) {
        __m256 u = _mm256_sub_ps(_mm256_loadu_ps(x + i), mv), v = _mm256_sub_ps(_mm256_loadu_ps(x + i + 8), mv);
        u = _mm256_mul_ps(u, u);
        v = _mm256_mul_ps(v, v);
        a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm256_castps256_ps128(u)));
        a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm256_extractf128_ps(u, 1)));
        a2 = _mm256_add_pd(a2, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
        a3 = _mm256_add_pd(a3, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
    }
    double sq = 0;
    _mm256_storeu_pd(lanes, _mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3)));
    for (int j = 0; j < 4; j++) sq += lanes[j];
    for (; i < n; i++) { float d = x[i] - m; sq += (double)(d * d); }
    *mean = m;
    *squares = sq;
}

/* ---- AVX-512F: the same formulas in sixteen lanes, lane for lane the same operations as the AVX2 path (the
   same bits), for the element-wise kernels of the UNet's blocks (GEGLU, GroupNorm + SiLU) and CLIP's GELUs. ---- */
#define AVX512_TARGET __attribute__((target("avx512f")))

AVX512_TARGET __attribute__((always_inline)) static inline __m512 exp16(__m512 x) {
    const __m512 lo = _mm512_set1_ps(EXP_LO), hi = _mm512_set1_ps(EXP_HI);
    __mmask16 isnan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    __m512 c = _mm512_maskz_mov_ps((__mmask16)~isnan, _mm512_min_ps(_mm512_max_ps(x, lo), hi));
    __m512 shifted;
    __m512 p = exp16_reduced(c, &shifted);
    __m512i ni = _mm512_sub_epi32(_mm512_castps_si512(shifted), _mm512_set1_epi32(0x4B400000));
    __m512i half = _mm512_srai_epi32(ni, 1);
    const __m512i bias = _mm512_set1_epi32(127);
    __m512 s1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(half, bias), 23));
    __m512 s2 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_sub_epi32(ni, half), bias), 23));
    __m512 y = _mm512_mul_ps(_mm512_mul_ps(p, s1), s2);
    y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ), y, _mm512_setzero_ps());
    y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, hi, _CMP_GT_OQ), y, _mm512_set1_ps(INFINITY));
    return _mm512_mask_blend_ps(isnan, y, x);
}

AVX512_TARGET __attribute__((always_inline)) static inline __m512 erf16(__m512 x) {
    const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 a = _mm512_castsi512_ps(_mm512_andnot_si512(sign, _mm512_castps_si512(x)));
    __m512 t = _mm512_div_ps(one, _mm512_fmadd_ps(_mm512_set1_ps(0.5f), a, one));
    __m512 p = _mm512_set1_ps(0.17087277f);
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.82215223f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.48851587f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.13520398f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.27886807f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.18628806f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.09678418f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.37409196f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.00002368f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.26551223f));
    __m512 r = _mm512_fnmadd_ps(t, exp16(_mm512_fnmadd_ps(a, a, p)), one);
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(r), _mm512_and_si512(_mm512_castps_si512(x), sign)));
}

AVX512_TARGET __attribute__((always_inline)) static inline __m512 gelu16(__m512 v) {
    __m512 e = erf16(_mm512_mul_ps(v, _mm512_set1_ps(SQRT1_2)));
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), v), _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

/* Each runs its sixteen-lane loop, then hands the rest (fewer than 16) to the AVX2 path: the same bits throughout. */
AVX512_TARGET static void gelu_avx512(float *x, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, gelu16(_mm512_loadu_ps(x + i)));
    gelu_avx2(x + i, n - i);
}

AVX512_TARGET static void quick_gelu_avx512(float *x, size_t n) {
    const __m512 one = _mm512_set1_ps(1.0f), k = _mm512_set1_ps(-1.702f);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        _mm512_storeu_ps(x + i, _mm512_div_ps(v, _mm512_add_ps(one, exp16(_mm512_mul_ps(k, v)))));
    }
    quick_gelu_avx2(x + i, n - i);
}

AVX512_TARGET static void affine_silu_avx512(float *x, size_t n, float scale, float shift) {
    const __m512 one = _mm512_set1_ps(1.0f), sc = _mm512_set1_ps(scale), sh = _mm512_set1_ps(shift);
    const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), sc, sh);
        __m512 negated = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(v), sign));
        _mm512_storeu_ps(x + i, _mm512_div_ps(v, _mm512_add_ps(one, exp16(negated))));
    }
    affine_silu_avx2(x + i, n - i, scale, shift);
}

AVX512_TARGET static void geglu_avx512(const float *src, float *dst, size_t rows, size_t d) {
    for (size_t r = 0; r < rows; r++) {
        const float *a = src + r * 2 * d, *g = a + d;
        float *o = dst + r * d;
        size_t i = 0;
        for (; i + 16 <= d; i += 16)
            _mm512_storeu_ps(o + i, _mm512_mul_ps(_mm512_loadu_ps(a + i), gelu16(_mm512_loadu_ps(g + i))));
        for (; i + 8 <= d; i += 8)
            _mm256_storeu_ps(o + i, _mm256_mul_ps(_mm256_loadu_ps(a + i), gelu8(_mm256_loadu_ps(g + i))));
        for (; i < d; i++) o[i] = a[i] * gelu_scalar(g[i]);
    }
}

static int has_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

static int has_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#else
static int has_avx2(void) { return 0; }
static int has_avx512(void) { return 0; }
#endif

int storyloom_vector_math_kernels_available(void) { return has_avx2() ? (has_avx512() ? 2 : 1) : 0; }

float storyloom_exp_shifted_sum(float *x, size_t n, float shift) {
#ifdef STORYLOOM_X86
    if (has_avx2()) return exp_shifted_sum_avx2(x, n, shift);
#endif
    return exp_shifted_sum_scalar(x, n, shift);
}

void storyloom_gelu_with(int kernel, float *x, size_t n) {
#ifdef STORYLOOM_X86
    if (kernel >= 2 && has_avx512()) { gelu_avx512(x, n); return; }
    if (kernel >= 1 && has_avx2()) { gelu_avx2(x, n); return; }
#endif
    for (size_t i = 0; i < n; i++) x[i] = gelu_scalar(x[i]);
}

void storyloom_quick_gelu_with(int kernel, float *x, size_t n) {
#ifdef STORYLOOM_X86
    if (kernel >= 2 && has_avx512()) { quick_gelu_avx512(x, n); return; }
    if (kernel >= 1 && has_avx2()) { quick_gelu_avx2(x, n); return; }
#endif
    for (size_t i = 0; i < n; i++) x[i] = x[i] / (1 + exp_scalar(-1.702f * x[i]));
}

void storyloom_affine_silu_with(int kernel, float *x, size_t n, float scale, float shift) {
#ifdef STORYLOOM_X86
    if (kernel >= 2 && has_avx512()) { affine_silu_avx512(x, n, scale, shift); return; }
    if (kernel >= 1 && has_avx2()) { affine_silu_avx2(x, n, scale, shift); return; }
#endif
    for (size_t i = 0; i < n; i++) { float v = x[i] * scale + shift; x[i] = v / (1 + exp_scalar(-v)); }
}

void storyloom_geglu_with(int kernel, const float *src, float *dst, size_t rows, size_t d) {
#ifdef STORYLOOM_X86
    if (kernel >= 2 && has_avx512()) { geglu_avx512(src, dst, rows, d); return; }
    if (kernel >= 1 && has_avx2()) { geglu_avx2(src, dst, rows, d); return; }
#endif
    for (size_t r = 0; r < rows; r++)
        for (size_t i = 0; i < d; i++) dst[r * d + i] = src[r * 2 * d + i] * gelu_scalar(src[r * 2 * d + d + i]);
}

void storyloom_gelu(float *x, size_t n) { storyloom_gelu_with(storyloom_vector_math_kernels_available(), x, n); }

void storyloom_quick_gelu(float *x, size_t n) {
    storyloom_quick_gelu_with(storyloom_vector_math_kernels_available(), x, n);
}

void storyloom_affine_silu(float *x, size_t n, float scale, float shift) {
    storyloom_affine_silu_with(storyloom_vector_math_kernels_available(), x, n, scale, shift);
}

void storyloom_geglu(const float *src, float *dst, size_t rows, size_t d) {
    storyloom_geglu_with(storyloom_vector_math_kernels_available(), src, dst, rows, d);
}

void storyloom_mean_and_squares(const float *x, size_t n, float *mean, double *squares) {
    if (n == 0) { *mean = 0; *squares = 0; return; }
#ifdef STORYLOOM_X86
    if (has_avx2()) { mean_and_squares_avx2(x, n, mean, squares); return; }
#endif
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += (double)x[i];
    float m = (float)(sum / (double)n);
    double sq = 0;
    for (size_t i = 0; i < n; i++) { float d = x[i] - m; sq += (double)(d * d); }
    *mean = m;
    *squares = sq;
}

float storyloom_exp(float x) { return exp_scalar(x); }
float storyloom_erf(float x) { return erf_scalar(x); }

int storyloom_vector_math_vectorized(void) { return has_avx2(); }
