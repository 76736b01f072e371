#ifndef STORYLOOM_LINEAR_PRODUCTS_H
#define STORYLOOM_LINEAR_PRODUCTS_H

#include <stddef.h>

/// `linear`'s products for a prompt's or an image's rows, on CPUs with AVX-512 (Tensor's LinearProducts.swift
/// decides where; OpenBLAS elsewhere).
///
/// Why not sgemm: `x[rows, K] · Wᵀ` with a few dozen rows and a large `[O, K]` weight spends most of OpenBLAS
/// 0.3.21's time packing the weight, which is read once per call (OPT's prefill streams 5 GB of it). Here the
/// rows of x are packed instead — `rows × K` floats, small — as transposed 32-row panels, once per call; the
/// weight is read as stored, 8 rows at a time broadcast into the 8 × 32 register block of `avx512_block.h`,
/// and the product comes out transposed, `[O, rows]` (the caller writes it back with the bias). Measured with
/// a C harness on an AMD EPYC, 2 threads, best of 15 (OpenBLAS's Cooper Lake kernels, the better of its two
/// orientations): 64 × 2048 → 2048 124 → 195 GFLOP/s, 64 × 2048 → 8192 129 → 204, 64 × 8192 → 2048 138 → 212.

/// Whether the functions below may be called (the CPU has AVX-512F).
int storyloom_linear_products_available(void);

/// Floats of the packed panels of `rows` rows of depth `depth`.
size_t storyloom_linear_panels_size(size_t rows, size_t depth);

/// Packs `x[rows, depth]` (row-major) into `panels`: panel p holds rows 32p…32p+31 as `[depth, 32]`, zeros past
/// the last row.
void storyloom_linear_pack(size_t rows, size_t depth, const float *x, float *panels);

/// `product[features, rows] = w[features, depth] · xᵀ` from `x`'s panels; `product` is overwritten. Runs on the
/// calling thread; the caller gives each worker its own band of weight rows.
void storyloom_linear_product(size_t features, size_t rows, size_t depth, const float *w, const float *panels,
                              float *product);

#endif
