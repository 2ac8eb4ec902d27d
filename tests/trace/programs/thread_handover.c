// Full tracing while the tables pass from the bookkeeping thread to the program's threads: main allocates
// alone (its table work queued for memtide's bookkeeping thread), reaches its peak, then a second thread frees
// some of main's blocks and leaks its own (the queue is revoked: every thread applies in place from then on),
// and main allocates again. Sentinel sizes: 21051 (main, ten kept, five later freed by the thread), 21052
// (the thread, seven leaked), 21053 (main afterwards, two of three leaked), 4000000 (main, held at the peak).
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static void* g_kept[10];
static void* volatile g_after[3];  // volatile: the compiler may not drop an allocation whose pointer is unused

__attribute__((noinline)) static void* AllocateKept(size_t size) { return malloc(size); }

// Many small blocks allocated and freed: enough records to cycle the queue's ring several times.
__attribute__((noinline)) static void Churn(void) {
  for (int i = 0; i < 300000; ++i) {
    void* volatile block = malloc(48 + i % 200);
    free(block);
  }
}

__attribute__((noinline)) static void HoldPeak(void) {
  char* volatile big = malloc(4000000);
  big[0] = 1;
  free(big);
}

__attribute__((noinline)) static void* ThreadLeaks(void* unused) {
  (void)unused;
  for (int i = 0; i < 5; ++i) free(g_kept[i]);
  for (int i = 0; i < 7; ++i) {
    void* volatile leaked = malloc(21052);
    (void)leaked;
  }
  return NULL;
}

__attribute__((noinline)) static void AfterThread(void) {
  for (int i = 0; i < 3; ++i) g_after[i] = malloc(21053);
  free(g_after[1]);
}

int main(void) {
  for (int i = 0; i < 10; ++i) g_kept[i] = AllocateKept(21051);
  Churn();
  HoldPeak();
  Churn();
  pthread_t thread;
  if (pthread_create(&thread, NULL, ThreadLeaks, NULL) != 0) return 1;
  pthread_join(thread, NULL);
  AfterThread();
  Churn();
  printf("done\n");
  return 0;
}
