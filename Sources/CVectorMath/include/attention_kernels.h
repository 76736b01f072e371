#ifndef STORYLOOM_ATTENTION_KERNELS_H
#define STORYLOOM_ATTENTION_KERNELS_H

#include <stddef.h>

/// Fused attention for one (sequence, head): `softmax(scale · Q Kᵀ) V` for a block of query rows, with
/// AVX2 + FMA register-tiled kernels instead of two sgemm calls.
///
/// Why not sgemm: the UNet's head dimension is 40–160, so `Q Kᵀ` is a product with K = 40 and `P V` one
/// with N = 40; OpenBLAS repacks K and V for every block of queries, zero-fills the score block (beta = 0)
/// and runs such thin products at 47–58 of its 79 GFLOP/s here. These kernels pack K and V once per
/// (sequence, head), keep a 6-row block of scores in cache between the two products, and fold the softmax
/// division into the output (`O = (E V) / Σ E` instead of normalising every score).
///
/// Where the CPU has AVX-512F the two products run 12-row blocks over two panels at a time (24 of its 32 registers)
/// on the same packed layouts, and the softmax between them in sixteen lanes; the results are bit for bit the AVX2
/// kernels' (the same FMA chains, the same exponential per lane, the sum's lanes paired as the AVX2 loop's). C harness, one core of an AMD EPYC (Zen 5), AVX2 → AVX-512 tiles, 256 query rows in
/// blocks of 64: 4,096 keys at head dimension 40 (SD's 64×64 self-attention) 80 → 109 GFLOP/s, 1,024 × 80 94 → 143,
/// 256 × 160 104 → 188, 77 keys × 40 (cross-attention, 1,024 rows) 66 → 91.
///
/// Layouts (floats): `tp = storyloom_attention_padded_keys(tk)`.
/// - `kpack`: `tp · hd`, panels of 16 keys: panel p holds `K[16p + j][d]` at `p·16·hd + d·16 + j` (0 past tk).
/// - `vpack`: `tp · hd`, panels of 16 (the last of 8) value columns: the panel starting at column c with
///   width w holds `V[t][c + j]` at `c·tp + t·w + j` (0 for t ≥ tk).
/// - `scores`: `rows · tp` scratch; `row_scale`: `rows` scratch.

/// Keys rounded up to a whole panel of 16.
size_t storyloom_attention_padded_keys(size_t tk);

/// Whether the fused kernels run head dimension `hd` on this CPU (AVX2 + FMA and hd a multiple of 8);
/// otherwise callers use sgemm.
int storyloom_attention_fused_available(size_t hd);

/// Packs one (sequence, head)'s keys and values (`tk` rows, `k_stride` / `v_stride` floats apart).
void storyloom_attention_pack(const float *k, size_t k_stride, const float *v, size_t v_stride,
                              size_t tk, size_t hd, float *kpack, float *vpack);

/// Which kernels `storyloom_attention_rows` can run here: 2 the AVX-512 tiles (12 rows × 32 keys or columns), 1 the
/// AVX2 ones (6 × 16), 0 none.
int storyloom_attention_kernels_available(void);

/// Attention of `rows` query rows (`q_stride` floats apart) over packed keys and values; writes `hd`
/// floats per row to `out` (`out_stride` apart). Requires `storyloom_attention_fused_available(hd)`.
void storyloom_attention_rows(const float *q, size_t q_stride, size_t rows, const float *kpack,
                              const float *vpack, size_t tk, size_t hd, float scale, float *scores,
                              float *row_scale, float *out, size_t out_stride);

/// The same with the kernel named (1 AVX2, 2 AVX-512; the AVX2 one where the CPU lacks AVX-512F), for tests that
/// check each kernel the CPU has.
void storyloom_attention_rows_with(int kernel, const float *q, size_t q_stride, size_t rows, const float *kpack,
                                   const float *vpack, size_t tk, size_t hd, float scale, float *scores,
                                   float *row_scale, float *out, size_t out_stride);

#endif
