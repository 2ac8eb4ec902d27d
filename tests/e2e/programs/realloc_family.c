/* End-to-end program: realloc counts as one free of the old block plus one allocation of the new one
 * (grow, shrink, in place or moved); realloc(NULL, n) is a plain allocation; realloc(p, 0) that frees
 * (glibc) counts one free and nothing else. Output: "ok". */
#include "e2e_check.h"

/* Reallocs p to `bytes` and checks the counters moved by exactly old-out/new-in. */
static void *CheckedRealloc(void *p, size_t bytes) {
  size_t old_usable = p ? malloc_usable_size(p) : 0;
  struct memtide_heap_stats before = E2eStats();
  void *q = realloc(p, bytes);
  struct memtide_heap_stats after = E2eStats();
  E2E_CHECK(q != NULL, "realloc(%p, %zu) failed", p, bytes);
  E2eEscape(q);
  size_t new_usable = malloc_usable_size(q);
  E2E_CHECK(new_usable >= bytes, "realloc(%zu): usable size %zu too small", bytes, new_usable);
  E2E_CHECK_HEAP_DELTA(before, after, new_usable - old_usable, 1, p ? 1 : 0, new_usable);
  return q;
}

int main(void) {
  E2eRequireApi();
  void *p = CheckedRealloc(NULL, 11001);  // realloc(NULL, n) == malloc(n)
  memset(p, 1, 11001);
  p = CheckedRealloc(p, 22001);   // grow
  p = CheckedRealloc(p, 22011);   // grow, usually in place
  p = CheckedRealloc(p, 1001);    // shrink
  p = CheckedRealloc(p, 300001);  // grow past the mmap threshold
  p = CheckedRealloc(p, 12001);   // shrink back into the heap

  size_t usable = malloc_usable_size(p);
  struct memtide_heap_stats before = E2eStats();
  void *q = realloc(p, 0);
  struct memtide_heap_stats after = E2eStats();
  if (q == NULL) {  // glibc: frees p
    E2E_CHECK_HEAP_DELTA(before, after, 0 - (uint64_t)usable, 0, 1, 0);
  } else {  // an allocator that returns a minimum-size block
    size_t q_usable = malloc_usable_size(q);
    E2E_CHECK_HEAP_DELTA(before, after, q_usable - usable, 1, 1, q_usable);
    free(q);
  }
  E2eWriteLine(1, "ok");
  return 0;
}
