// Workload of the container-limit trim test (cgroup_limit_test.py): memory that a program has freed but its
// allocator keeps, growing phase by phase until a plain glibc process nears its container's limit.
//
// Each phase starts a worker thread (so glibc gives it an arena of its own, as a thread pool's workers get),
// which fills --phase-mib of mixed heap blocks (16 B .. 64 KiB, all below the mmap threshold; every byte
// written), paced in 8 MiB steps so a monitor sampling every 100 ms sees the climb. Every 768..1280 KiB a
// long-lived small block (a "pin", 32..256 B) stays behind; everything else is freed in random order. The
// worker then stays alive, so its arena is never handed to the next phase's thread: glibc cannot reuse the
// freed memory for the next phase, nor shrink the arena past the pins. Live memory never exceeds one phase
// plus the pins; what the process holds grows by a phase each time unless something trims it.
//
// After each phase the main thread holds --gap-ms. After the last one it holds --final-hold-ms; with
// --api-trim it then calls memtide_trim() (looked up with dlsym, so the program runs without memtide too)
// and holds --final-hold-ms again. Prints "key value" lines: live_peak_bytes, phases, pins, api_trim_bytes.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { kMaxPhases = 16 };

struct Options {
  int phases;
  int64_t phase_bytes;
  int64_t gap_ms;
  int64_t final_hold_ms;
  int api_trim;
};

struct Phase {
  int index;
  int64_t phase_bytes;
  pthread_t thread;
  void** pins;
  size_t pin_count;
  int64_t pin_bytes;
};

static pthread_mutex_t g_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;
static int g_phases_done = 0;
static int g_release = 0;

static void SleepMs(int64_t milliseconds) {
  struct timespec pause = {(time_t)(milliseconds / 1000), (long)(milliseconds % 1000) * 1000000L};
  while (nanosleep(&pause, &pause) != 0) {
  }
}

// splitmix64, one state per phase: every run makes the same calls.
static uint64_t Next(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static uint64_t Between(uint64_t* state, uint64_t low, uint64_t high) { return low + Next(state) % (high - low + 1); }

static size_t NextSize(uint64_t* state) {
  uint64_t bucket = Next(state) % 100;
  if (bucket < 70) return Between(state, 16, 512);
  if (bucket < 95) return Between(state, 513, 16384);
  return Between(state, 16385, 65536);
}

static void* Allocate(size_t size) {
  void* block = malloc(size);
  if (block == NULL) {
    fprintf(stderr, "phased_arenas: out of memory (request of %zu bytes)\n", size);
    exit(1);
  }
  memset(block, 0x5a, size);
  return block;
}

static void* RunPhase(void* argument) {
  struct Phase* phase = argument;
  uint64_t state = 0x6d656d74696465ull + (uint64_t)phase->index;
  size_t capacity = 1 << 16, count = 0;
  // Bookkeeping arrays come from mmap-sized requests, so they never sit among the blocks.
  void** blocks = Allocate(capacity * sizeof(void*));
  unsigned char* is_pin = Allocate(capacity);
  phase->pins = Allocate(4096 * sizeof(void*));
  int64_t filled = 0, step = 0, since_pin = 0, next_pin = (int64_t)Between(&state, 768 << 10, 1280 << 10);
  while (filled < phase->phase_bytes) {
    if (count == capacity) {
      fprintf(stderr, "phased_arenas: more than %zu blocks in a phase\n", capacity);
      exit(1);
    }
    size_t size;
    int pin = since_pin >= next_pin && phase->pin_count < 4096;
    if (pin) {
      size = Between(&state, 32, 256);
      since_pin = 0;
      next_pin = (int64_t)Between(&state, 768 << 10, 1280 << 10);
    } else {
      size = NextSize(&state);
      since_pin += (int64_t)size;
    }
    blocks[count] = Allocate(size);
    is_pin[count] = (unsigned char)pin;
    if (pin) {
      phase->pins[phase->pin_count++] = blocks[count];
      phase->pin_bytes += (int64_t)size;
    }
    ++count;
    filled += (int64_t)size;
    step += (int64_t)size;
    if (step >= (8 << 20)) {  // pace the climb: 8 MiB, then 25 ms
      step = 0;
      SleepMs(25);
    }
  }
  for (size_t i = count - 1; i > 0; --i) {  // free in random order
    size_t j = (size_t)(Next(&state) % (i + 1));
    void* t = blocks[i];
    blocks[i] = blocks[j];
    blocks[j] = t;
    unsigned char p = is_pin[i];
    is_pin[i] = is_pin[j];
    is_pin[j] = p;
  }
  for (size_t i = 0; i < count; ++i) {
    if (!is_pin[i]) free(blocks[i]);
  }
  free(is_pin);
  free(blocks);

  pthread_mutex_lock(&g_mutex);
  ++g_phases_done;
  pthread_cond_broadcast(&g_cond);
  while (!g_release) pthread_cond_wait(&g_cond, &g_mutex);  // keep the arena ours until the end
  pthread_mutex_unlock(&g_mutex);
  for (size_t i = 0; i < phase->pin_count; ++i) free(phase->pins[i]);
  free(phase->pins);
  return NULL;
}

static int64_t ParseInt(const char* flag, const char* text) {
  char* end;
  long long value = strtoll(text, &end, 10);
  if (end == text || *end != '\0' || value < 0) {
    fprintf(stderr, "phased_arenas: %s needs a non-negative integer, got '%s'\n", flag, text);
    exit(2);
  }
  return value;
}

int main(int argc, char** argv) {
  struct Options options = {3, 142ll << 20, 2000, 600, 0};
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--api-trim") == 0) {
      options.api_trim = 1;
    } else if (i + 1 < argc && strcmp(argv[i], "--phases") == 0) {
      options.phases = (int)ParseInt(argv[i], argv[i + 1]);
      ++i;
    } else if (i + 1 < argc && strcmp(argv[i], "--phase-mib") == 0) {
      options.phase_bytes = ParseInt(argv[i], argv[i + 1]) << 20;
      ++i;
    } else if (i + 1 < argc && strcmp(argv[i], "--gap-ms") == 0) {
      options.gap_ms = ParseInt(argv[i], argv[i + 1]);
      ++i;
    } else if (i + 1 < argc && strcmp(argv[i], "--final-hold-ms") == 0) {
      options.final_hold_ms = ParseInt(argv[i], argv[i + 1]);
      ++i;
    } else {
      fprintf(stderr,
              "usage: phased_arenas [--phases N] [--phase-mib N] [--gap-ms N] [--final-hold-ms N] [--api-trim]\n");
      return 2;
    }
  }
  if (options.phases < 1 || options.phases > kMaxPhases) {
    fprintf(stderr, "phased_arenas: --phases must be 1..%d\n", kMaxPhases);
    return 2;
  }

  static struct Phase phases[kMaxPhases];
  int64_t pin_bytes = 0, live_peak = 0;
  size_t pins = 0;
  for (int k = 0; k < options.phases; ++k) {
    phases[k].index = k;
    phases[k].phase_bytes = options.phase_bytes;
    if (pthread_create(&phases[k].thread, NULL, RunPhase, &phases[k]) != 0) {
      fprintf(stderr, "phased_arenas: cannot start a thread\n");
      return 1;
    }
    pthread_mutex_lock(&g_mutex);
    while (g_phases_done <= k) pthread_cond_wait(&g_cond, &g_mutex);
    pthread_mutex_unlock(&g_mutex);
    if (pin_bytes + options.phase_bytes > live_peak) live_peak = pin_bytes + options.phase_bytes;
    pin_bytes += phases[k].pin_bytes;
    pins += phases[k].pin_count;
    SleepMs(options.gap_ms);
  }
  SleepMs(options.final_hold_ms);
  int64_t api_trim_bytes = -2;  // -2: not asked; -1: memtide_trim() is not there or cannot release
  if (options.api_trim) {
    int64_t (*trim)(void) = (int64_t(*)(void))dlsym(RTLD_DEFAULT, "memtide_trim");
    api_trim_bytes = trim != NULL ? trim() : -1;
    SleepMs(options.final_hold_ms);
  }
  printf("phases %d\n", options.phases);
  printf("pins %zu\n", pins);
  printf("live_peak_bytes %lld\n", (long long)live_peak);
  printf("api_trim_bytes %lld\n", (long long)api_trim_bytes);
  fflush(stdout);

  pthread_mutex_lock(&g_mutex);
  g_release = 1;
  pthread_cond_broadcast(&g_cond);
  pthread_mutex_unlock(&g_mutex);
  for (int k = 0; k < options.phases; ++k) pthread_join(phases[k].thread, NULL);
  return 0;
}
