/* End-to-end program: 16 threads, each allocating sentinel blocks that a neighbour thread frees
 * (cross-thread free), each leaking one block. After join the current heap bytes must be exact; the peak
 * must be within the documented bound of the program's true peak (each thread may hold up to
 * kUnpublishedDeltaBoundBytes of delta not yet published to the shared counters).
 * Output: "current=<bytes> peak=<bytes> true_peak=<bytes>". */
#include <pthread.h>

#include "e2e_check.h"

enum { kThreads = 16, kBlocksPerThread = 64, kBlockBytes = 16001, kLeakBytes = 14001 };

/* The per-thread bound on unpublished heap delta that memtide documents (README, "Exactness"). */
#define kUnpublishedDeltaBoundBytes ((uint64_t)256 * 1024)
#define kPeakSlackBytes ((uint64_t)kThreads * kUnpublishedDeltaBoundBytes)

/* Small stacks: all 16 fit in glibc's stack cache, so the warm-up round leaves every thread's DTV
 * allocated and the measured round makes no allocations of its own in pthread_create. */
#define kStackBytes ((size_t)256 * 1024)

static void *g_blocks[kThreads][kBlocksPerThread];
static size_t g_block_usable[kThreads];
static size_t g_leak_usable[kThreads];
static void *g_leaks[kThreads];
static pthread_barrier_t g_barrier;

static void *Worker(void *arg) {
  int self = (int)(intptr_t)arg;
  size_t usable = 0;
  for (int j = 0; j < kBlocksPerThread; ++j) {
    void *p = malloc(kBlockBytes + self);
    if (!p) E2E_FAIL("thread %d: malloc failed", self);
    memset(p, self, kBlockBytes + self);
    g_blocks[self][j] = p;
    usable += malloc_usable_size(p);
  }
  g_leaks[self] = malloc(kLeakBytes);
  E2eEscape(g_leaks[self]);
  g_leak_usable[self] = malloc_usable_size(g_leaks[self]);
  g_block_usable[self] = usable;
  /* Every block of every thread is live here: the program's true peak. */
  pthread_barrier_wait(&g_barrier);
  int neighbour = (self + 1) % kThreads;
  for (int j = 0; j < kBlocksPerThread; ++j) free(g_blocks[neighbour][j]);
  return NULL;
}

static void *Idle(void *arg) {
  (void)arg;
  return NULL;
}

static void RunRound(void *(*body)(void *)) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, kStackBytes);
  pthread_t threads[kThreads];
  for (int i = 0; i < kThreads; ++i)
    E2E_CHECK(pthread_create(&threads[i], &attr, body, (void *)(intptr_t)i) == 0, "pthread_create failed");
  for (int i = 0; i < kThreads; ++i) pthread_join(threads[i], NULL);
  pthread_attr_destroy(&attr);
}

int main(void) {
  E2eRequireApi();
  pthread_barrier_init(&g_barrier, NULL, kThreads);
  RunRound(Idle);  // warm glibc's thread-stack cache (see kStackBytes)

  memtide_reset_peak();
  struct memtide_heap_stats before = E2eStats();
  RunRound(Worker);
  struct memtide_heap_stats after = E2eStats();

  uint64_t leaked = 0, pattern = 0;
  for (int i = 0; i < kThreads; ++i) {
    leaked += g_leak_usable[i];
    pattern += g_block_usable[i] + g_leak_usable[i];
  }
  E2E_CHECK_HEAP_DELTA(before, after, leaked, kThreads * (kBlocksPerThread + 1), kThreads * kBlocksPerThread,
                       pattern);

  uint64_t true_peak = before.current_bytes + pattern;
  E2E_CHECK(
      after.peak_bytes + kPeakSlackBytes >= true_peak && after.peak_bytes <= true_peak + kPeakSlackBytes,
      "peak_bytes %llu outside true peak %llu +- %llu", (unsigned long long)after.peak_bytes,
      (unsigned long long)true_peak, (unsigned long long)kPeakSlackBytes);
  size_t current = 0, peak = 0;
  memtide_get_traced_memory(&current, &peak);
  E2E_CHECK_EQ("get_traced_memory current", current, after.current_bytes);
  E2eWriteLine(1, "current=%llu peak=%llu true_peak=%llu", (unsigned long long)after.current_bytes,
               (unsigned long long)after.peak_bytes, (unsigned long long)true_peak);
  return 0;
}
