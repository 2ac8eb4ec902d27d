/* End-to-end program: memtide's hooks leave errno alone on success. A program may set errno, allocate,
 * and read errno afterwards (perror after cleanup, libraries that save errno around malloc). Loops long
 * enough to cross MEMTIDE_SEGMENT_DELAY and several monitor intervals, so that whatever memtide does
 * lazily from a hook (segment creation, option parsing, thread start) happens inside the loop.
 * Output: "ok iterations=<n>". */
#include <errno.h>

#include "e2e_check.h"

#define CHECK_ERRNO(call)                                                          \
  do {                                                                             \
    if (errno != kSentinelErrno)                                                   \
      E2E_FAIL("errno changed by %s in iteration %d: %d", call, iteration, errno); \
  } while (0)

enum { kSentinelErrno = 4242 };

int main(void) {
  E2eRequireApi();
  double start = E2eNowSeconds();
  int iteration = 0;
  for (; iteration < 100 || E2eNowSeconds() - start < 0.3; ++iteration) {
    errno = kSentinelErrno;
    void *a = malloc(11001);
    CHECK_ERRNO("malloc");
    E2eEscape(a);
    void *b = calloc(3, 4001);
    CHECK_ERRNO("calloc");
    void *c = realloc(a, 22001);
    CHECK_ERRNO("realloc");
    void *d = NULL;
    E2E_CHECK(posix_memalign(&d, 64, 12001) == 0, "posix_memalign failed");
    CHECK_ERRNO("posix_memalign");
    void *e = aligned_alloc(256, 256 * 40);
    CHECK_ERRNO("aligned_alloc");
    E2E_CHECK(b && c && e, "allocation failed");
    (void)malloc_usable_size(c);
    CHECK_ERRNO("malloc_usable_size");
    free(b);
    CHECK_ERRNO("free");
    free(c);
    free(d);
    free(e);
    free(NULL);
    CHECK_ERRNO("free");
    void *f = malloc(300001);  // mmap-backed in glibc
    CHECK_ERRNO("malloc(large)");
    free(f);
    CHECK_ERRNO("free(large)");
    if (iteration % 16 == 0) {
      struct timespec nap = {0, 2 * 1000 * 1000};
      nanosleep(&nap, NULL);
    }
  }
  E2eWriteLine(1, "ok iterations=%d", iteration);
  return 0;
}
