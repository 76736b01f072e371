#include "winograd_transforms.h"

#include <string.h>

#define AVX2_TARGET __attribute__((target("avx2,fma")))
#define BODY static inline __attribute__((always_inline))
#define R __restrict

/* Each helper is one loop over consecutive tiles with restrict operands, so it vectorises; the bodies are
   inlined into an AVX2 + FMA entry and a baseline one, chosen once per call. */

/* Splits `groups` groups of `m` values into m planes: plane p gets src[m·g + p]. */
BODY void split2(size_t groups, const float *R src, float *R p0, float *R p1) {
    for (size_t g = 0; g < groups; g++) { p0[g] = src[2 * g]; p1[g] = src[2 * g + 1]; }
}

BODY void split4(size_t groups, const float *R src, float *R p0, float *R p1, float *R p2, float *R p3) {
    for (size_t g = 0; g < groups; g++) {
        p0[g] = src[4 * g]; p1[g] = src[4 * g + 1]; p2[g] = src[4 * g + 2]; p3[g] = src[4 * g + 3];
    }
}

/* F(2×2) Bᵀ rows: d0 − d2, d1 + d2, d2 − d1, d1 − d3. */
BODY void bt2(size_t n, const float *R d0, const float *R d1, const float *R d2, const float *R d3,
              float *R o0, float *R o1, float *R o2, float *R o3) {
    for (size_t j = 0; j < n; j++) {
        o0[j] = d0[j] - d2[j]; o1[j] = d1[j] + d2[j]; o2[j] = d2[j] - d1[j]; o3[j] = d1[j] - d3[j];
    }
}

/* F(4×4) Bᵀ rows (the matrices are in Tensor's Winograd.swift). */
BODY void bt4(size_t n, const float *R d0, const float *R d1, const float *R d2, const float *R d3,
              const float *R d4, const float *R d5,
              float *R o0, float *R o1, float *R o2, float *R o3, float *R o4, float *R o5) {
    for (size_t j = 0; j < n; j++) {
        float a0 = d0[j], a1 = d1[j], a2 = d2[j], a3 = d3[j], a4 = d4[j], a5 = d5[j];
        o0[j] = 4 * a0 - 5 * a2 + a4;
        o1[j] = a3 + a4 - 4 * (a1 + a2);
        o2[j] = a4 - a3 + 4 * (a1 - a2);
        o3[j] = a4 - a2 + 2 * (a3 - a1);
        o4[j] = a4 - a2 + 2 * (a1 - a3);
        o5[j] = 4 * a1 - 5 * a3 + a5;
    }
}

/* F(2×2) Aᵀ rows: m0 + m1 + m2, m1 − m2 − m3. */
BODY void at2(size_t n, const float *R m0, const float *R m1, const float *R m2, const float *R m3,
              float *R o0, float *R o1) {
    for (size_t j = 0; j < n; j++) { o0[j] = m0[j] + m1[j] + m2[j]; o1[j] = m1[j] - m2[j] - m3[j]; }
}

/* F(4×4) Aᵀ rows. */
BODY void at4(size_t n, const float *R m0, const float *R m1, const float *R m2, const float *R m3,
              const float *R m4, const float *R m5, float *R o0, float *R o1, float *R o2, float *R o3) {
    for (size_t j = 0; j < n; j++) {
        float a0 = m0[j], a1 = m1[j], a2 = m2[j], a3 = m3[j], a4 = m4[j], a5 = m5[j];
        o0[j] = a0 + a1 + a2 + a3 + a4;
        o1[j] = a1 - a2 + 2 * (a3 - a4);
        o2[j] = a1 + a2 + 4 * (a3 + a4);
        o3[j] = a1 - a2 + 8 * (a3 - a4) + a5;
    }
}

/* Interleaves m planes back into one line, adding the bias: out[m·j + p] = y_p[j] + bias. */
BODY void join2(size_t n, const float *R y0, const float *R y1, float bias, float *R out) {
    for (size_t j = 0; j < n; j++) { out[2 * j] = y0[j] + bias; out[2 * j + 1] = y1[j] + bias; }
}

BODY void join4(size_t n, const float *R y0, const float *R y1, const float *R y2, const float *R y3, float bias,
                float *R out) {
    for (size_t j = 0; j < n; j++) {
        out[4 * j] = y0[j] + bias; out[4 * j + 1] = y1[j] + bias;
        out[4 * j + 2] = y2[j] + bias; out[4 * j + 3] = y3[j] + bias;
    }
}

/* F(2×2) G rows over three kernel values: a, ½(a + b + c), ½(a − b + c), c. */
BODY void g2(size_t n, const float *R a, const float *R b, const float *R c,
             float *R o0, float *R o1, float *R o2, float *R o3) {
    for (size_t j = 0; j < n; j++) {
        o0[j] = a[j]; o1[j] = 0.5f * (a[j] + b[j] + c[j]); o2[j] = 0.5f * (a[j] - b[j] + c[j]); o3[j] = c[j];
    }
}

/* F(4×4) G rows: a/4, −(a + b + c)/6, −(a − b + c)/6, a/24 + b/12 + c/6, a/24 − b/12 + c/6, c. */
BODY void g4(size_t n, const float *R a, const float *R b, const float *R c,
             float *R o0, float *R o1, float *R o2, float *R o3, float *R o4, float *R o5) {
    for (size_t j = 0; j < n; j++) {
        float x = a[j], y = b[j], z = c[j];
        o0[j] = x / 4;
        o1[j] = -(x + y + z) / 6;
        o2[j] = -(x - y + z) / 6;
        o3[j] = x / 24 + y / 12 + z / 6;
        o4[j] = x / 24 - y / 12 + z / 6;
        o5[j] = z;
    }
}

/* Splits one output channel's kernels [C][3][3] into nine planes [9][C] (plane 3·row + column). */
BODY void split9(size_t channels, const float *R g, float *R planes) {
    for (size_t ci = 0; ci < channels; ci++) {
        for (size_t k = 0; k < 9; k++) planes[k * channels + ci] = g[9 * ci + k];
    }
}

/* ---- Kernel transforms U = G g Gᵀ for one output channel, over its C input channels at once. ---- */

/* Scratch: planes [9][C], G g [4 rows][3 columns][C]. Writes u[ξ·step + ci]. */
BODY void kernel2(const float *g, size_t c, float *scratch, float *u, size_t step) {
    float *p = scratch, *t = scratch + 9 * c;
    split9(c, g, p);
    // G g: for each kernel column, the rows' combinations (t[i][col]).
    for (size_t col = 0; col < 3; col++) {
        g2(c, p + col * c, p + (3 + col) * c, p + (6 + col) * c, t + col * c, t + (3 + col) * c, t + (6 + col) * c,
           t + (9 + col) * c);
    }
    // (G g) Gᵀ: the same combinations of each row's columns; row i gives U_4i … U_4i+3.
    for (size_t i = 0; i < 4; i++) {
        float *r = t + 3 * i * c, *o = u + 4 * i * step;
        g2(c, r, r + c, r + 2 * c, o, o + step, o + 2 * step, o + 3 * step);
    }
}

/* Scratch: planes [9][C], G g [6 rows][3 columns][C]. */
BODY void kernel4(const float *g, size_t c, float *scratch, float *u, size_t step) {
    float *p = scratch, *t = scratch + 9 * c;
    split9(c, g, p);
    for (size_t col = 0; col < 3; col++) {
        g4(c, p + col * c, p + (3 + col) * c, p + (6 + col) * c, t + col * c, t + (3 + col) * c, t + (6 + col) * c,
           t + (9 + col) * c, t + (12 + col) * c, t + (15 + col) * c);
    }
    for (size_t i = 0; i < 6; i++) {
        float *r = t + 3 * i * c, *o = u + 6 * i * step;
        g4(c, r, r + c, r + 2 * c, o, o + step, o + 2 * step, o + 3 * step, o + 4 * step, o + 5 * step);
    }
}

/* ---- F(2×2, 3×3): 4×4 input blocks at column 2·t, 16 positions, 2×2 outputs per tile. ---- */

/* Scratch: planes [4 lines][2 phases][G] and rows of Bᵀ d [4][2][G], G = tiles + 1 groups of two columns. */
BODY void input2(const float *lines, size_t line_length, size_t start, size_t n, float *scratch, float *dst,
                 size_t step) {
    size_t g = n + 1;
    float *planes = scratch, *rows = scratch + 8 * g;
    for (size_t k = 0; k < 4; k++) {
        split2(g, lines + k * line_length + start, planes + 2 * k * g, planes + (2 * k + 1) * g);
    }
    // Bᵀ d, one column phase at a time: rows[i][p] from the four lines' plane p.
    for (size_t p = 0; p < 2; p++) {
        float *d = planes + p * g, *o = rows + p * g;
        bt2(g, d, d + 2 * g, d + 4 * g, d + 6 * g, o, o + 2 * g, o + 4 * g, o + 6 * g);
    }
    // (Bᵀ d) B: tile t's columns are phases 0, 1 of group t and 0, 1 of group t + 1.
    for (size_t i = 0; i < 4; i++) {
        float *r = rows + 2 * i * g, *o = dst + 4 * i * step;
        bt2(n, r, r + g, r + 1, r + g + 1, o, o + step, o + 2 * step, o + 3 * step);
    }
}

/* Scratch: Aᵀ M [2 rows][4 columns][n], then two output planes [2][n]. */
BODY void output2(const float *src, size_t step, size_t n, float bias, size_t out_rows, size_t columns, float *scratch,
                  float *out, size_t out_stride) {
    float *a = scratch, *y = scratch + 8 * n, *line = scratch + 10 * n;
    for (size_t q = 0; q < 4; q++) {
        const float *s = src + q * step;
        at2(n, s, s + 4 * step, s + 8 * step, s + 12 * step, a + q * n, a + (4 + q) * n);
    }
    for (size_t i = 0; i < out_rows; i++) {
        float *r = a + 4 * i * n;
        at2(n, r, r + n, r + 2 * n, r + 3 * n, y, y + n);
        float *dst = out + i * out_stride;
        if (columns == 2 * n) {
            join2(n, y, y + n, bias, dst);
        } else {
            join2(n, y, y + n, bias, line);
            memcpy(dst, line, columns * sizeof(float));
        }
    }
}

/* ---- F(4×4, 3×3): 6×6 input blocks at column 4·t, 36 positions, 4×4 outputs per tile. ---- */

/* Scratch: planes [6 lines][4 phases][G] and rows of Bᵀ d [6][4][G], G = tiles + 1 groups of four columns (the
   last group holds the run's two final columns). */
BODY void input4(const float *lines, size_t line_length, size_t start, size_t n, float *scratch, float *dst,
                 size_t step) {
    size_t g = n + 1;
    float *planes = scratch, *rows = scratch + 24 * g;
    for (size_t k = 0; k < 6; k++) {
        const float *l = lines + k * line_length + start;
        float *p = planes + 4 * k * g;
        split4(n, l, p, p + g, p + 2 * g, p + 3 * g);
        p[n] = l[4 * n]; p[g + n] = l[4 * n + 1]; p[2 * g + n] = 0; p[3 * g + n] = 0;
    }
    for (size_t p = 0; p < 4; p++) {
        float *d = planes + p * g, *o = rows + p * g;
        bt4(g, d, d + 4 * g, d + 8 * g, d + 12 * g, d + 16 * g, d + 20 * g,
            o, o + 4 * g, o + 8 * g, o + 12 * g, o + 16 * g, o + 20 * g);
    }
    // Tile t's six columns: phases 0–3 of group t, then phases 0, 1 of group t + 1.
    for (size_t i = 0; i < 6; i++) {
        float *r = rows + 4 * i * g, *o = dst + 6 * i * step;
        bt4(n, r, r + g, r + 2 * g, r + 3 * g, r + 1, r + g + 1,
            o, o + step, o + 2 * step, o + 3 * step, o + 4 * step, o + 5 * step);
    }
}

/* Scratch: Aᵀ M [4 rows][6 columns][n], four output planes [4][n], one line [4n]. */
BODY void output4(const float *src, size_t step, size_t n, float bias, size_t out_rows, size_t columns, float *scratch,
                  float *out, size_t out_stride) {
    float *a = scratch, *y = scratch + 24 * n, *line = scratch + 28 * n;
    for (size_t q = 0; q < 6; q++) {
        const float *s = src + q * step;
        at4(n, s, s + 6 * step, s + 12 * step, s + 18 * step, s + 24 * step, s + 30 * step,
            a + q * n, a + (6 + q) * n, a + (12 + q) * n, a + (18 + q) * n);
    }
    for (size_t i = 0; i < out_rows; i++) {
        float *r = a + 6 * i * n;
        at4(n, r, r + n, r + 2 * n, r + 3 * n, r + 4 * n, r + 5 * n, y, y + n, y + 2 * n, y + 3 * n);
        float *dst = out + i * out_stride;
        if (columns == 4 * n) {
            join4(n, y, y + n, y + 2 * n, y + 3 * n, bias, dst);
        } else {
            join4(n, y, y + n, y + 2 * n, y + 3 * n, bias, line);
            memcpy(dst, line, columns * sizeof(float));
        }
    }
}

size_t storyloom_winograd_input_scratch(size_t m, size_t tiles) { return (m == 2 ? 16 : 48) * (tiles + 1); }
size_t storyloom_winograd_output_scratch(size_t m, size_t tiles) { return (m == 2 ? 12 : 32) * tiles; }
size_t storyloom_winograd_kernel_scratch(size_t m, size_t channels) { return (m == 2 ? 21 : 27) * channels; }

AVX2_TARGET static void kernel_avx2(size_t m, const float *g, size_t c, float *scratch, float *u, size_t step) {
    if (m == 2) kernel2(g, c, scratch, u, step); else kernel4(g, c, scratch, u, step);
}

static void kernel_baseline(size_t m, const float *g, size_t c, float *scratch, float *u, size_t step) {
    if (m == 2) kernel2(g, c, scratch, u, step); else kernel4(g, c, scratch, u, step);
}

AVX2_TARGET static void input_avx2(size_t m, const float *lines, size_t ll, size_t start, size_t n, float *scratch,
                                   float *dst, size_t step) {
    if (m == 2) input2(lines, ll, start, n, scratch, dst, step); else input4(lines, ll, start, n, scratch, dst, step);
}

static void input_baseline(size_t m, const float *lines, size_t ll, size_t start, size_t n, float *scratch, float *dst,
                           size_t step) {
    if (m == 2) input2(lines, ll, start, n, scratch, dst, step); else input4(lines, ll, start, n, scratch, dst, step);
}

AVX2_TARGET static void output_avx2(size_t m, const float *src, size_t step, size_t n, float bias, size_t rows,
                                    size_t columns, float *scratch, float *out, size_t os) {
    if (m == 2) output2(src, step, n, bias, rows, columns, scratch, out, os);
    else output4(src, step, n, bias, rows, columns, scratch, out, os);
}

static void output_baseline(size_t m, const float *src, size_t step, size_t n, float bias, size_t rows, size_t columns,
                            float *scratch, float *out, size_t os) {
    if (m == 2) output2(src, step, n, bias, rows, columns, scratch, out, os);
    else output4(src, step, n, bias, rows, columns, scratch, out, os);
}

/* Set by tests on their own thread, so both paths are checked on a CPU that has AVX2. */
static _Thread_local int baseline_here;

void storyloom_winograd_baseline_on_this_thread(int on) { baseline_here = on; }

static int has_avx2(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return cached && !baseline_here;
}

void storyloom_winograd_input_run(size_t m, const float *lines, size_t line_length, size_t start, size_t tiles,
                                  float *scratch, float *dst, size_t step) {
    if (tiles == 0) return;
    if (has_avx2()) input_avx2(m, lines, line_length, start, tiles, scratch, dst, step);
    else input_baseline(m, lines, line_length, start, tiles, scratch, dst, step);
}

void storyloom_winograd_output_run(size_t m, const float *src, size_t step, size_t tiles, float bias, size_t rows,
                                   size_t columns, float *scratch, float *out, size_t out_stride) {
    if (tiles == 0) return;
    if (has_avx2()) output_avx2(m, src, step, tiles, bias, rows, columns, scratch, out, out_stride);
    else output_baseline(m, src, step, tiles, bias, rows, columns, scratch, out, out_stride);
}

void storyloom_winograd_kernel_row(size_t m, const float *kernels, size_t channels, float *scratch, float *u, size_t step) {
    if (channels == 0) return;
    if (has_avx2()) kernel_avx2(m, kernels, channels, scratch, u, step);
    else kernel_baseline(m, kernels, channels, scratch, u, step);
}
