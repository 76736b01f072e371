#ifndef STORYLOOM_HEAP_H
#define STORYLOOM_HEAP_H

// glibc's malloc settings (<malloc.h> is not part of Swift's Glibc module).

#ifdef __cplusplus
extern "C" {
#endif

// Keeps freed blocks for reuse: no chunk mmaps (M_MMAP_MAX 0) and no trimming of the heap's top below
// 2 GB (M_TRIM_THRESHOLD). Returns 1 when both settings took, 0 otherwise (not glibc, or refused).
int sl_heap_reuse_freed_blocks(void);

#ifdef __cplusplus
}
#endif

#endif
