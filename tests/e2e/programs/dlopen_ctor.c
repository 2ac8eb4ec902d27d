/* End-to-end program: dlopen a library (argv[1]) whose constructor allocates 13001 bytes; the block
 * must be counted exactly, seen both from inside the constructor and from here, and freeing it here
 * must give the bytes back exactly. Output: "ok current=<bytes>". */
#include <dlfcn.h>

#include "e2e_check.h"

int main(int argc, char **argv) {
  if (argc != 2) E2E_FAIL("usage: dlopen_ctor path/to/libctor_alloc.so");
  E2eRequireApi();
  struct memtide_heap_stats before = E2eStats();
  void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  E2E_CHECK(lib != NULL, "dlopen(%s) failed", argv[1]);
  struct memtide_heap_stats loaded = E2eStats();
  int (*api_bound)(void) = (int (*)(void))dlsym(lib, "CtorAllocApiBound");
  void *(*block)(void) = (void *(*)(void))dlsym(lib, "CtorAllocBlock");
  unsigned long long (*delta)(void) = (unsigned long long (*)(void))dlsym(lib, "CtorAllocDelta");
  E2E_CHECK(api_bound && block && delta, "library symbols missing");
  E2E_CHECK(api_bound(), "memtide API not bound inside the dlopen'ed library");
  void *p = block();
  E2E_CHECK(p != NULL, "constructor did not allocate");
  size_t usable = malloc_usable_size(p);
  E2E_CHECK_EQ("constructor's own delta", delta(), usable);
  /* dlopen's own bookkeeping (link map, scope arrays) is heap too, so the whole dlopen grew current by
   * at least the block and counted at least one allocation. */
  E2E_CHECK(loaded.current_bytes - before.current_bytes >= usable,
            "dlopen grew current by %llu, less than the block's %zu",
            (unsigned long long)(loaded.current_bytes - before.current_bytes), usable);

  struct memtide_heap_stats before_free = E2eStats();
  free(p);
  struct memtide_heap_stats after_free = E2eStats();
  E2E_CHECK_HEAP_DELTA(before_free, after_free, 0 - (uint64_t)usable, 0, 1, 0);
  E2eWriteLine(1, "ok current=%llu", (unsigned long long)after_free.current_bytes);
  return 0;
}
