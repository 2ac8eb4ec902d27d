// dlopen'ed by dlopen_leaks and kept loaded until exit: kept_lib_leak leaks 16006 bytes.
#include <stdlib.h>

void* volatile g_kept_sink;

__attribute__((noinline)) void kept_lib_leak(void) { g_kept_sink = malloc(16006); }
