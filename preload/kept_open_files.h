// The files memtide re-reads all the time (its /proc and cgroup statistics, every monitor tick) stay open at
// descriptor numbers above those programs use, instead of being opened and closed at the lowest free number.
// Programs look at their own descriptors: CPython's subprocess tests fstat every number and fail on one they
// did not open, daemons close everything above 2, fd-leak checkers list /proc/self/fd. A monitor thread that
// holds /proc/self/stat at number 3 for a few microseconds every 100 ms is caught by them sooner or later.
//
// A kept file is re-read with pread from offset 0 (/proc and cgroup files regenerate their text then). Before
// each read its descriptor is checked with fstat against the device and inode it was opened with: a program
// that closed it (closefrom, close_range) or reused the number is left alone, and the file is opened anew.
// Allocation-free; one mutex, only tried (a busy cache, e.g. a reader interrupted by a signal whose handler
// reads too, falls back to a plain open).
#ifndef MEMTIDE_PRELOAD_KEPT_OPEN_FILES_H_
#define MEMTIDE_PRELOAD_KEPT_OPEN_FILES_H_

#include <stddef.h>
#include <sys/types.h>

namespace memtide {

// The preload turns this on at start-up; the CLI, which reads other processes' files once, never does.
void KeepReadFilesOpen();
bool ReadFilesKeptOpen();

// The whole small file at `path` into `buffer` (NUL-terminated) through its kept descriptor. Returns the
// length, -1 when the file cannot be read, or kNotKept when the cache could not take it (full, busy): the
// caller then opens it the plain way.
inline constexpr ssize_t kNotKept = -2;
ssize_t ReadThroughKeptFile(const char* path, char* buffer, size_t size);

// Moves a descriptor memtide opened to a number above the program's usual ones (close-on-exec kept); returns
// the new number, or `fd` itself when none is free up there.
int MoveAboveProgramDescriptors(int fd);

// fork() child: the kept /proc/self files are the parent's; close them (they are ours) and start over.
void CloseKeptFilesInChild();

}  // namespace memtide

#endif  // MEMTIDE_PRELOAD_KEPT_OPEN_FILES_H_
