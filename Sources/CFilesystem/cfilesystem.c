#include "cfilesystem.h"
#include <sys/vfs.h>

long long storyloom_filesystem_type(const char *path) {
    struct statfs fs;
    if (statfs(path, &fs) != 0) return -1;
    // f_type is a signed word; the magics are 32-bit values, some with the top bit set (CIFS 0xFF534D42).
    return (long long)(unsigned int)fs.f_type;
}
