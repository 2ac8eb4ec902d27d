// Returns from main after printing (stdio allocates its buffer on the first printf: a C runtime block that
// glibc frees only in __libc_freeres, which valgrind runs and a normal exit does not).
// leak_before_return 25005.
#include <stdio.h>
#include <stdlib.h>

void* volatile g_sink;

__attribute__((noinline)) void leak_before_return(void) { g_sink = malloc(25005); }

int main(void) {
  leak_before_return();
  printf("end_return: leaked %d bytes\n", 25005);
  return 0;
}
