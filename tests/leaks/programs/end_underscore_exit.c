// Ends with _exit(): no atexit handlers, no destructors, no stdio flush. leak_before_underscore_exit 24004.
#include <stdlib.h>
#include <unistd.h>

void* volatile g_sink;

__attribute__((noinline)) void leak_before_underscore_exit(void) { g_sink = malloc(24004); }

int main(void) {
  leak_before_underscore_exit();
  _exit(4);
}
