/* End-to-end program: anonymous mappings the program makes (mmap, mmap64, mremap, private or shared)
 * are counted in mmap_current_bytes, rounded up to pages, exactly; munmap of part of one subtracts that
 * part; file mappings are not counted; the heap counters do not move. Output: "ok". */
#define _GNU_SOURCE
#include <sys/mman.h>

#include "e2e_check.h"

static size_t g_page;
static struct memtide_heap_stats g_start;
static uint64_t g_live;      // bytes of anonymous mapping this program holds now
static uint64_t g_max_live;  // and at most

static void Expect(const char *what, int64_t change) {
  g_live += (uint64_t)change;
  if (g_live > g_max_live) g_max_live = g_live;
  struct memtide_heap_stats now = E2eStats();
  E2E_CHECK(now.mmap_current_bytes - g_start.mmap_current_bytes == g_live,
            "%s: mmap_current_bytes is start + %lld, want start + %llu", what,
            (long long)(now.mmap_current_bytes - g_start.mmap_current_bytes), (unsigned long long)g_live);
  E2E_CHECK(now.current_bytes == g_start.current_bytes, "%s: heap current_bytes moved by %lld", what,
            (long long)(now.current_bytes - g_start.current_bytes));
}

static void *Map(size_t bytes, int flags, int fd) {
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, flags, fd, 0);
  E2E_CHECK(p != MAP_FAILED, "mmap(%zu) failed", bytes);
  return p;
}

int main(void) {
  E2eRequireApi();
  g_page = (size_t)sysconf(_SC_PAGESIZE);
  g_start = E2eStats();

  char *a = Map(11001, MAP_PRIVATE | MAP_ANONYMOUS, -1);  // 3 pages
  Expect("mmap(11001) anonymous", (int64_t)(3 * g_page));

  char path[] = "/tmp/memtide_e2e_mmap_XXXXXX";
  int fd = mkstemp(path);
  E2E_CHECK(fd >= 0, "mkstemp failed");
  unlink(path);
  E2E_CHECK(ftruncate(fd, 13001) == 0, "ftruncate failed");
  char *file_private = Map(13001, MAP_PRIVATE, fd);
  char *file_shared = Map(13001, MAP_SHARED, fd);
  file_private[0] = file_shared[0] = 1;
  Expect("file mappings", 0);
  E2E_CHECK(munmap(file_private, 13001) == 0 && munmap(file_shared, 13001) == 0, "munmap failed");
  close(fd);
  Expect("munmap of file mappings", 0);

  E2E_CHECK(munmap(a + 2 * g_page, g_page) == 0, "munmap failed");
  Expect("munmap of the last page", -(int64_t)g_page);

  char *b = mremap(a, 2 * g_page, 5 * g_page, MREMAP_MAYMOVE);
  E2E_CHECK(b != MAP_FAILED, "mremap grow failed");
  b[5 * g_page - 1] = 1;
  Expect("mremap 2 -> 5 pages", (int64_t)(3 * g_page));

  char *c = mremap(b, 5 * g_page, 1 * g_page, 0);
  E2E_CHECK(c == b, "mremap shrink failed");
  Expect("mremap 5 -> 1 page", -(int64_t)(4 * g_page));

  void *shared = mmap64(NULL, 12001, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  E2E_CHECK(shared != MAP_FAILED, "mmap64 failed");
  Expect("mmap64(12001) shared anonymous", (int64_t)(3 * g_page));

  /* A hole in the middle, then one munmap over the whole range that includes the hole. */
  char *d = Map(4 * g_page, MAP_PRIVATE | MAP_ANONYMOUS, -1);
  Expect("mmap 4 pages", (int64_t)(4 * g_page));
  E2E_CHECK(munmap(d + g_page, g_page) == 0, "munmap failed");
  Expect("munmap of a middle page", -(int64_t)g_page);
  E2E_CHECK(munmap(d, 4 * g_page) == 0, "munmap failed");
  Expect("munmap over a range with a hole", -(int64_t)(3 * g_page));

  E2E_CHECK(munmap(c, g_page) == 0 && munmap(shared, 12001) == 0, "munmap failed");
  Expect("munmap of everything", -(int64_t)(4 * g_page));

  struct memtide_heap_stats end = E2eStats();
  uint64_t want_peak = g_start.mmap_current_bytes + g_max_live;
  if (g_start.mmap_peak_bytes > want_peak) want_peak = g_start.mmap_peak_bytes;
  E2E_CHECK_EQ("mmap_peak_bytes", end.mmap_peak_bytes, want_peak);
  E2eWriteLine(1, "ok");
  return 0;
}
