/* Opened RTLD_LOCAL by dlsym_semantics; depends on local_b. dlsym(RTLD_DEFAULT, …) from here searches this
 * library's scope, which includes its own group (local_b) — only if glibc sees this library as the caller. */
#include <dlfcn.h>

int local_b_value(void);

/* Makes local_b a real dependency (NEEDED) even under --as-needed. */
int local_a_direct(void) { return local_b_value(); }

int local_a_finds_b(void) {
  int (*value)(void);
  *(void **)&value = dlsym(RTLD_DEFAULT, "local_b_value");
  return value != 0 ? value() : -1;
}
