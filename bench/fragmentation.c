// Fragmentation workload, run by scripts/bench (bench/run_bench.py) under each allocator, with and without
// libmemtide.so, to show what the trim policy gives back (DESIGN.md decision 5).
//
// Allocates --total-mib of mixed blocks (70% in [16, 512] B, 25% in (512 B, 16 KiB], 5% in (16 KiB, 64 KiB]:
// all below glibc's mmap threshold, so all of it is heap), writing every byte so it is resident. Between
// them, every 8..120 KiB of allocation, sits a long-lived small block (a "pin": 32..256 B, the cache entry or
// the interned string a real program keeps), and --keep-permille of the other blocks also stay alive. Then it
// frees everything else in random order: the heap is now mostly free, but no allocator can shrink it from
// the top, because pins are everywhere. It reads its RSS right after the frees, holds (--hold-ms) while
// sampling RSS every 50 ms, and prints one "key value" line per figure on stdout:
//   live_bytes N            requested bytes still allocated during the hold (pins + kept blocks)
//   allocated_bytes N       requested bytes allocated in the fill
//   pins N / blocks N       how many long-lived / total blocks
//   rss_before_bytes N      before the fill
//   rss_after_free_bytes N  right after the frees (after malloc_trim(0) too, with --trim)
//   rss_end_bytes N         at the end of the hold
//   rss_min_bytes N         lowest sample during the hold
//   settle_s S              time after the frees until RSS first came within 2% (or 1 MiB) of rss_end
//   trim_s S                with --trim: how long the program's own malloc_trim(0) took
//   fill_s S / free_s S     time for the fill and for the frees
//   sample T BYTES          with --print-samples: every RSS sample, T seconds after the frees ended
// --trim makes the program call glibc's malloc_trim(0) itself right after its frees: the floor that a
// perfect policy on glibc could reach. The workload is a pure function of --seed.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct Options {
  int64_t total_bytes;
  int64_t hold_ms;
  int keep_permille;
  int trim;
  int print_samples;
  uint64_t seed;
};

static uint64_t g_rng_state;

// splitmix64: the same generator as malloc_micro.cc.
static uint64_t Next(void) {
  uint64_t z = (g_rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static uint64_t Between(uint64_t low, uint64_t high) { return low + Next() % (high - low + 1); }

static size_t NextSize(void) {
  uint64_t bucket = Next() % 100;
  if (bucket < 70) return Between(16, 512);
  if (bucket < 95) return Between(513, 16384);
  return Between(16385, 65536);
}

static double Now(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

// Resident bytes from /proc/self/statm; raw read, so the measurement itself allocates nothing.
static int64_t ResidentBytes(void) {
  char text[128];
  int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t got = read(fd, text, sizeof(text) - 1);
  close(fd);
  if (got <= 0) return -1;
  text[got] = '\0';
  char* rest;
  strtoll(text, &rest, 10);
  return strtoll(rest, NULL, 10) * sysconf(_SC_PAGESIZE);
}

static void* Allocate(size_t size) {
  unsigned char* block = malloc(size);
  if (block == NULL) {
    fprintf(stderr, "fragmentation: out of memory after a request of %zu bytes\n", size);
    exit(1);
  }
  memset(block, 0xa5, size);
  return block;
}

static int64_t ParseInt(const char* flag, const char* text) {
  char* end;
  long long value = strtoll(text, &end, 10);
  if (end == text || *end != '\0' || value < 0) {
    fprintf(stderr, "fragmentation: %s needs a non-negative integer, got '%s'\n", flag, text);
    exit(2);
  }
  return value;
}

static struct Options ParseOptions(int argc, char** argv) {
  struct Options options = {256ll << 20, 4000, 10, 0, 0, 42};
  for (int i = 1; i < argc; ++i) {
    const char* flag = argv[i];
    if (strcmp(flag, "--trim") == 0) {
      options.trim = 1;
      continue;
    }
    if (strcmp(flag, "--print-samples") == 0) {
      options.print_samples = 1;
      continue;
    }
    if (i + 1 >= argc) {
      fprintf(stderr,
              "usage: fragmentation [--total-mib N] [--hold-ms N] [--keep-permille N] [--seed N] [--trim] "
              "[--print-samples]\n");
      exit(2);
    }
    int64_t value = ParseInt(flag, argv[++i]);
    if (strcmp(flag, "--total-mib") == 0) {
      options.total_bytes = value << 20;
    } else if (strcmp(flag, "--hold-ms") == 0) {
      options.hold_ms = value;
    } else if (strcmp(flag, "--keep-permille") == 0) {
      options.keep_permille = (int)value;
    } else if (strcmp(flag, "--seed") == 0) {
      options.seed = (uint64_t)value;
    } else {
      fprintf(stderr, "fragmentation: unknown flag %s\n", flag);
      exit(2);
    }
  }
  return options;
}

int main(int argc, char** argv) {
  struct Options options = ParseOptions(argc, argv);
  g_rng_state = options.seed;
  size_t capacity = 1024;
  size_t count = 0;
  void** blocks = malloc(capacity * sizeof(void*));
  size_t* sizes = malloc(capacity * sizeof(size_t));
  unsigned char* keep = malloc(capacity);
  if (blocks == NULL || sizes == NULL || keep == NULL) return 1;

  int64_t rss_before = ResidentBytes();
  double fill_start = Now();
  int64_t allocated = 0, live = 0, since_pin = 0, next_pin = (int64_t)Between(8 << 10, 120 << 10);
  size_t pins = 0;
  while (allocated < options.total_bytes) {
    if (count == capacity) {
      capacity *= 2;
      blocks = realloc(blocks, capacity * sizeof(void*));
      sizes = realloc(sizes, capacity * sizeof(size_t));
      keep = realloc(keep, capacity);
      if (blocks == NULL || sizes == NULL || keep == NULL) return 1;
    }
    size_t size;
    int is_pin = since_pin >= next_pin;
    if (is_pin) {
      size = Between(32, 256);
      since_pin = 0;
      next_pin = (int64_t)Between(8 << 10, 120 << 10);
      ++pins;
    } else {
      size = NextSize();
      since_pin += (int64_t)size;
    }
    blocks[count] = Allocate(size);
    sizes[count] = size;
    keep[count] = is_pin || Next() % 1000 < (uint64_t)options.keep_permille;
    if (keep[count]) live += (int64_t)size;
    allocated += (int64_t)size;
    ++count;
  }
  double fill_s = Now() - fill_start;

  // Free in random order (Fisher-Yates over the indexes), as a program that drops a cache would.
  size_t* order = malloc(count * sizeof(size_t));
  if (order == NULL) return 1;
  for (size_t i = 0; i < count; ++i) order[i] = i;
  for (size_t i = count - 1; i > 0; --i) {
    size_t j = (size_t)(Next() % (i + 1));
    size_t t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  double free_start = Now();
  for (size_t i = 0; i < count; ++i) {
    size_t index = order[i];
    if (!keep[index]) {
      free(blocks[index]);
      blocks[index] = NULL;
    }
  }
  double free_end = Now();
  double trim_s = 0;
  if (options.trim) {
    // glibc's, looked up at run time so the program also links where malloc_trim is missing.
    int (*trim)(size_t) = (int (*)(size_t))dlsym(RTLD_DEFAULT, "malloc_trim");
    if (trim == NULL) {
      fprintf(stderr, "fragmentation: --trim: no malloc_trim in this process\n");
      return 1;
    }
    trim(0);
    trim_s = Now() - free_end;
  }
  int64_t rss_after_free = ResidentBytes();
  double hold_start = Now();

  // Hold: sample RSS every 50 ms; remember when it last changed by more than the settle tolerance.
  int64_t rss_min = rss_after_free;
  enum { kMaxSamples = 4096 };
  static int64_t samples[kMaxSamples];
  static double sample_times[kMaxSamples];
  int sample_count = 0;
  double hold_end = hold_start + (double)options.hold_ms / 1000.0;
  for (;;) {
    double now = Now();
    int64_t rss = ResidentBytes();
    if (rss < rss_min) rss_min = rss;
    if (sample_count < kMaxSamples) {
      samples[sample_count] = rss;
      sample_times[sample_count] = now - free_end;
      ++sample_count;
    }
    if (now >= hold_end) break;
    double left = hold_end - now;
    double step = left < 0.05 ? left : 0.05;
    struct timespec pause = {(time_t)step, (long)((step - (double)(time_t)step) * 1e9)};
    nanosleep(&pause, NULL);
  }
  int64_t rss_end = samples[sample_count - 1];
  int64_t tolerance = rss_end / 50 > (1 << 20) ? rss_end / 50 : (1 << 20);
  double settle_s = 0;
  for (int i = sample_count - 1; i >= 0; --i) {
    int64_t difference = samples[i] - rss_end;
    if (difference < 0) difference = -difference;
    if (difference > tolerance) {
      settle_s = i + 1 < sample_count ? sample_times[i + 1] : sample_times[i];
      break;
    }
  }

  printf("blocks %zu\n", count);
  printf("pins %zu\n", pins);
  printf("allocated_bytes %lld\n", (long long)allocated);
  printf("live_bytes %lld\n", (long long)live);
  printf("rss_before_bytes %lld\n", (long long)rss_before);
  printf("rss_after_free_bytes %lld\n", (long long)rss_after_free);
  printf("rss_end_bytes %lld\n", (long long)rss_end);
  printf("rss_min_bytes %lld\n", (long long)rss_min);
  printf("settle_s %.3f\n", settle_s);
  printf("trim_s %.3f\n", trim_s);
  printf("fill_s %.3f\n", fill_s);
  printf("free_s %.3f\n", free_end - free_start);
  if (options.print_samples) {
    for (int i = 0; i < sample_count; ++i) printf("sample %.3f %lld\n", sample_times[i], (long long)samples[i]);
  }
  fflush(stdout);

  for (size_t i = 0; i < count; ++i) free(blocks[i]);
  free(order);
  free(keep);
  free(sizes);
  free(blocks);
  return 0;
}
