#include "heap.h"
#include <limits.h>   // also defines __GLIBC__ where the C library is glibc

#if defined(__GLIBC__)
#include <malloc.h>

int sl_heap_reuse_freed_blocks(void) {
    int mmaps = mallopt(M_MMAP_MAX, 0);
    int trim = mallopt(M_TRIM_THRESHOLD, INT_MAX);
    return mmaps == 1 && trim == 1;
}
#else
int sl_heap_reuse_freed_blocks(void) { return 0; }
#endif
