// Ends with exit() from a nested function (atexit handlers and destructors run): leak_before_exit 23003,
// and a block an atexit handler allocates (23103), which is in use at exit too.
#include <stdlib.h>

void* volatile g_sink;

__attribute__((noinline)) void leak_before_exit(void) { g_sink = malloc(23003); }

static void at_exit_handler(void) { g_sink = malloc(23103); }

__attribute__((noinline)) void finish(void) { exit(3); }

int main(void) {
  atexit(at_exit_handler);
  leak_before_exit();
  finish();
}
