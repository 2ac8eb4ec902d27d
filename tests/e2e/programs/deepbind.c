/* End-to-end program: dlopen with RTLD_DEEPBIND. The library is opened by its bare name, found through this
 * executable's RUNPATH, which glibc reads from dlopen's caller: memtide's dlopen must leave the caller as it
 * was. With "stripped" (MEMTIDE_STRIP_DEEPBIND=1) the library's malloc is memtide's: a block it allocates and
 * the program frees is counted exactly. With "kept" its malloc is libc's (not counted), so the block goes back
 * through the library's own free. Output: "deepbind ok". */
#define _GNU_SOURCE
#include <dlfcn.h>

#include "e2e_check.h"

int main(int argc, char **argv) {
  E2eRequireApi();
  if (argc != 2) E2E_FAIL("usage: deepbind stripped|kept");
  const int stripped = strcmp(argv[1], "stripped") == 0;
  void *library = dlopen("libdeepbind_lib.so", RTLD_NOW | RTLD_DEEPBIND);
  E2E_CHECK(library != NULL, "dlopen by bare name failed: %s", dlerror());
  void *(*allocate)(size_t) = (void *(*)(size_t))dlsym(library, "DeepbindAllocate");
  void (*release)(void *) = (void (*)(void *))dlsym(library, "DeepbindRelease");
  E2E_CHECK(allocate != NULL && release != NULL, "the library's functions are missing");
  struct memtide_heap_stats before = E2eStats();
  void *block = allocate(16001);
  E2E_CHECK(block != NULL, "the library's malloc(16001) failed");
  E2eEscape(block);
  if (stripped) {
    size_t usable = malloc_usable_size(block);
    struct memtide_heap_stats allocated = E2eStats();
    E2E_CHECK_HEAP_DELTA(before, allocated, usable, 1, 0, usable);
    free(block);
    struct memtide_heap_stats freed = E2eStats();
    E2E_CHECK_HEAP_DELTA(allocated, freed, 0 - (uint64_t)usable, 0, 1, 0);
  } else {
    release(block);
  }
  E2eWriteLine(1, "deepbind ok");
  return 0;
}
