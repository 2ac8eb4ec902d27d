/* Helpers shared by the GPU test programs (tests/gpu/programs/). Each program runs under LD_PRELOAD of
 * libmemtide.so against the fake driver, compares memtide's counters (the C API) with the fake's ground
 * truth after every step, and exits 1 with one line on stderr at the first mismatch. GPU byte counts do
 * not move with the program's own host allocations, so stdio is fine here. */
#ifndef MEMTIDE_TESTS_GPU_PROGRAMS_GPU_CHECK_H_
#define MEMTIDE_TESTS_GPU_PROGRAMS_GPU_CHECK_H_

#include <dlfcn.h>
#include <memtide/memtide.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_cuda.h"

#define GPU_FAIL(...)                                   \
  do {                                                  \
    fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);     \
    fprintf(stderr, __VA_ARGS__);                       \
    fprintf(stderr, "\n");                              \
    exit(1);                                            \
  } while (0)

#define GPU_CHECK(cond, ...)            \
  do {                                  \
    if (!(cond)) GPU_FAIL(__VA_ARGS__); \
  } while (0)

#define GPU_CHECK_EQ(what, got, want)                                                                 \
  do {                                                                                                \
    long long gpu_got_ = (long long)(got);                                                            \
    long long gpu_want_ = (long long)(want);                                                          \
    if (gpu_got_ != gpu_want_) GPU_FAIL("%s: got %lld, want %lld", (what), gpu_got_, gpu_want_);      \
  } while (0)

#define GPU_CHECK_OK(call)                                              \
  do {                                                                  \
    CUresult gpu_result_ = (call);                                      \
    if (gpu_result_ != CUDA_SUCCESS) GPU_FAIL("%s -> %d", #call, gpu_result_); \
  } while (0)

/* The fake driver's ground-truth functions, bound by GpuBindFake() once libcuda.so.1 is loaded (programs
 * that open the driver RTLD_LOCAL, as cudart does, cannot link them). */
static long long (*FakeLiveBytes)(int device, int kind);
static long long (*FakeCalls)(const char *name);
static long long (*FakeLookups)(void);
static void *(*FakeRealFunction)(const char *name);

static inline void GpuBindFake(void) {
  void *driver = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
  GPU_CHECK(driver != NULL, "libcuda.so.1 is not loaded: %s", dlerror());
  *(void **)&FakeLiveBytes = dlsym(driver, "fakeCudaLiveBytes");
  *(void **)&FakeCalls = dlsym(driver, "fakeCudaCalls");
  *(void **)&FakeLookups = dlsym(driver, "fakeCudaProcAddressLookups");
  *(void **)&FakeRealFunction = dlsym(driver, "fakeCudaRealFunction");
  GPU_CHECK(FakeLiveBytes && FakeCalls && FakeLookups && FakeRealFunction, "libcuda.so.1 is not the fake driver");
}

static inline void GpuRequirePreload(void) {
  GPU_CHECK(memtide_get_gpu_stats != NULL && memtide_get_gpu_traced_memory != NULL,
            "memtide's C API is not bound: run under LD_PRELOAD=libmemtide.so");
}

static inline struct memtide_gpu_stats GpuStats(int device) {
  struct memtide_gpu_stats stats;
  memtide_get_gpu_stats(device, &stats);
  return stats;
}

/* memtide's per-device buckets equal the fake driver's ground truth. `where` names the step. */
static inline void GpuExpectMatchesDriver(int device, const char *where) {
  struct memtide_gpu_stats s = GpuStats(device);
  char what[256];
  snprintf(what, sizeof(what), "%s: device %d current", where, device);
  GPU_CHECK_EQ(what, s.current_bytes, FakeLiveBytes(device, FAKE_KIND_DEVICE));
  snprintf(what, sizeof(what), "%s: device %d managed", where, device);
  GPU_CHECK_EQ(what, s.managed_current_bytes, FakeLiveBytes(device, FAKE_KIND_MANAGED));
  snprintf(what, sizeof(what), "%s: device %d pinned host", where, device);
  GPU_CHECK_EQ(what, s.pinned_host_current_bytes, FakeLiveBytes(device, FAKE_KIND_PINNED));
  snprintf(what, sizeof(what), "%s: device %d host registered", where, device);
  GPU_CHECK_EQ(what, s.host_registered_bytes, FakeLiveBytes(device, FAKE_KIND_REGISTERED));
  snprintf(what, sizeof(what), "%s: device %d imported", where, device);
  GPU_CHECK_EQ(what, s.imported_bytes, FakeLiveBytes(device, FAKE_KIND_IMPORTED));
}

/* Whether `pointer` lies in libmemtide.so (a memtide wrapper) rather than the driver. */
static inline int GpuIsMemtide(const void *pointer) {
  Dl_info info;
  return dladdr(pointer, &info) != 0 && info.dli_fname != NULL && strstr(info.dli_fname, "libmemtide") != NULL;
}

#endif /* MEMTIDE_TESTS_GPU_PROGRAMS_GPU_CHECK_H_ */
