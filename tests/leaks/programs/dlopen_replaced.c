// Two libraries built from one source (replaced_lib.c), loaded one after the other at the same addresses: the
// first is dlclose'd before the second is opened, and each leaks one block from code at the same offset,
// called from the same call site. The two leaks then have the same return addresses; each must still be named
// after its own library (valgrind --keep-debuginfo does; so must memtide, whose depot would otherwise hand the
// second stack the first one's names). Exit status 3 when the loader put the second library elsewhere: then
// this program checks nothing.
// usage: dlopen_replaced LIB_A LIB_B
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: dlopen_replaced LIB_A LIB_B\n");
    return 2;
  }
  static const char* const kFunctions[2] = {"replaced_a_leak", "replaced_b_leak"};
  void* bases[2] = {NULL, NULL};
  for (int i = 0; i < 2; ++i) {
    void* handle = dlopen(argv[1 + i], RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
      fprintf(stderr, "dlopen_replaced: %s\n", dlerror());
      return 1;
    }
    void (*leak)(void) = (void (*)(void))dlsym(handle, kFunctions[i]);
    Dl_info info;
    if (leak == NULL || dladdr((void*)leak, &info) == 0) {
      fprintf(stderr, "dlopen_replaced: %s\n", dlerror());
      return 1;
    }
    bases[i] = info.dli_fbase;
    leak();  // one call site for both
    if (i == 0 && dlclose(handle) != 0) {
      fprintf(stderr, "dlopen_replaced: %s\n", dlerror());
      return 1;
    }
  }
  if (bases[0] != bases[1]) {
    fprintf(stderr, "dlopen_replaced: %s was loaded at %p, not at %s's %p: nothing was checked\n", argv[2], bases[1],
            argv[1], bases[0]);
    return 3;
  }
  return 0;
}
