#ifndef STORYLOOM_EXP_CORE_H
#define STORYLOOM_EXP_CORE_H

/* The exponential's range reduction and polynomial, shared by vector_math.c (exp, erf, GELU, SiLU) and
   attention_kernels.c (softmax): x = n·ln2 + r with n = round(x·log2 e), e^r by a degree-6 polynomial. */

#define EXP_LO (-87.33654f)
#define EXP_HI 88.72283f
#define LOG2E 1.44269504088896341f
#define ROUND_MAGIC 12582912.0f /* 1.5 * 2^23: adding it rounds to an integer */
#define LN2_HI 0.693145751953125f
#define LN2_LO 1.42860682030941723212e-6f

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define STORYLOOM_X86 1
#define AVX2_TARGET __attribute__((target("avx2,fma")))

/* e^r for c already clamped to [EXP_LO, EXP_HI]; `*shifted` receives c·log2 e + ROUND_MAGIC, whose low bits
   hold n + 0x400000, for the caller to build 2^n. */
AVX2_TARGET __attribute__((always_inline)) static inline __m256 exp8_reduced(__m256 c, __m256 *shifted) {
    const __m256 magic = _mm256_set1_ps(ROUND_MAGIC);
    __m256 t = _mm256_fmadd_ps(c, _mm256_set1_ps(LOG2E), magic);
    __m256 n = _mm256_sub_ps(t, magic);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), c);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LO), r);
    __m256 p = _mm256_set1_ps(1.0f / 720);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    *shifted = t;
    return p;
}

/* The same for sixteen lanes (AVX-512F): lane for lane the same operations, so the same bits. */
__attribute__((target("avx512f"), always_inline)) static inline __m512 exp16_reduced(__m512 c, __m512 *shifted) {
    const __m512 magic = _mm512_set1_ps(ROUND_MAGIC);
    __m512 t = _mm512_fmadd_ps(c, _mm512_set1_ps(LOG2E), magic);
    __m512 n = _mm512_sub_ps(t, magic);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI), c);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_LO), r);
    __m512 p = _mm512_set1_ps(1.0f / 720);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    *shifted = t;
    return p;
}
#endif

#endif
