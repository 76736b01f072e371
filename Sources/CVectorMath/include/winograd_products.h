#ifndef STORYLOOM_WINOGRAD_PRODUCTS_H
#define STORYLOOM_WINOGRAD_PRODUCTS_H

#include <stddef.h>

/// The products of a Winograd convolution, `M_ξ = U_ξ · V_ξ`, on CPUs with AVX-512 (Tensor's Winograd.swift
/// uses OpenBLAS elsewhere).
///
/// Why not sgemm: each product is mid-sized (SD's UNet: 320–2560 rows and depth, 16–1024 tiles per image) and
/// its operands are used once, so OpenBLAS spends a sixth of the time packing both into its panel layout on
/// every call. Here an 8 × 32 register block reads U's rows as the kernel transform wrote them, and only V's
/// 32-column panels are copied contiguous (one pass each, then read by every block of rows). Each call runs on
/// one thread; the caller spreads a convolution's (m+2)² products over its workers. Measured beside OpenBLAS
/// 0.3.21's Cooper Lake kernels on one core of an AMD EPYC (C harness without the panel copy, best of 20):
/// 320 × 256 × 320 106 → 117 GFLOP/s, 640 × 64 × 640 101 → 117, 1280 × 32 × 1280 93 → 118; in SD's UNet and VAE
/// see Tensor's Winograd.swift.

/// Whether `storyloom_winograd_product` may be called (the CPU has AVX-512F).
int storyloom_winograd_products_available(void);

/// `m[rows, cols] = u[rows, depth] · v[depth, cols]`, all row-major and contiguous; `m` is overwritten.
/// Requires `storyloom_winograd_products_available()`.
void storyloom_winograd_product(size_t rows, size_t cols, size_t depth, const float *u, const float *v, float *m);

#endif
