/* A traced daemon's descriptor table is its own. libunwind (memtide's fallback unwinder, the only one with
 * MEMTIDE_TRACE_FAST_UNWIND=0) checks memory through a pipe; memtide gives it one that is not in the program's
 * table. Were it there, a daemon that closes everything above 2 and opens its files would get its numbers back,
 * and libunwind's next check would read from one of the daemon's files and write into the other; and a program
 * that lists its descriptors would see two it never opened. At the start of main no close-on-exec descriptor
 * may be open (inherited ones are not close-on-exec: they survived exec); then the program closes 3.., opens
 * two files of its own (numbers 3 and 4), allocates from 60 stacks (every allocation is unwound), writes a
 * line to each file, checks both descriptors are still its files and that nothing else was opened.
 * Usage: daemon_files FIRST SECOND [pipe-above-999]; with the third argument, descriptors from 1000 on do not
 * count (where process_vm_readv is refused, memtide gives libunwind a real pipe there), and without it the
 * program checks whether this machine lets it read itself that way (gVisor does not) and allows them if not.
 * Output: "ok fds 3 4". */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "descriptor_checks.h"

enum { kStacks = 60 };
static void* g_kept[kStacks];

/* Each depth is a new stack, so each allocation is unwound afresh. */
__attribute__((noinline)) static void Nest(int depth, int target) {
  if (depth == target) {
    g_kept[target] = malloc(100 + (size_t)target);
    return;
  }
  Nest(depth + 1, target);
  __asm__ volatile("" ::: "memory");
}

static int g_lowest_ignored = -1; /* descriptors from this number on are not counted; -1: none */

/* The first close-on-exec descriptor other than `mine_a` and `mine_b`, with its target in `target`; -1 if none. */
static int ForeignDescriptor(int mine_a, int mine_b, char* target, size_t size) {
  DIR* listing = opendir("/proc/self/fd");
  if (listing == NULL) return -1;
  int found = -1;
  for (struct dirent* entry; found < 0 && (entry = readdir(listing)) != NULL;) {
    if (entry->d_name[0] == '.') continue;
    const int fd = atoi(entry->d_name);
    if (fd == dirfd(listing) || fd == mine_a || fd == mine_b) continue;
    if (g_lowest_ignored >= 0 && fd >= g_lowest_ignored) continue;
    const int flags = fcntl(fd, F_GETFD);
    if (flags >= 0 && (flags & FD_CLOEXEC) != 0) found = fd;
  }
  closedir(listing);
  if (found >= 0) DescriptorTarget(found, target, size);
  return found;
}

static int SameFile(int fd, const char* path) {
  struct stat by_fd, by_path;
  return fstat(fd, &by_fd) == 0 && stat(path, &by_path) == 0 && by_fd.st_ino == by_path.st_ino &&
         by_fd.st_dev == by_path.st_dev;
}

int main(int argc, char** argv) {
  if (argc == 4 && strcmp(argv[3], "pipe-above-999") == 0) {
    g_lowest_ignored = 1000;
  } else if (argc != 3) {
    return 2;
  } else {
    char probe = 1, copy = 0;
    struct iovec local = {&copy, 1}, remote = {&probe, 1};
    if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) != 1) g_lowest_ignored = 1000;
  }
  char target[256];
  int foreign = ForeignDescriptor(-1, -1, target, sizeof(target));
  if (foreign >= 0) {
    printf("descriptor %d (%s) was opened before main\n", foreign, target);
    return 1;
  }
  close_range(3, ~0U, 0);
  int first = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int second = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (first < 0 || second < 0) return 3;
  for (int i = 0; i < kStacks; ++i) Nest(0, i);
  const char line[] = "program data\n";
  if (write(first, line, sizeof(line) - 1) != (ssize_t)(sizeof(line) - 1) ||
      write(second, line, sizeof(line) - 1) != (ssize_t)(sizeof(line) - 1)) {
    printf("cannot write to the program's files: %s\n", strerror(errno));
    return 1;
  }
  if (!SameFile(first, argv[1]) || !SameFile(second, argv[2])) {
    printf("descriptors %d and %d are no longer the program's files\n", first, second);
    return 1;
  }
  foreign = ForeignDescriptor(first, second, target, sizeof(target));
  if (foreign >= 0) {
    printf("descriptor %d (%s) appeared while the program allocated\n", foreign, target);
    return 1;
  }
  for (int i = 0; i < kStacks; ++i) free(g_kept[i]);
  printf("ok fds %d %d\n", first, second);
  return 0;
}
