/* End-to-end program: memtide's own file descriptors never show up among the program's low numbers. Programs
 * check which descriptors they hold (CPython's subprocess tests scan every number with fstat and fail on an
 * unexpected one; daemons close everything above 2), so a /proc or cgroup file the monitor thread has open
 * for a moment at number 3 or 4 is visible to them. Waits for the process's segment (memtide's one-time opens:
 * the segment file, the monitor's first reads, each moved up at once, are done then), then scans 3..63 with
 * fcntl(F_GETFD) for half a second: hundreds of monitor ticks (the driver sets MEMTIDE_INTERVAL=1ms), with
 * allocations between scans so that hooks run too.
 * Output: "ok scans=<n>". */
#include <dirent.h>
#include <fcntl.h>
#include <time.h>

#include "e2e_check.h"

enum { kLowestChecked = 3, kHighestChecked = 63 };

static double Now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int SegmentExists(const char* directory) {
  char prefix[64];
  snprintf(prefix, sizeof(prefix), "memtide.%ld.", (long)getpid());  /* MEMTIDE_SEGMENT_PREFIX, segment.h */
  DIR* listing = opendir(directory);
  if (listing == NULL) return 0;
  int found = 0;
  for (struct dirent* entry; !found && (entry = readdir(listing)) != NULL;) {
    found = strncmp(entry->d_name, prefix, strlen(prefix)) == 0;
  }
  closedir(listing);
  return found;
}

int main(void) {
  E2eRequireApi();
  const char* directory = getenv("MEMTIDE_DIR");
  E2E_CHECK(directory != NULL, "MEMTIDE_DIR is not set");
  const double wait_start = Now();
  while (!SegmentExists(directory)) {
    E2E_CHECK(Now() - wait_start < 10, "no segment in %s after 10 s", directory);
    struct timespec pause = {0, 1000000};
    nanosleep(&pause, NULL);
  }
  /* Whatever the parent left open stays out of the check. */
  char inherited[kHighestChecked + 1] = {0};
  for (int fd = kLowestChecked; fd <= kHighestChecked; ++fd) inherited[fd] = fcntl(fd, F_GETFD) >= 0;
  const double start = Now();
  long scans = 0;
  for (; Now() - start < 0.5; ++scans) {
    for (int fd = kLowestChecked; fd <= kHighestChecked; ++fd) {
      if (inherited[fd] || fcntl(fd, F_GETFD) < 0) continue;
      char link[64], target[256];
      snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
      ssize_t length = readlink(link, target, sizeof(target) - 1);
      target[length > 0 ? length : 0] = '\0';
      E2E_FAIL("descriptor %d (%s) is open in the program, which never opened it (scan %ld)", fd, target, scans);
    }
    void* block = malloc(64 + (size_t)(scans % 512));
    E2eEscape(block);
    free(block);
  }
  E2eWriteLine(1, "ok scans=%ld", scans);
  return 0;
}
