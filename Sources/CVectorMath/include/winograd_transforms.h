#ifndef STORYLOOM_WINOGRAD_TRANSFORMS_H
#define STORYLOOM_WINOGRAD_TRANSFORMS_H

#include <stddef.h>

/// The input, kernel and output transforms of Winograd F(2×2, 3×3) and F(4×4, 3×3) for one run of `tiles` adjacent
/// tiles in a tile row (Tensor's Winograd.swift holds the matrices and the driver).
///
/// Why C: written per tile in Swift (baseline x86-64, no AVX), each tile gathered its (m+2)² values one
/// float at a time and scattered (m+2)² single floats to as many matrices; on SD's UNet that was 10% of a
/// 64×64 step. Here a run's input lines are split once into m planes by column phase (column mod m), so
/// every further step reads and writes whole rows of consecutive tiles, which the compiler turns into
/// 8-lane AVX2 + FMA code (run-time dispatch; the same source compiled for baseline x86-64 otherwise).
/// FMA contraction changes the last bits against the Swift formulas; `WinogradTests` holds the tolerance.

/// Floats of scratch the input transform of a run of `tiles` tiles needs.
size_t storyloom_winograd_input_scratch(size_t outputs_per_tile, size_t tiles);
/// Floats of scratch the output transform of a run of `tiles` tiles needs.
size_t storyloom_winograd_output_scratch(size_t outputs_per_tile, size_t tiles);

/// Floats of scratch the kernel transform of one output channel with `channels` input channels needs.
size_t storyloom_winograd_kernel_scratch(size_t outputs_per_tile, size_t channels);

/// `U_ξ = G g Gᵀ` for one output channel: `kernels` holds its `[channels, 3, 3]` float32 kernels; writes
/// `u[ξ·step + channel]` for the (m+2)² positions ξ, all input channels of a position in one vector loop.
void storyloom_winograd_kernel_row(size_t outputs_per_tile, const float *kernels, size_t channels, float *scratch,
                                   float *u, size_t step);

/// `V_ξ = Bᵀ d B` for tiles `0 ..< tiles` of a run: `lines` holds the m+2 padded input lines the run reads,
/// `line_length` floats apart, the run's first column at `start` (m·tiles + 2 values each). Writes
/// `dst[ξ·step + t]` for the (m+2)² positions ξ. `m` (`outputs_per_tile`) is 2 or 4.
void storyloom_winograd_input_run(size_t outputs_per_tile, const float *lines, size_t line_length, size_t start,
                                  size_t tiles, float *scratch, float *dst, size_t step);

/// `Y = Aᵀ M A + bias` for one output channel and a run of `tiles` tiles: the products are
/// `src[ξ·step + t]`; writes `rows` (≤ m) output lines `out_stride` floats apart, `columns` (≤ m·tiles) values
/// each from `out`.
void storyloom_winograd_output_run(size_t outputs_per_tile, const float *src, size_t step, size_t tiles, float bias,
                                   size_t rows, size_t columns, float *scratch, float *out, size_t out_stride);

/// Makes this thread's calls take the baseline path (`on` ≠ 0) even where AVX2 + FMA are present: for tests.
void storyloom_winograd_baseline_on_this_thread(int on);

#endif
