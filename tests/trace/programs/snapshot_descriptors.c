/* A snapshot file is written without its descriptor ever showing in the program's table (memtide's own
 * file work runs on a thread with a descriptor table of its own, preload/private_descriptors.h). Keeps blocks
 * live from 50 distinct stacks (6 blocks of 1000 + depth bytes at each depth 0..49), waits until the process has
 * its segment (the monitor has started that thread), then one thread calls memtide_snapshot(argv[1]) 40
 * times while the main thread scans descriptors 3..1023 with fcntl(F_GETFD) until it is done.
 * Where unshare(CLONE_FILES) is refused, a descriptor found is reported as a skip.
 * Output: "ok scans=<n> snapshots=<n>" or "ok skipped: ...". */
#define _GNU_SOURCE
#include <fcntl.h>
#include <memtide/memtide.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "descriptor_checks.h"

enum { kLowestChecked = 3, kHighestChecked = 1023, kDepths = 50, kBlocks = 300, kSnapshots = 40 };

static void* g_kept[kBlocks];
static const char* g_snapshot_path;
static int g_snapshot_failures;
static volatile int g_done;

/* Every depth is a different stack (all within MEMTIDE_TRACE_FRAMES): block i is allocated under
 * i % kDepths + 1 frames of Nest. */
__attribute__((noinline)) static void Nest(int depth, int block) {
  if (depth == block % kDepths) {
    g_kept[block] = malloc(1000 + (size_t)depth);
    return;
  }
  Nest(depth + 1, block);
  __asm__ volatile("" ::: "memory"); /* not a tail call: each level keeps its frame */
}

static void* TakeSnapshots(void* unused) {
  for (int i = 0; i < kSnapshots; ++i) {
    if (memtide_snapshot(g_snapshot_path) != 0) ++g_snapshot_failures;
  }
  __atomic_store_n(&g_done, 1, __ATOMIC_RELEASE);
  return unused;
}

int main(int argc, char** argv) {
  if (argc < 2 || !memtide_snapshot) return 2;
  g_snapshot_path = argv[1];
  const char* directory = getenv("MEMTIDE_DIR");
  if (directory == NULL) return 2;
  for (int i = 0; i < kBlocks; ++i) Nest(0, i);
  for (int i = 0; i < 2000 && !SegmentFileExists(directory); ++i) usleep(5000);
  if (!SegmentFileExists(directory)) {
    fprintf(stderr, "no segment in %s after 10 s\n", directory);
    return 1;
  }
  static char inherited[kHighestChecked + 1];
  for (int fd = kLowestChecked; fd <= kHighestChecked; ++fd) inherited[fd] = fcntl(fd, F_GETFD) >= 0;
  pthread_t thread;
  if (pthread_create(&thread, NULL, TakeSnapshots, NULL) != 0) return 1;
  long scans = 0;
  for (; !__atomic_load_n(&g_done, __ATOMIC_ACQUIRE); ++scans) {
    char target[256];
    const int fd = FirstNewDescriptor(inherited, kLowestChecked, kHighestChecked, target, sizeof(target));
    if (fd >= 0) {
      pthread_join(thread, NULL);
      if (!UnshareAllowed()) {
        printf("ok skipped: unshare(CLONE_FILES) is refused here, memtide's descriptors are shared\n");
        return 0;
      }
      printf("descriptor %d (%s) is open in the program, which never opened it (scan %ld)\n", fd, target, scans);
      return 1;
    }
  }
  pthread_join(thread, NULL);
  for (int i = 0; i < kBlocks; ++i) free(g_kept[i]);
  printf("ok scans=%ld snapshots=%d failed=%d\n", scans, kSnapshots, g_snapshot_failures);
  return 0;
}
