#ifndef STORYLOOM_HALF_KERNELS_H
#define STORYLOOM_HALF_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/// Half-precision weight kernels for Storyloom's Tensor module.
///
/// Weights stay in their stored 16-bit format (IEEE binary16 or bfloat16) and are widened to
/// float32 on the fly. Each function picks an AVX2 + F16C + FMA path at run time when the CPU has
/// it and a portable scalar path otherwise, so the package builds for baseline x86-64 and aarch64.

/// The 16-bit format of a weight buffer.
typedef enum {
    STORYLOOM_HALF_F16 = 0,
    STORYLOOM_HALF_BF16 = 1,
} storyloom_half_format;

/// dst[i] = float(src[i]) for i in 0..<n (exact: every f16/bf16 value is a float).
void storyloom_half_to_float(const uint16_t *src, float *dst, size_t n, storyloom_half_format format);

/// y[r] = (bias ? bias[r] : 0) + sum_j w[r * cols + j] * x[j] for r in 0..<rows: the batch-1
/// product of a row-major [rows, cols] half-precision matrix with a float vector, reading each
/// weight once (decode is bound by the bytes read).
void storyloom_half_gemv(const uint16_t *w, size_t rows, size_t cols, const float *x, const float *bias,
                         float *y, storyloom_half_format format);

/// Whether the AVX2 + F16C + FMA kernels are in use (for benchmark notes).
int storyloom_half_kernels_vectorized(void);

#endif
