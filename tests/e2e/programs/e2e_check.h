/* Helpers shared by the end-to-end test programs (tests/e2e/programs/). Each program checks its own
 * numbers in process through memtide's C API and exits 1 with one line on stderr at the first mismatch.
 *
 * Nothing here allocates: messages are formatted with snprintf into stack buffers and written with
 * write(2), because printf's first call allocates the stdout buffer, which would move the counters
 * between a measurement and the check (or between a printed number and the report). */
#ifndef MEMTIDE_TESTS_E2E_PROGRAMS_E2E_CHECK_H_
#define MEMTIDE_TESTS_E2E_PROGRAMS_E2E_CHECK_H_

#include <malloc.h>
#include <memtide/memtide.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Writes one formatted line (at most 511 bytes) to fd without allocating. */
static inline void E2eWriteLine(int fd, const char *format, ...) __attribute__((format(printf, 2, 3)));
static inline void E2eWriteLine(int fd, const char *format, ...) {
  char line[512];
  va_list args;
  va_start(args, format);
  int n = vsnprintf(line, sizeof(line) - 1, format, args);
  va_end(args);
  if (n < 0) return;
  if ((size_t)n > sizeof(line) - 2) n = (int)sizeof(line) - 2;
  line[n++] = '\n';
  const char *p = line;
  while (n > 0) {
    ssize_t written = write(fd, p, (size_t)n);
    if (written <= 0) return;
    p += written;
    n -= (int)written;
  }
}

#define E2E_FAIL(...)             \
  do {                            \
    E2eWriteLine(2, __VA_ARGS__); \
    _exit(1);                     \
  } while (0)

/* Fails unless got == want; `what` names the quantity in the message. */
#define E2E_CHECK_EQ(what, got, want)                                                              \
  do {                                                                                             \
    unsigned long long e2e_got_ = (unsigned long long)(got);                                       \
    unsigned long long e2e_want_ = (unsigned long long)(want);                                     \
    if (e2e_got_ != e2e_want_)                                                                     \
      E2E_FAIL("%s:%d: %s: got %llu, want %llu (diff %lld)", __FILE__, __LINE__, (what), e2e_got_, \
               e2e_want_, (long long)(e2e_got_ - e2e_want_));                                      \
  } while (0)

#define E2E_CHECK(cond, ...)            \
  do {                                  \
    if (!(cond)) E2E_FAIL(__VA_ARGS__); \
  } while (0)

/* Seconds on the monotonic clock, for programs that loop for a while. */
static inline double E2eNowSeconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The preload must have bound the weak API symbols (the program runs under LD_PRELOAD). */
static inline void E2eRequireApi(void) {
  if (!memtide_get_heap_stats || !memtide_get_traced_memory || !memtide_mark || !memtide_reset_peak)
    E2E_FAIL("memtide API not bound: is libmemtide.so in LD_PRELOAD?");
}

static inline struct memtide_heap_stats E2eStats(void) {
  struct memtide_heap_stats stats;
  memset(&stats, 0, sizeof(stats));
  memtide_get_heap_stats(&stats);
  return stats;
}

/* Keeps the compiler from proving a block unused and dropping the malloc/free pair. */
static inline void E2eEscape(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

/* Checks that `after` differs from `before` by exactly the given heap deltas. */
#define E2E_CHECK_HEAP_DELTA(before, after, d_current, d_allocations, d_frees, d_total)               \
  do {                                                                                                \
    E2E_CHECK_EQ("current_bytes delta", (after).current_bytes - (before).current_bytes, (d_current)); \
    E2E_CHECK_EQ("allocations delta", (after).allocations - (before).allocations, (d_allocations));   \
    E2E_CHECK_EQ("frees delta", (after).frees - (before).frees, (d_frees));                           \
    E2E_CHECK_EQ("allocated_bytes_total delta",                                                       \
                 (after).allocated_bytes_total - (before).allocated_bytes_total, (d_total));          \
  } while (0)

#endif /* MEMTIDE_TESTS_E2E_PROGRAMS_E2E_CHECK_H_ */
