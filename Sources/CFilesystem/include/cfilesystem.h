#ifndef STORYLOOM_CFILESYSTEM_H
#define STORYLOOM_CFILESYSTEM_H

/// The filesystem type (statfs's f_type magic) of the filesystem holding `path`; -1 with errno set on failure.
/// In C because Swift's Glibc module does not export <sys/vfs.h>.
long long storyloom_filesystem_type(const char *path);

#endif
