// Leaves the C runtime holding blocks that only its exit cleanup frees (__libc_freeres, which valgrind runs at
// exit): locale data, the NSS modules and getpwuid's buffer, setenv's strings and the environment it grew,
// the stdio buffer; and leaks one block of its own. memtide must tell the two apart exactly as valgrind does.
// leak_beside_runtime 27027.
#include <locale.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void* volatile g_sink;

__attribute__((noinline)) void leak_beside_runtime(void) { g_sink = malloc(27027); }

int main(void) {
  setlocale(LC_ALL, "C.UTF-8");
  struct passwd* user = getpwuid(getuid());
  setenv("MEMTIDE_RUNTIME_STATE", "a value that setenv copies", 1);
  leak_beside_runtime();
  printf("runtime_state: %s, leaked %d bytes\n", user != NULL ? "user found" : "no user", 27027);
  return 0;
}
