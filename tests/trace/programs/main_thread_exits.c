// main ends with pthread_exit while a worker still runs; the worker leaks one 21061-byte block and ends. The
// process then ends when its last thread does, and with memtide's threads still there it is memtide's
// monitor thread, with its small stack, that calls exit: the leak report must still be made in full.
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

static void* volatile g_leak;

__attribute__((noinline)) static void* LeakFromWorker(void* unused) {
  (void)unused;
  usleep(50 * 1000);  // main has called pthread_exit by now
  g_leak = malloc(21061);
  return NULL;
}

int main(void) {
  pthread_t worker;
  if (pthread_create(&worker, NULL, LeakFromWorker, NULL) != 0) return 1;
  pthread_exit(NULL);
}
