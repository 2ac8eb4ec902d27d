/* The cudart-style start shared by several programs: dlopen the driver locally, dlsym its
 * cuGetProcAddress_v2, self-query, and return the per-thread-default-stream and legacy lookups. */
#ifndef MEMTIDE_TESTS_GPU_PROGRAMS_DRIVER_SETUP_H_
#define MEMTIDE_TESTS_GPU_PROGRAMS_DRIVER_SETUP_H_

#include "gpu_check.h"

static PFN_cuGetProcAddress_v2 DriverSetup(void) {
  void *driver = dlopen("libcuda.so.1", RTLD_NOW);
  GPU_CHECK(driver != NULL, "dlopen: %s", dlerror());
  GpuBindFake();
  PFN_cuGetProcAddress_v2 gpa = (PFN_cuGetProcAddress_v2)dlsym(driver, "cuGetProcAddress_v2");
  GPU_CHECK(gpa != NULL, "dlsym(cuGetProcAddress_v2): %s", dlerror());
  PFN_cuGetProcAddress_v2 self = NULL;
  GPU_CHECK_OK(gpa("cuGetProcAddress", (void **)&self, 12000, 0, NULL));
  return self;
}

static void *DriverGet(PFN_cuGetProcAddress_v2 gpa, const char *name, int version, cuuint64_t flags) {
  void *function = NULL;
  GPU_CHECK_OK(gpa(name, &function, version, flags, NULL));
  return function;
}

#endif /* MEMTIDE_TESTS_GPU_PROGRAMS_DRIVER_SETUP_H_ */
