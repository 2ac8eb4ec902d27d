/* A second interposer, preloaded after memtide, that wraps a libc function the usual way: the real one
 * from dlsym(RTLD_NEXT, …). If memtide's dlsym made itself the caller, "next" would be computed from
 * memtide and this library would get its own getuid back and recurse until the stack overflows. */
#include <dlfcn.h>
#include <sys/types.h>
#include <unistd.h>

static int g_calls;

uid_t getuid(void) {
  static uid_t (*real)(void);
  if (real == NULL) *(void **)&real = dlsym(RTLD_NEXT, "getuid");
  ++g_calls;
  return real();
}

int interposer_getuid_calls(void) { return g_calls; }

/* What RTLD_NEXT means from here: the malloc after this library (glibc's). Not a tail call, which would make
 * the program the caller. */
void *interposer_next_malloc(void) {
  void *volatile next = dlsym(RTLD_NEXT, "malloc");
  return next;
}
