// A known peak across threads, in a fixed order (each thread is joined before the next starts):
// main holds 400000; thread 1 allocates 3 x 100000 and frees them (700000 at its top); thread 2 allocates
// 450000 and hands it to main, which frees it after thread 3 allocated and freed 200000 (400000 + 450000 +
// 200000 = 1050000). Then thread 4 allocates 30 blocks of 2000 bytes, chained, and ends holding them: 60000
// bytes, less than what a thread keeps to itself before adding it to the tracer's shared total, so only the
// thread's exit puts them there. Main then allocates 1000000: 400000 + 60000 + 1000000 = 1460000 is the peak
// (plus the DTV glibc allocates in pthread_create (320 bytes here) for the thread stack it caches and reuses
// for each next thread).
#include <pthread.h>
#include <stdlib.h>

static void* first(void* unused) {
  (void)unused;
  void* blocks[3];
  for (int i = 0; i < 3; ++i) blocks[i] = malloc(100000);
  for (int i = 0; i < 3; ++i) free(blocks[i]);
  return NULL;
}

static void* second(void* unused) {
  (void)unused;
  return malloc(450000);
}

static void* third(void* unused) {
  (void)unused;
  free(malloc(200000));
  return NULL;
}

static void* fourth(void* unused) {
  (void)unused;
  void* chain = NULL;
  for (int i = 0; i < 30; ++i) {
    void** block = malloc(2000);
    *block = chain;
    chain = block;
  }
  return chain;
}

static void* run_thread(void* (*body)(void*)) {
  pthread_t thread;
  void* result = NULL;
  if (pthread_create(&thread, NULL, body, NULL) != 0) exit(1);
  pthread_join(thread, &result);
  return result;
}

int main(void) {
  void* held = malloc(400000);
  run_thread(first);
  void* handed = run_thread(second);
  run_thread(third);
  free(handed);
  void* chain = run_thread(fourth);
  void* last = malloc(1000000);
  free(last);
  while (chain != NULL) {
    void* next = *(void**)chain;
    free(chain);
    chain = next;
  }
  free(held);
  return 0;
}
