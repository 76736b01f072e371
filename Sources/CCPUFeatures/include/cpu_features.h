#ifndef STORYLOOM_CPU_FEATURES_H
#define STORYLOOM_CPU_FEATURES_H

// The x86 instruction-set extensions that decide which OpenBLAS kernels can run, as the CPU and the
// operating system report them (cpuid plus XGETBV, via the compiler's __builtin_cpu_supports).
// On other architectures every flag is 0.

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int is_x86_64;
    int avx;
    int avx2;
    int fma;
    int avx512f;
} sl_cpu_features;

sl_cpu_features sl_cpu_features_detect(void);

#ifdef __cplusplus
}
#endif

#endif
