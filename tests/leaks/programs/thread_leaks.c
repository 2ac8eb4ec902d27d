// Leaks made in threads: three joined threads each leak one block from thread_leak (15005 + 16 * index),
// and one block is allocated in a thread and freed by main (cross-thread free: not a leak).
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

void* volatile g_sink;

__attribute__((noinline)) void thread_leak(intptr_t index) { g_sink = malloc(15005 + 16 * index); }

static void* thread_main(void* argument) {
  thread_leak((intptr_t)argument);
  return malloc(15500);  // freed by main
}

int main(void) {
  pthread_t threads[3];
  for (intptr_t i = 0; i < 3; ++i) pthread_create(&threads[i], NULL, thread_main, (void*)i);
  for (int i = 0; i < 3; ++i) {
    void* result = NULL;
    pthread_join(threads[i], &result);
    free(result);
  }
  g_sink = NULL;
  return 0;
}
