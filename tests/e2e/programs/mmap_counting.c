/* End-to-end program: anonymous mappings the program makes (mmap, mmap64, mremap, private or shared)
 * are counted in mmap_current_bytes, rounded up to pages, exactly; munmap of part of one subtracts that
 * part; file mappings are not counted; a PROT_NONE reservation counts only the parts mprotect (or
 * pkey_mprotect) makes accessible (the way JVMs and V8 reserve and commit); the heap counters do not move.
 * Output: "ok". */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
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

  /* 1 GiB of address space reserved, 3 pages made writable, then 1 given back with PROT_NONE and 1 with
   * MAP_FIXED PROT_NONE over it. */
  size_t reserve = (size_t)1 << 30;
  char *r = mmap(NULL, reserve, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  E2E_CHECK(r != MAP_FAILED, "mmap of a PROT_NONE reservation failed");
  Expect("mmap of a 1 GiB PROT_NONE reservation", 0);
  E2E_CHECK(mprotect(r + 16 * g_page, 3 * g_page, PROT_READ | PROT_WRITE) == 0, "mprotect failed");
  r[16 * g_page] = r[19 * g_page - 1] = 1;
  Expect("mprotect of 3 pages to read-write", (int64_t)(3 * g_page));
  E2E_CHECK(mprotect(r + 16 * g_page, g_page, PROT_NONE) == 0, "mprotect failed");
  Expect("mprotect of 1 page back to PROT_NONE", -(int64_t)g_page);
  E2E_CHECK(mmap(r + 18 * g_page, g_page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == r + 18 * g_page,
            "mmap MAP_FIXED failed");
  Expect("mmap MAP_FIXED PROT_NONE over 1 page", -(int64_t)g_page);
  E2E_CHECK(mprotect(r + 17 * g_page, g_page, PROT_READ) == 0, "mprotect failed");
  Expect("mprotect read-write to read-only", 0);
  /* pkey_mprotect with the default key (-1) is mprotect, and counted the same. */
  int64_t opened_by_key = 0;
  if (pkey_mprotect(r + 30 * g_page, 2 * g_page, PROT_READ | PROT_WRITE, -1) == 0) {
    opened_by_key = (int64_t)(2 * g_page);
  } else {
    E2E_CHECK(errno == ENOSYS, "pkey_mprotect failed: %s", strerror(errno));  /* a kernel without it */
  }
  Expect("pkey_mprotect of 2 pages to read-write", opened_by_key);
  E2E_CHECK(munmap(r, reserve) == 0, "munmap of the reservation failed");
  Expect("munmap of the reservation", -(int64_t)g_page - opened_by_key);

  E2E_CHECK(munmap(c, g_page) == 0 && munmap(shared, 12001) == 0, "munmap failed");
  Expect("munmap of everything", -(int64_t)(4 * g_page));

  struct memtide_heap_stats end = E2eStats();
  uint64_t want_peak = g_start.mmap_current_bytes + g_max_live;
  if (g_start.mmap_peak_bytes > want_peak) want_peak = g_start.mmap_peak_bytes;
  E2E_CHECK_EQ("mmap_peak_bytes", end.mmap_peak_bytes, want_peak);
  E2eWriteLine(1, "ok");
  return 0;
}
