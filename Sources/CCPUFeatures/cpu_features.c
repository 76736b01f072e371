#include "cpu_features.h"

sl_cpu_features sl_cpu_features_detect(void) {
    sl_cpu_features f = {0, 0, 0, 0, 0};
#if defined(__x86_64__) || defined(_M_X64)
    // __builtin_cpu_supports also checks that the OS saves the AVX/AVX-512 registers (XGETBV),
    // which is what OpenBLAS itself checks before choosing AVX2 kernels.
    __builtin_cpu_init();
    f.is_x86_64 = 1;
    f.avx = __builtin_cpu_supports("avx") != 0;
    f.avx2 = __builtin_cpu_supports("avx2") != 0;
    f.fma = __builtin_cpu_supports("fma") != 0;
    f.avx512f = __builtin_cpu_supports("avx512f") != 0;
#endif
    return f;
}
