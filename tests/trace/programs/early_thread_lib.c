// A library whose constructor starts a thread before main (and possibly before memtide's tracer started):
// the thread waits for main's go, then leaks 21041 bytes from EarlyThreadLeak().
#include <pthread.h>
#include <stdlib.h>

static pthread_t g_thread;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_go = PTHREAD_COND_INITIALIZER;
static int g_started;
void* g_early_block;

__attribute__((noinline)) void EarlyThreadLeak(void) { g_early_block = malloc(21041); g_early_block = 0; }

static void* Body(void* unused) {
  (void)unused;
  free(malloc(100));  // the thread's first allocation, before the go
  pthread_mutex_lock(&g_lock);
  while (!g_started) pthread_cond_wait(&g_go, &g_lock);
  pthread_mutex_unlock(&g_lock);
  EarlyThreadLeak();
  return 0;
}

__attribute__((constructor)) static void StartEarly(void) { pthread_create(&g_thread, 0, Body, 0); }

void RunEarlyThread(void) {
  pthread_mutex_lock(&g_lock);
  g_started = 1;
  pthread_cond_signal(&g_go);
  pthread_mutex_unlock(&g_lock);
  pthread_join(g_thread, 0);
}
