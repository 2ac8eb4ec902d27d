// The real CUDA runtime (static by default, or -cudart shared) against the fake driver: the runtime makes
// its real lookup sequence (dlsym of cuGetProcAddress_v2, the self-query, ~450 lookups) before it stops at
// cuGetExportTable, which the fake does not provide. The test reads memtide's MEMTIDE_VERBOSE diagnostics
// line and compares it with the fake driver's own count of lookups.
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <stdio.h>

int main() {
  void* pointer = nullptr;
  cudaError_t status = cudaMalloc(&pointer, 1 << 20);
  void* driver = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
  long long (*lookups)(void) = nullptr;
  if (driver != nullptr) *reinterpret_cast<void**>(&lookups) = dlsym(driver, "fakeCudaProcAddressLookups");
  long long (*calls)(const char*) = nullptr;
  if (driver != nullptr) *reinterpret_cast<void**>(&calls) = dlsym(driver, "fakeCudaCalls");
  printf("cudaMalloc=%d driver_loaded=%d fake_lookups=%lld cuInit=%lld cuGetExportTable=%lld\n",
         static_cast<int>(status), driver != nullptr, lookups != nullptr ? lookups() : -1LL,
         calls != nullptr ? calls("cuInit") : -1LL, calls != nullptr ? calls("cuGetExportTable") : -1LL);
  return 0;
}
