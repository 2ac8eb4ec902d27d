// A stand-in libnvidia-ml.so.1 for `memtide doctor`'s NVML path on machines without a GPU: one device,
// "Fake GPU 80GB", 1234 MiB of 81920 MiB used, driver "999.99". Loaded through LD_LIBRARY_PATH by the test.
#include <string.h>

typedef int nvmlReturn_t;
typedef struct {
  unsigned long long total, free, used;
} nvmlMemory_t;
static int g_device;

nvmlReturn_t nvmlInit_v2(void) { return 0; }
nvmlReturn_t nvmlShutdown(void) { return 0; }
nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int* count) {
  *count = 1;
  return 0;
}
nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, void** device) {
  if (index != 0) return 2;  // NVML_ERROR_INVALID_ARGUMENT
  *device = &g_device;
  return 0;
}
nvmlReturn_t nvmlDeviceGetMemoryInfo(void* device, nvmlMemory_t* memory) {
  if (device != &g_device) return 2;
  memory->total = 81920ULL << 20;
  memory->used = 1234ULL << 20;
  memory->free = memory->total - memory->used;
  return 0;
}
nvmlReturn_t nvmlDeviceGetName(void* device, char* name, unsigned int length) {
  (void)device;
  strncpy(name, "Fake GPU 80GB", length);
  return 0;
}
nvmlReturn_t nvmlSystemGetDriverVersion(char* version, unsigned int length) {
  strncpy(version, "999.99", length);
  return 0;
}
const char* nvmlErrorString(nvmlReturn_t result) { return result == 0 ? "Success" : "Fake error"; }
