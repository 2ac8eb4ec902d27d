/* End-to-end program: memtide's own file descriptors never show up in the program's descriptor table.
 * Programs check which descriptors they hold (CPython's subprocess tests fstat every number and compare
 * the set; daemons close everything above 2), and the monitor thread opens /proc and cgroup files every
 * tick and creates the segment file. Scans 3..1023 with fcntl(F_GETFD) from the start of main until the
 * process's segment exists and half a second has passed: hundreds of monitor ticks (the driver sets
 * MEMTIDE_INTERVAL=1ms) and the segment's creation, with allocations between scans so that hooks run too.
 * Where unshare(CLONE_FILES) is refused (container seccomp profiles), memtide cannot keep its descriptors
 * apart: a descriptor found there is reported as a skip, not a failure.
 * Output: "ok scans=<n>" or "ok skipped: ...". */
#define _GNU_SOURCE
#include <fcntl.h>
#include <time.h>

#include "descriptor_checks.h"
#include "e2e_check.h"

enum { kLowestChecked = 3, kHighestChecked = 1023 };

int main(void) {
  E2eRequireApi();
  /* Whatever the parent left open stays out of the check. */
  static char inherited[kHighestChecked + 1];
  for (int fd = kLowestChecked; fd <= kHighestChecked; ++fd) inherited[fd] = fcntl(fd, F_GETFD) >= 0;
  const char* directory = getenv("MEMTIDE_DIR");
  E2E_CHECK(directory != NULL, "MEMTIDE_DIR is not set");
  const double start = E2eNowSeconds();
  long scans = 0;
  for (int segment_seen = 0; !segment_seen || E2eNowSeconds() - start < 0.5; ++scans) {
    char target[256];
    const int fd = FirstNewDescriptor(inherited, kLowestChecked, kHighestChecked, target, sizeof(target));
    if (fd >= 0) {
      if (!UnshareAllowed()) {
        E2eWriteLine(1, "ok skipped: unshare(CLONE_FILES) is refused here, memtide's descriptors are shared");
        return 0;
      }
      E2E_FAIL("descriptor %d (%s) is open in the program, which never opened it (scan %ld)", fd, target, scans);
    }
    void* block = malloc(64 + (size_t)(scans % 512));
    E2eEscape(block);
    free(block);
    if (!segment_seen) segment_seen = SegmentFileExists(directory);
    E2E_CHECK(E2eNowSeconds() - start < 10, "no segment in %s after 10 s", directory);
  }
  E2eWriteLine(1, "ok scans=%ld", scans);
  return 0;
}
