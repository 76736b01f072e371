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

/// `y[rows] = w[rows, cols] · x + bias` (bias may be NULL): `linear` of one row (a decoded token), on CPUs with AVX2
/// and FMA. Runs on the calling thread; the caller gives each worker its own band of weight rows (each output is
/// its own sum, so the split does not change a bit).
///
/// Why not sgemv: a decoded token streams every weight once, so the product is bound by memory bandwidth, and
/// OpenBLAS 0.3.21's sgemv does not reach it. C harness on an AVX2-only AMD EPYC (Zen 3), OPT-125m's 73 decode
/// products in sequence (500 MB of weights), 2 threads, best of 5: sgemv 40–56 ms (9–12 GB/s, with
/// `OPENBLAS_THREAD_TIMEOUT=20` as Storyloom sets it: 40–44 ms) against 21–28 ms (18–23 GB/s) for this kernel split
/// in two bands; the machine's summing loop read 18–21 GB/s.
void storyloom_linear_gemv(const float *w, size_t rows, size_t cols, const float *x, const float *bias, float *y);

/// Whether `storyloom_linear_gemm` may be called (the CPU has AVX-512F).
int storyloom_linear_gemm_available(void);

/// Floats of the scratch `storyloom_linear_gemm` needs (one per calling thread).
size_t storyloom_linear_gemm_scratch_size(void);

/// `out[rows, 0..<features] += x[rows, depth] · w[features, depth]ᵀ` (row-major; `out`'s rows `ldo` apart): the
/// AVX-512 blocked product for the row counts the AVX2 products above do not take (an image's tokens, a batch). The
/// caller seeds `out` with the bias or zeros; each output is one FMA chain over the depth in order, so a result does
/// not depend on how features or rows are split between threads. Runs on the calling thread.
///
/// Why: where OpenBLAS 0.3.21 runs AVX2 kernels on an AVX-512 CPU (it does not know Zen 5, and Storyloom then
/// chooses its Haswell kernels; some machines set `OPENBLAS_CORETYPE=Haswell`), those use half the vector width.
/// C harness, one core of an AMD EPYC (Zen 5, 512-bit FMA: 218 GFLOP/s peak against 110 for AVX2), beside
/// OpenBLAS's Haswell kernels with the bias seeded the same way, best of 5: 2,056 × 1,024 → 3,072 (ViT-L/14 batch 8)
/// 105 → 180 GFLOP/s, 257 × 1,024 → 4,096 102 → 153, 400 × 768 → 3,072 100 → 166, 4,096 × 320 → 320 97 → 130,
/// 50 × 768 → 3,072 85 → 156 (1.3–1.9× over 20 shapes).
void storyloom_linear_gemm(size_t rows, size_t depth, const float *x, size_t features, const float *w, float *out,
                           size_t ldo, float *scratch);

/// The same product over operands in either layout, for the products around a convolution (`weight · patches`,
/// the channel-major projections of an image transformer): x's element (row r, depth k) is `x[r * ldx + k]`, or
/// `x[k * ldx + r]` when `x_depth_major`; w's (feature f, depth k) is `w[f * ldw + k]`, or `w[k * ldw + f]` when
/// `w_depth_major` (a `[K, N]` matrix such as im2col's patches, whose panels are then plain copies). The same FMA
/// chain per output as `storyloom_linear_gemm`, so layouts and thread splits do not change a bit.
void storyloom_gemm_strided(size_t rows, size_t depth, const float *x, size_t ldx, int x_depth_major, size_t features,
                            const float *w, size_t ldw, int w_depth_major, float *out, size_t ldo, float *scratch);

#endif
