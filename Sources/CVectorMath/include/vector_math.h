#ifndef STORYLOOM_VECTOR_MATH_H
#define STORYLOOM_VECTOR_MATH_H

#include <stddef.h>

/// Element-wise transcendental kernels for Storyloom's Tensor module.
///
/// Swift compiles for baseline x86-64 (SSE2), where its own exp/erf loops run four lanes at best, and
/// across modules they are not even inlined. These run eight lanes with AVX2 + FMA when the CPU has
/// them (chosen at run time) and a portable scalar path otherwise. Both paths evaluate the same
/// polynomials: exp by range reduction x = n·ln2 + r, a degree-6 polynomial for e^r and 2^n built in the
/// exponent bits (about 2 ulp; below -87.3 → 0, above 88.7 → inf, NaN propagates); erf by Numerical
/// Recipes' erfcc Chebyshev fit, erfc(|x|) = t·exp(-x² + P(t)), t = 1/(1 + |x|/2) (error < 1.2e-7).
/// The vector path's FMAs change the last bit or two.

/// x[i] = exp(x[i] - shift) for i in 0..<n; returns the sum of the results (softmax's denominator).
float storyloom_exp_shifted_sum(float *x, size_t n, float shift);

/// x[i] = 0.5 x (1 + erf(x / sqrt 2)) in place (exact GELU).
void storyloom_gelu(float *x, size_t n);

/// x[i] = x / (1 + exp(-1.702 x)) in place (CLIP's quick GELU).
void storyloom_quick_gelu(float *x, size_t n);

/// x[i] = v / (1 + exp(-v)) with v = x[i] * scale + shift, in place (SiLU after an affine map: the
/// GroupNorm + SiLU of every ResNet block; scale 1, shift 0 for plain SiLU).
void storyloom_affine_silu(float *x, size_t n, float scale, float shift);

/// GEGLU over `rows` rows of 2d values: dst[r][i] = src[r][i] * gelu(src[r][d + i]).
void storyloom_geglu(const float *src, float *dst, size_t rows, size_t d);

/// GroupNorm's statistics of n floats: *mean = Σx / n and *squares = Σ (x - mean)², each difference and its
/// square taken in float as before, the sums accumulated in double (the vector path in four-lane partial
/// sums, so the last bits of the sums differ from a serial loop's).
void storyloom_mean_and_squares(const float *x, size_t n, float *mean, double *squares);

/// exp(x) and erf(x) of one value by the portable path (the reference the vector path is tested against).
float storyloom_exp(float x);
float storyloom_erf(float x);

/// Whether the AVX2 + FMA paths are in use.
int storyloom_vector_math_vectorized(void);

/// Which paths the element-wise kernels take here: 2 sixteen lanes (AVX-512F, for GELU, quick GELU, SiLU and GEGLU;
/// lane for lane the AVX2 operations, so the same bits), 1 eight (AVX2 + FMA), 0 the portable one.
int storyloom_vector_math_kernels_available(void);

/// The element-wise kernels with the path named (0 portable, 1 AVX2, 2 AVX-512; a path the CPU lacks falls back to
/// the next below), for tests that compare the paths.
void storyloom_gelu_with(int kernel, float *x, size_t n);
void storyloom_quick_gelu_with(int kernel, float *x, size_t n);
void storyloom_affine_silu_with(int kernel, float *x, size_t n, float scale, float shift);
void storyloom_geglu_with(int kernel, const float *src, float *dst, size_t rows, size_t d);

#endif
