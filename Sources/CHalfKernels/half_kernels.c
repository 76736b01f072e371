#include "half_kernels.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define STORYLOOM_X86 1
#endif

/* Portable conversions (the scalar path, and the tails of the vector loops). */

static inline float bits_to_float(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline float f16_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exponent = (h >> 10) & 0x1fu;
    uint32_t mantissa = h & 0x3ffu;
    if (exponent == 0) {
        /* Zero or subnormal: mantissa * 2^-24, exact in float. */
        float magnitude = (float)mantissa * 5.9604644775390625e-8f;
        uint32_t u;
        memcpy(&u, &magnitude, sizeof u);
        return bits_to_float(u | sign);
    }
    if (exponent == 31) return bits_to_float(sign | 0x7f800000u | (mantissa << 13));
    return bits_to_float(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

static inline float bf16_to_float(uint16_t b) { return bits_to_float((uint32_t)b << 16); }

static inline float half_to_float(uint16_t v, storyloom_half_format format) {
    return format == STORYLOOM_HALF_BF16 ? bf16_to_float(v) : f16_to_float(v);
}

static void to_float_scalar(const uint16_t *src, float *dst, size_t n, storyloom_half_format format) {
    if (format == STORYLOOM_HALF_BF16) {
        for (size_t i = 0; i < n; i++) dst[i] = bf16_to_float(src[i]);
    } else {
        for (size_t i = 0; i < n; i++) dst[i] = f16_to_float(src[i]);
    }
}

static void gemv_scalar(const uint16_t *w, size_t rows, size_t cols, const float *x, const float *bias, float *y,
                        storyloom_half_format format) {
    for (size_t r = 0; r < rows; r++) {
        const uint16_t *row = w + r * cols;
        /* Four partial sums, as the vector path keeps, so results stay close across paths. */
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        size_t j = 0;
        for (; j + 4 <= cols; j += 4) {
            s0 += half_to_float(row[j], format) * x[j];
            s1 += half_to_float(row[j + 1], format) * x[j + 1];
            s2 += half_to_float(row[j + 2], format) * x[j + 2];
            s3 += half_to_float(row[j + 3], format) * x[j + 3];
        }
        float s = (s0 + s1) + (s2 + s3);
        for (; j < cols; j++) s += half_to_float(row[j], format) * x[j];
        y[r] = (bias ? bias[r] : 0.0f) + s;
    }
}

#ifdef STORYLOOM_X86

#define AVX2_TARGET __attribute__((target("avx2,f16c,fma")))

/* Eight 16-bit values to eight floats. */
AVX2_TARGET __attribute__((always_inline)) static inline __m256 load8(const uint16_t *p, storyloom_half_format format) {
    __m128i h = _mm_loadu_si128((const __m128i *)p);
    if (format == STORYLOOM_HALF_BF16) {
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    return _mm256_cvtph_ps(h);
}

AVX2_TARGET static void to_float_avx2(const uint16_t *src, float *dst, size_t n, storyloom_half_format format) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load8(src + i, format));
    to_float_scalar(src + i, dst + i, n - i, format);
}

AVX2_TARGET static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Inlined into gemv_avx2 once per format, so the format test leaves the inner loops. */
AVX2_TARGET __attribute__((always_inline)) static inline void
gemv_avx2_body(const uint16_t *w, size_t rows, size_t cols, const float *x, const float *bias, float *y,
               storyloom_half_format format) {
    size_t r = 0;
    /* Four rows at a time share each load of x, with one accumulator per row: four independent FMA
       chains. Measured on the 2-core AMD EPYC this was written on (one thread, 8192x2048 f16):
       1.5 ms, against 2.5 ms for two rows with four accumulators each and 2.9 ms for f32 sgemv. */
    for (; r + 4 <= rows; r += 4) {
        const uint16_t *p0 = w + r * cols, *p1 = p0 + cols, *p2 = p1 + cols, *p3 = p2 + cols;
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
        size_t j = 0;
        for (; j + 8 <= cols; j += 8) {
            __m256 xv = _mm256_loadu_ps(x + j);
            s0 = _mm256_fmadd_ps(load8(p0 + j, format), xv, s0);
            s1 = _mm256_fmadd_ps(load8(p1 + j, format), xv, s1);
            s2 = _mm256_fmadd_ps(load8(p2 + j, format), xv, s2);
            s3 = _mm256_fmadd_ps(load8(p3 + j, format), xv, s3);
        }
        float t0 = hsum(s0), t1 = hsum(s1), t2 = hsum(s2), t3 = hsum(s3);
        for (; j < cols; j++) {
            t0 += half_to_float(p0[j], format) * x[j];
            t1 += half_to_float(p1[j], format) * x[j];
            t2 += half_to_float(p2[j], format) * x[j];
            t3 += half_to_float(p3[j], format) * x[j];
        }
        y[r] = (bias ? bias[r] : 0.0f) + t0;
        y[r + 1] = (bias ? bias[r + 1] : 0.0f) + t1;
        y[r + 2] = (bias ? bias[r + 2] : 0.0f) + t2;
        y[r + 3] = (bias ? bias[r + 3] : 0.0f) + t3;
    }
    for (; r < rows; r++) {
        const uint16_t *a = w + r * cols;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        size_t j = 0;
        for (; j + 16 <= cols; j += 16) {
            a0 = _mm256_fmadd_ps(load8(a + j, format), _mm256_loadu_ps(x + j), a0);
            a1 = _mm256_fmadd_ps(load8(a + j + 8, format), _mm256_loadu_ps(x + j + 8), a1);
        }
        for (; j + 8 <= cols; j += 8) a0 = _mm256_fmadd_ps(load8(a + j, format), _mm256_loadu_ps(x + j), a0);
        float s = hsum(_mm256_add_ps(a0, a1));
        for (; j < cols; j++) s += half_to_float(a[j], format) * x[j];
        y[r] = (bias ? bias[r] : 0.0f) + s;
    }
}

AVX2_TARGET static void gemv_avx2(const uint16_t *w, size_t rows, size_t cols, const float *x, const float *bias,
                                  float *y, storyloom_half_format format) {
    if (format == STORYLOOM_HALF_BF16) {
        gemv_avx2_body(w, rows, cols, x, bias, y, STORYLOOM_HALF_BF16);
    } else {
        gemv_avx2_body(w, rows, cols, x, bias, y, STORYLOOM_HALF_F16);
    }
}

static int has_avx2(void) {
    /* Cheap (reads the CPU model the runtime filled in at start-up), so no caching and no race. */
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
}

#else
static int has_avx2(void) { return 0; }
#endif

void storyloom_half_to_float(const uint16_t *src, float *dst, size_t n, storyloom_half_format format) {
#ifdef STORYLOOM_X86
    if (has_avx2()) { to_float_avx2(src, dst, n, format); return; }
#endif
    to_float_scalar(src, dst, n, format);
}

void storyloom_half_gemv(const uint16_t *w, size_t rows, size_t cols, const float *x, const float *bias,
                         float *y, storyloom_half_format format) {
#ifdef STORYLOOM_X86
    if (has_avx2()) { gemv_avx2(w, rows, cols, x, bias, y, format); return; }
#endif
    gemv_scalar(w, rows, cols, x, bias, y, format);
}

int storyloom_half_kernels_vectorized(void) { return has_avx2(); }
