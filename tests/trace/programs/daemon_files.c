/* A traced daemon's own files stay its own. libunwind (memtide's fallback unwinder, the only one with
 * MEMTIDE_TRACE_FAST_UNWIND=0) keeps a pipe for its memory checks; at the program's lowest free numbers a daemon
 * that closes everything above 2 and opens its files would get them back, and libunwind's next check would close
 * them. At the start of main no descriptor in 3..999 may have been opened before main; then the program closes
 * 3.., opens two files of its own (numbers 3 and 4), allocates from 60 stacks (every allocation is unwound),
 * writes a line to each file, and checks both descriptors are still its files. Output: "ok fds 3 4". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

static int SameFile(int fd, const char* path) {
  struct stat by_fd, by_path;
  return fstat(fd, &by_fd) == 0 && stat(path, &by_path) == 0 && by_fd.st_ino == by_path.st_ino &&
         by_fd.st_dev == by_path.st_dev;
}

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  for (int fd = 3; fd < 1000; ++fd) {
    /* Inherited descriptors (a test runner's log) survived exec, so they are not close-on-exec: one that is
     * was opened in this process before main. */
    const int flags = fcntl(fd, F_GETFD);
    if (flags < 0 || (flags & FD_CLOEXEC) == 0) continue;
    char target[256];
    DescriptorTarget(fd, target, sizeof(target));
    printf("descriptor %d (%s) was opened before main\n", fd, target);
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
  for (int i = 0; i < kStacks; ++i) free(g_kept[i]);
  printf("ok fds %d %d\n", first, second);
  return 0;
}
