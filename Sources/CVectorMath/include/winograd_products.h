#ifndef STORYLOOM_WINOGRAD_PRODUCTS_H
#define STORYLOOM_WINOGRAD_PRODUCTS_H

#include <stddef.h>

/// The products of a Winograd convolution, `M_ξ = U_ξ · V_ξ`, on CPUs with AVX-512 or AVX2 + FMA (Tensor's
/// Winograd.swift uses OpenBLAS elsewhere).
///
/// Why not sgemm: each product is mid-sized (SD's UNet: 320–2560 rows and depth, 16–1024 tiles per image) and
/// its operands are used once, so OpenBLAS spends a sixth of the time packing both into its panel layout on
/// every call. Here an 8 × 32 register block reads U's rows as the kernel transform wrote them, and only V's
/// 32-column panels are copied contiguous (one pass each, then read by every block of rows). Each call runs on
/// one thread; the caller spreads a convolution's (m+2)² products over its workers. Measured beside OpenBLAS
/// 0.3.21's Cooper Lake kernels on one core of an AMD EPYC (C harness without the panel copy, best of 20):
/// 320 × 256 × 320 106 → 117 GFLOP/s, 640 × 64 × 640 101 → 117, 1280 × 32 × 1280 93 → 118; in SD's UNet and VAE
/// see Tensor's Winograd.swift.
///
/// Without AVX-512 (Zen 2/3 and older Intel parts) a 6 × 16 AVX2 + FMA block does the same over V packed once into
/// 16-column panels, blocked like a GEMM (256 columns × 256 depth per pass) since its panels are half as wide.

/// Which kernel `storyloom_winograd_product` runs here: 2 the AVX-512 one, 1 the AVX2 + FMA one, 0 none (the CPU
/// has neither; do not call it).
int storyloom_winograd_products_available(void);

/// `m[rows, cols] = u[rows, depth] · v[depth, cols]`, all row-major and contiguous; `m` is overwritten.
/// Requires `storyloom_winograd_products_available()`.
void storyloom_winograd_product(size_t rows, size_t cols, size_t depth, const float *u, const float *v, float *m);

/// The same with the kernel named (1 AVX2 + FMA, 2 AVX-512), for tests that check each kernel the CPU has;
/// requires `storyloom_winograd_products_available() >= kernel`.
void storyloom_winograd_product_with(int kernel, size_t rows, size_t cols, size_t depth, const float *u,
                                     const float *v, float *m);

/// Whether `storyloom_weight_product` may be called (the CPU has AVX-512F).
int storyloom_weight_product_available(void);

/// The AVX-512 kernel above for a convolution's `weight · patches` (im2col columns, or the image itself for a 1×1
/// kernel): `m[rows, cols] (+)= u[rows, depth] · v[depth, cols]`, u contiguous, v's and m's rows `ldv` and `ldm`
/// apart (so a caller can give each worker its own band of columns); `m` is overwritten, or added to when
/// `accumulate` (each sum then starts from m's value: a bias the caller seeded). Runs on the calling thread.
/// Beside OpenBLAS's Haswell kernels on one core of an AMD EPYC (Zen 5, C harness, best of 5), SD's 1×1 and
/// strided products: 640 × 320 × 4,096 (rows × depth × cols) and the like, see Tensor's WeightProducts.swift.
void storyloom_weight_product(size_t rows, size_t cols, size_t depth, const float *u, const float *v, size_t ldv,
                              float *m, size_t ldm, int accumulate);

#endif
