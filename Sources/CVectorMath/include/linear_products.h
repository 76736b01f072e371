#ifndef STORYLOOM_LINEAR_PRODUCTS_H
#define STORYLOOM_LINEAR_PRODUCTS_H

#include <stddef.h>

/// `linear`'s products for a prompt's or a small image's rows, on CPUs with AVX2 and FMA (Tensor's
/// LinearProducts.swift decides where; OpenBLAS elsewhere).
///
/// Why not sgemm: `x[rows, K] · Wᵀ` with a few dozen rows and a large `[O, K]` weight spends much of OpenBLAS
/// 0.3.21's time packing the weight, which is read once per call (OPT's prefill streams 5 GB of it). Here the
/// rows of x are packed instead — `rows × K` floats, small — as transposed 16-row panels, once per call; the
/// weight is read as stored, 6 rows at a time broadcast into a 6 × 16 register block (AVX2's 16 registers; the
/// shape of BLIS's Haswell kernel), and the product comes out transposed (the caller writes it back with the bias).
/// C harness on an AMD EPYC (Zen 4: 256-bit AVX2 code runs at the FLOP rate of AVX-512 there), 2 threads, best
/// of 15: 64 × 2048 → 8192 198–207 GFLOP/s, 64 × 8192 → 2048 201–204, against 131–173 for OpenBLAS's Haswell and
/// Zen kernels and 124–138 for its Cooper Lake ones (the better of its two orientations each).

/// Whether the functions below may be called (the CPU has AVX2 and FMA).
int storyloom_linear_products_available(void);

/// Floats of the packed panels of `rows` rows of depth `depth`.
size_t storyloom_linear_panels_size(size_t rows, size_t depth);

/// The row stride of a product of `rows` rows: rounded up to the 16-row panels, so every store is a whole vector.
size_t storyloom_linear_product_stride(size_t rows);

/// Packs `x[rows, depth]` (row-major) into `panels`: panel p holds rows 16p…16p+15 as `[depth, 16]`, zeros past
/// the last row.
void storyloom_linear_pack(size_t rows, size_t depth, const float *x, float *panels);

/// `product[features, stride] = w[features, depth] · xᵀ` from `x`'s panels, `stride` =
/// `storyloom_linear_product_stride(rows)` (the columns past `rows` hold zeros' products); overwritten. Runs on the
/// calling thread; the caller gives each worker its own band of weight rows.
void storyloom_linear_product(size_t features, size_t rows, size_t depth, const float *w, const float *panels,
                              float *product);

#endif
