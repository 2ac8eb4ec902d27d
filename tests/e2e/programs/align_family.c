/* End-to-end program: every aligned or array allocation function returns correctly aligned memory and
 * is counted exactly, allocation and free: posix_memalign, aligned_alloc, memalign, valloc, pvalloc,
 * reallocarray. Output: "ok". */
#include <errno.h>

#include "e2e_check.h"

/* Checks one fresh block: alignment, usable size and the exact counter deltas, then frees it. */
static void CheckBlock(const char *what, void *p, size_t bytes, size_t alignment,
                       const struct memtide_heap_stats *before) {
  struct memtide_heap_stats after = E2eStats();
  E2E_CHECK(p != NULL, "%s returned NULL", what);
  E2eEscape(p);
  E2E_CHECK(((uintptr_t)p & (alignment - 1)) == 0, "%s: %p not aligned to %zu", what, p, alignment);
  size_t usable = malloc_usable_size(p);
  E2E_CHECK(usable >= bytes, "%s: usable %zu < requested %zu", what, usable, bytes);
  E2E_CHECK_HEAP_DELTA(*before, after, usable, 1, 0, usable);
  memset(p, 0x33, bytes);
  free(p);
  struct memtide_heap_stats freed = E2eStats();
  E2E_CHECK_HEAP_DELTA(after, freed, 0 - (uint64_t)usable, 0, 1, 0);
}

int main(void) {
  E2eRequireApi();
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  static const size_t kAlignments[] = {16, 64, 256, 4096, 65536};
  for (size_t i = 0; i < sizeof(kAlignments) / sizeof(kAlignments[0]); ++i) {
    size_t alignment = kAlignments[i];
    struct memtide_heap_stats before = E2eStats();
    void *p = NULL;
    int rc = posix_memalign(&p, alignment, 11001);
    E2E_CHECK_EQ("posix_memalign result", rc, 0);
    CheckBlock("posix_memalign", p, 11001, alignment, &before);

    before = E2eStats();
    p = aligned_alloc(alignment, 12288);  // C11: a multiple of the alignment
    CheckBlock("aligned_alloc", p, 12288, alignment, &before);

    before = E2eStats();
    p = memalign(alignment, 13001);
    CheckBlock("memalign", p, 13001, alignment, &before);
  }

  struct memtide_heap_stats before = E2eStats();
  void *p = valloc(14001);
  CheckBlock("valloc", p, 14001, page, &before);

  before = E2eStats();
  p = pvalloc(15001);  // rounds the size up to whole pages
  CheckBlock("pvalloc", p, (15001 + page - 1) / page * page, page, &before);

  before = E2eStats();
  p = reallocarray(NULL, 16, 1001);
  CheckBlock("reallocarray(NULL)", p, 16 * 1001, 16, &before);

  /* reallocarray of a live block: one free of the old block, one allocation of the new one. */
  void *q = malloc(1001);
  E2eEscape(q);
  size_t old_usable = malloc_usable_size(q);
  before = E2eStats();
  errno = 0;
  void *r = reallocarray(q, 17, 1001);
  struct memtide_heap_stats after = E2eStats();
  E2E_CHECK(r != NULL, "reallocarray grow failed");
  size_t new_usable = malloc_usable_size(r);
  E2E_CHECK_HEAP_DELTA(before, after, new_usable - old_usable, 1, 1, new_usable);
  free(r);
  E2eWriteLine(1, "ok");
  return 0;
}
