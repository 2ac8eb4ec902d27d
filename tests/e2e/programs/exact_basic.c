/* End-to-end program: the smallest exactness check, used wherever the interesting part is the
 * environment (exec'd children, a bad option value, an unusable MEMTIDE_DIR). Mallocs and frees
 * sentinels, checks every delta, marks, and with argument "linger" lives past the segment delay and a few
 * monitor intervals so that everything memtide does lazily has happened. Output: "exact_basic ok". */
#include <time.h>

#include "e2e_check.h"

static void CheckRound(size_t bytes) {
  struct memtide_heap_stats before = E2eStats();
  void *p = malloc(bytes);
  E2E_CHECK(p != NULL, "malloc(%zu) failed", bytes);
  E2eEscape(p);
  size_t usable = malloc_usable_size(p);
  struct memtide_heap_stats allocated = E2eStats();
  E2E_CHECK_HEAP_DELTA(before, allocated, usable, 1, 0, usable);
  free(p);
  struct memtide_heap_stats freed = E2eStats();
  E2E_CHECK_HEAP_DELTA(allocated, freed, 0 - (uint64_t)usable, 0, 1, 0);
}

int main(int argc, char **argv) {
  E2eRequireApi();
  int linger = argc > 1 && strcmp(argv[1], "linger") == 0;
  CheckRound(11001);
  memtide_mark("exact_basic");
  if (linger) {
    struct timespec nap = {0, 150 * 1000 * 1000};  // > MEMTIDE_SEGMENT_DELAY and a few intervals
    nanosleep(&nap, NULL);
  }
  CheckRound(12001);
  E2eWriteLine(1, "exact_basic ok");
  return 0;
}
