// dlopen'ed by dlopen_leaks and dlclose'd before exit: closed_lib_leak leaks 17007 bytes, whose frame must
// still be named although the library is gone when the process ends.
#include <stdlib.h>

void* g_closed_sink;

__attribute__((noinline)) void closed_lib_leak(void) { g_closed_sink = malloc(17007); }
