// scripts/gpu-check, CUDA part: every allocation family of the CUDA runtime on a real GPU, memtide's per-device
// counters (read in process through the C API, which samples the device first) beside the ground truth the
// runtime itself reports. Built twice by the check: default (static cudart) and -cudart shared.
// Prints one line per check: "ROW\t<check>\t<memtide>\t<truth>\t<relation>\t<PASS|FAIL>", then
// "FINAL current=… peak=… allocations=… frees=… unknown_frees=… pid=…" for the exit-state check. No kernels
// (no GPU architecture to pick); the captured graph uses a memset node.
#include <cuda_runtime.h>
#include <memtide/memtide.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>

namespace {

int g_failures = 0;

void Row(const std::string& check, long long memtide, long long truth, const char* relation, bool ok) {
  printf("ROW\t%s\t%lld\t%lld\t%s\t%s\n", check.c_str(), memtide, truth, relation, ok ? "PASS" : "FAIL");
  fflush(stdout);
  if (!ok) ++g_failures;
}

void Equal(const std::string& check, long long memtide, long long truth) { Row(check, memtide, truth, "==", memtide == truth); }

void Near(const std::string& check, long long memtide, long long truth, long long tolerance) {
  std::string relation = "within " + std::to_string(tolerance >> 20) + " MiB";
  Row(check, memtide, truth, relation.c_str(), llabs(memtide - truth) <= tolerance);
}

void Ok(cudaError_t status, const char* what) {
  if (status == cudaSuccess) return;
  printf("ROW\t%s\t-\t-\tcudaSuccess\tFAIL (%s)\n", what, cudaGetErrorString(status));
  fflush(stdout);
  exit(1);
}

memtide_gpu_stats Stats() {
  memtide_gpu_stats stats{};
  memtide_get_gpu_stats(0, &stats);
  return stats;
}

long long PoolTruth(bool with_graphs) {
  cudaMemPool_t pool;
  unsigned long long reserved = 0;
  Ok(cudaDeviceGetDefaultMemPool(&pool, 0), "cudaDeviceGetDefaultMemPool");
  Ok(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrReservedMemCurrent, &reserved), "cudaMemPoolGetAttribute");
  long long total = static_cast<long long>(reserved);
  if (with_graphs) {
    unsigned long long graph = 0;
    Ok(cudaDeviceGetGraphMemAttribute(0, cudaGraphMemAttrReservedMemCurrent, &graph), "cudaDeviceGetGraphMemAttribute");
    total += static_cast<long long>(graph);
  }
  return total;
}

}  // namespace

int main(int argc, char** argv) {
  (void)argc;
  (void)argv;
  if (memtide_get_gpu_stats == nullptr) {
    printf("ROW\tmemtide C API bound\t0\t1\t==\tFAIL (not under LD_PRELOAD=libmemtide.so)\n");
    return 1;
  }
  const long long MiB = 1 << 20;
  Ok(cudaSetDevice(0), "cudaSetDevice");
  Ok(cudaFree(nullptr), "context creation");
  memtide_gpu_stats base = Stats();
  long long base_current = static_cast<long long>(base.current_bytes);
  cudaStream_t stream;
  Ok(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");

  void *device = nullptr, *async = nullptr;
  Ok(cudaMalloc(&device, 64 * MiB), "cudaMalloc");
  Equal("cudaMalloc 64 MiB: device current", Stats().current_bytes - base_current, 64 * MiB);
  Ok(cudaMallocAsync(&async, 32 * MiB, stream), "cudaMallocAsync");
  Ok(cudaStreamSynchronize(stream), "sync");
  memtide_gpu_stats s = Stats();
  Equal("+ cudaMallocAsync 32 MiB: device current", s.current_bytes - base_current, 96 * MiB);
  Row("device peak >= base + 96 MiB", s.peak_bytes, base_current + 96 * MiB, ">=",
      static_cast<long long>(s.peak_bytes) >= base_current + 96 * MiB);
  Equal("stream-ordered pool reserved (sampled)", s.pool_reserved_bytes, PoolTruth(false));

  void* pitched = nullptr;
  size_t pitch = 0;
  Ok(cudaMallocPitch(&pitched, &pitch, 1000, 300), "cudaMallocPitch");
  Equal("cudaMallocPitch 1000x300: pitch x height", Stats().current_bytes - base_current - 96 * MiB, pitch * 300);
  Ok(cudaFree(pitched), "cudaFree(pitched)");
  cudaPitchedPtr volume;
  Ok(cudaMalloc3D(&volume, make_cudaExtent(512, 64, 8)), "cudaMalloc3D");
  Equal("cudaMalloc3D 512x64x8: pitch x height x depth", Stats().current_bytes - base_current - 96 * MiB,
        volume.pitch * 64 * 8);
  Ok(cudaFree(volume.ptr), "cudaFree(volume)");

  void* managed = nullptr;
  Ok(cudaMallocManaged(&managed, 16 * MiB), "cudaMallocManaged");
  Equal("cudaMallocManaged 16 MiB: managed", Stats().managed_current_bytes - base.managed_current_bytes, 16 * MiB);
  void *host1 = nullptr, *host2 = nullptr;
  Ok(cudaMallocHost(&host1, 8 * MiB), "cudaMallocHost");
  Ok(cudaHostAlloc(&host2, 4 * MiB, cudaHostAllocPortable), "cudaHostAlloc");
  Equal("cudaMallocHost 8 + cudaHostAlloc 4 MiB: pinned host", Stats().pinned_host_current_bytes - base.pinned_host_current_bytes,
        12 * MiB);
  void* plain = malloc(2 * MiB);
  Ok(cudaHostRegister(plain, 2 * MiB, cudaHostRegisterDefault), "cudaHostRegister");
  Equal("cudaHostRegister 2 MiB: host registered", Stats().host_registered_bytes, 2 * MiB);
  cudaChannelFormatDesc format = cudaCreateChannelDesc<float>();
  cudaArray_t array = nullptr;
  Ok(cudaMallocArray(&array, &format, 256, 256), "cudaMallocArray");
  s = Stats();
  Equal("cudaMallocArray 256x256 float: array bytes", s.array_bytes, 256 * 256 * 4);
  Equal("...counted as device memory too", s.current_bytes - base_current - 96 * MiB, 256 * 256 * 4);

  // A stream-ordered allocation captured into a graph belongs to the graph: no count at capture or launch.
  long long before_capture = Stats().current_bytes;
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  void* captured = nullptr;
  Ok(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), "cudaStreamBeginCapture");
  Ok(cudaMallocAsync(&captured, 8 * MiB, stream), "captured cudaMallocAsync");
  Ok(cudaMemsetAsync(captured, 0, 8 * MiB, stream), "captured memset");
  Ok(cudaFreeAsync(captured, stream), "captured cudaFreeAsync");
  Ok(cudaStreamEndCapture(stream, &graph), "cudaStreamEndCapture");
  Equal("captured allocation: device current unchanged", Stats().current_bytes, before_capture);
  Ok(cudaGraphInstantiate(&exec, graph, 0), "cudaGraphInstantiate");
  Ok(cudaGraphLaunch(exec, stream), "cudaGraphLaunch");
  Ok(cudaStreamSynchronize(stream), "sync");
  Equal("graph launched: device current unchanged", Stats().current_bytes, before_capture);
  Equal("pools + graph memory reserved (sampled)", Stats().pool_reserved_bytes, PoolTruth(true));

  size_t free_bytes = 0, total_bytes = 0;
  s = Stats();
  Ok(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
  Equal("device total (cuMemGetInfo)", s.device_total_bytes, total_bytes);
  Near("device used, all processes (cuMemGetInfo)", s.device_used_bytes, total_bytes - free_bytes, 64 * MiB);

  Ok(cudaGraphExecDestroy(exec), "cudaGraphExecDestroy");
  Ok(cudaGraphDestroy(graph), "cudaGraphDestroy");
  Ok(cudaFreeArray(array), "cudaFreeArray");
  Ok(cudaHostUnregister(plain), "cudaHostUnregister");
  free(plain);
  Ok(cudaFreeHost(host1), "cudaFreeHost");
  Ok(cudaFreeHost(host2), "cudaFreeHost");
  Ok(cudaFree(managed), "cudaFree(managed)");
  Ok(cudaFreeAsync(async, stream), "cudaFreeAsync");
  Ok(cudaStreamSynchronize(stream), "sync");
  Ok(cudaFree(device), "cudaFree");
  s = Stats();
  Equal("all freed: device current back to the start", s.current_bytes, base_current);
  Equal("all freed: managed", s.managed_current_bytes, base.managed_current_bytes);
  Equal("all freed: pinned host", s.pinned_host_current_bytes, base.pinned_host_current_bytes);
  Equal("all freed: host registered", s.host_registered_bytes, 0);
  Equal("all freed: arrays", s.array_bytes, 0);
  Equal("frees of unknown pointers", s.unknown_frees, 0);
  Equal("frees == allocations (since the start)", s.frees - base.frees, s.allocations - base.allocations);
  Ok(cudaStreamDestroy(stream), "cudaStreamDestroy");
  printf("FINAL current=%llu peak=%llu allocations=%llu frees=%llu unknown_frees=%llu pid=%d\n",
         static_cast<unsigned long long>(s.current_bytes), static_cast<unsigned long long>(s.peak_bytes),
         static_cast<unsigned long long>(s.allocations), static_cast<unsigned long long>(s.frees),
         static_cast<unsigned long long>(s.unknown_frees), static_cast<int>(getpid()));
  return g_failures == 0 ? 0 : 1;
}
