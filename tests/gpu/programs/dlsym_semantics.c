/* dlsym keeps its meaning for every caller under memtide's override (run with
 * LD_PRELOAD="libmemtide.so libnext_interposer.so"): RTLD_NEXT from the program and from a second
 * interposer, RTLD_DEFAULT from a library opened RTLD_LOCAL, dlvsym, and dlerror after failed lookups
 * (ordinary and `cu*` names, on handles and RTLD_DEFAULT). Argument: the path of liblocal_a.so. */
#include <dlfcn.h>
#include <memtide/memtide.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CHECK(cond, ...)                                      \
  do {                                                        \
    if (!(cond)) {                                            \
      fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);         \
      fprintf(stderr, __VA_ARGS__);                           \
      fprintf(stderr, "\n");                                  \
      exit(1);                                                \
    }                                                         \
  } while (0)

static const char *ObjectOf(const void *pointer) {
  Dl_info info;
  return dladdr(pointer, &info) != 0 && info.dli_fname != NULL ? info.dli_fname : "?";
}

/* A failed lookup: NULL, and dlerror names the symbol once, then NULL. */
static void ExpectFailure(void *handle, const char *name) {
  dlerror();
  void *result = dlsym(handle, name);
  CHECK(result == NULL, "dlsym(%s) must fail, got %p in %s", name, result, ObjectOf(result));
  const char *error = dlerror();
  CHECK(error != NULL && strstr(error, name) != NULL, "dlerror after dlsym(%s): %s", name, error ? error : "(null)");
  CHECK(dlerror() == NULL, "dlerror must be cleared once read");
}

int main(int argc, char **argv) {
  CHECK(argc == 2, "usage: dlsym_semantics LIBLOCAL_A");
  CHECK(memtide_get_gpu_stats != NULL, "not under memtide");

  /* The second interposer's RTLD_NEXT reached glibc's getuid (no recursion), exactly once per call. */
  int (*calls)(void);
  *(void **)&calls = dlsym(RTLD_DEFAULT, "interposer_getuid_calls");
  CHECK(calls != NULL, "libnext_interposer.so is not preloaded: %s", dlerror());
  CHECK(getuid() == (uid_t)syscall(SYS_getuid), "getuid through the interposer");
  CHECK(calls() == 1, "the interposer's getuid ran %d times", calls());
  void *(*interposer_next_malloc)(void);
  *(void **)&interposer_next_malloc = dlsym(RTLD_DEFAULT, "interposer_next_malloc");
  const char *after_interposer = ObjectOf(interposer_next_malloc());
  CHECK(strstr(after_interposer, "libc.so") != NULL, "RTLD_NEXT from the interposer found malloc in %s",
        after_interposer);

  /* RTLD_NEXT from the program: the next malloc after the executable is memtide's (the first preload). */
  const char *after_program = ObjectOf(dlsym(RTLD_NEXT, "malloc"));
  CHECK(strstr(after_program, "libmemtide") != NULL, "RTLD_NEXT from the program found malloc in %s", after_program);
  CHECK(dlsym(RTLD_NEXT, "getuid") == (void *)&getuid, "RTLD_NEXT getuid from the program is the interposer's");

  /* RTLD_DEFAULT from a library opened RTLD_LOCAL sees its own group; the program does not. */
  void *local_a = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  CHECK(local_a != NULL, "dlopen(%s): %s", argv[1], dlerror());
  int (*finds_b)(void);
  *(void **)&finds_b = dlsym(local_a, "local_a_finds_b");
  CHECK(finds_b != NULL, "local_a_finds_b: %s", dlerror());
  CHECK(finds_b() == 42, "RTLD_DEFAULT from a RTLD_LOCAL library must see its own dependencies");
  ExpectFailure(RTLD_DEFAULT, "local_b_value");

  /* dlvsym, on a handle and with RTLD_DEFAULT. */
  void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  CHECK(libc != NULL, "libc.so.6: %s", dlerror());
  void *libc_dlsym = dlvsym(libc, "dlsym", "GLIBC_2.2.5");
  CHECK(libc_dlsym != NULL && strstr(ObjectOf(libc_dlsym), "libc.so") != NULL, "dlvsym(libc, dlsym@GLIBC_2.2.5)");
  CHECK(dlvsym(RTLD_DEFAULT, "getpid", "GLIBC_2.2.5") != NULL, "dlvsym(RTLD_DEFAULT, getpid): %s", dlerror());
  dlerror();
  CHECK(dlvsym(libc, "getpid", "NO_SUCH_VERSION") == NULL && dlerror() != NULL, "dlvsym with a bad version");

  /* Failed lookups: ordinary names, `cu*` names on a handle (memtide's route), through RTLD_DEFAULT (handed
   * on), and memtide's own exported driver names with no driver loaded (must fail as without memtide). */
  ExpectFailure(RTLD_DEFAULT, "no_such_symbol_anywhere");
  ExpectFailure(libc, "no_such_symbol_in_libc");
  ExpectFailure(libc, "cuNoSuchFunction");
  ExpectFailure(RTLD_DEFAULT, "cuNoSuchFunction");
  ExpectFailure(RTLD_DEFAULT, "cuMemAlloc_v2");
  ExpectFailure(RTLD_NEXT, "cuGetProcAddress_v2");
  /* A successful lookup after a failed one clears nothing the program has not read: dlerror stays. */
  dlsym(RTLD_DEFAULT, "no_such_symbol_anywhere");
  CHECK(dlsym(RTLD_DEFAULT, "printf") != NULL, "printf");
  CHECK(dlerror() == NULL, "a successful lookup clears a pending error, as glibc does");
  printf("ok\n");
  return 0;
}
