// A known peak across threads, in a fixed order (each thread is joined before the next starts):
// main holds 400000; thread 1 allocates 3 x 100000 and frees them (700000 at its top); thread 2 allocates
// 450000 and hands it to main, which frees it after thread 3 allocated and freed 200000
// (400000 + 450000 + 200000 = 1050000: the peak, plus the DTV glibc allocates in pthread_create (320 bytes
// here) for the thread stack it caches and reuses for each next thread).
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

int main(void) {
  void* held = malloc(400000);
  void* (*bodies[3])(void*) = {first, second, third};
  void* handed = NULL;
  for (int i = 0; i < 3; ++i) {
    pthread_t thread;
    void* result = NULL;
    if (pthread_create(&thread, NULL, bodies[i], NULL) != 0) return 1;
    pthread_join(thread, &result);
    if (result != NULL) handed = result;
  }
  free(handed);
  free(held);
  return 0;
}
