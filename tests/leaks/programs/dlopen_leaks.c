// A leak inside a dlopen'ed library that stays loaded, and one inside a library dlclose'd before exit.
// usage: dlopen_leaks KEPT_LIB CLOSED_LIB
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

static int call_in(const char* path, const char* function, int close_after) {
  void* handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (handle == NULL) {
    fprintf(stderr, "dlopen_leaks: %s\n", dlerror());
    return 1;
  }
  void (*leak)(void) = (void (*)(void))dlsym(handle, function);
  if (leak == NULL) {
    fprintf(stderr, "dlopen_leaks: %s\n", dlerror());
    return 1;
  }
  leak();
  if (close_after) dlclose(handle);
  return 0;
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: dlopen_leaks KEPT_LIB CLOSED_LIB\n");
    return 2;
  }
  if (call_in(argv[1], "kept_lib_leak", 0) != 0) return 1;
  if (call_in(argv[2], "closed_lib_leak", 1) != 0) return 1;
  return 0;
}
