"""scripts/gpu-check, CuPy part (CuPy links the CUDA runtime statically: visible only at the driver layer).
Default memory pool (cudaMalloc), MemoryAsyncPool (cudaMallocAsync) and pinned memory (cudaHostAlloc).
CuPy's pools round sizes up to 512 bytes."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from memtide_gpu import MiB, Check, skip, stats  # noqa: E402

try:
    import cupy
    import cupyx
except Exception as error:  # noqa: BLE001
    skip("cupy", f"CuPy is not importable ({type(error).__name__}: {error})")
    sys.exit(0)
try:
    cupy.cuda.runtime.getDeviceCount()
except Exception as error:  # noqa: BLE001
    skip("cupy", f"no CUDA device for CuPy ({error})")
    sys.exit(0)

check = Check("cupy")
cupy.cuda.Device(0).use()
cupy.zeros(1).sum().item()
pool = cupy.get_default_memory_pool()


def outside():
    return stats(0).current_bytes - pool.total_bytes()


base = outside()
a = cupy.empty(64 * MiB, dtype=cupy.uint8)
b = cupy.empty(3 * MiB + 100, dtype=cupy.uint8)
check.equal("default pool: current - pool.total_bytes() after 67 MiB", outside(), base)
del a, b
pool.free_all_blocks()
check.equal("default pool: current - pool.total_bytes() after free_all_blocks", outside(), base)

async_pool = cupy.cuda.MemoryAsyncPool()
cupy.cuda.set_allocator(async_pool.malloc)
before = stats(0).current_bytes
c = cupy.empty(32 * MiB, dtype=cupy.uint8)
cupy.cuda.get_current_stream().synchronize()
delta = stats(0).current_bytes - before
check.between("async pool: 32 MiB array (cuMemAllocAsync)", delta, 32 * MiB, 32 * MiB + 511)
check.near("async pool: pool reserved (sampled) vs MemoryAsyncPool.total_bytes()", stats(0).pool_reserved_bytes,
           async_pool.total_bytes(), 2 * MiB)
del c
cupy.cuda.get_current_stream().synchronize()
check.equal("async pool: freed", stats(0).current_bytes, before)
cupy.cuda.set_allocator(pool.malloc)

before_pinned = stats(0).pinned_host_current_bytes
pinned = cupyx.empty_pinned((8 * MiB,), dtype=cupy.uint8)
pinned_delta = stats(0).pinned_host_current_bytes - before_pinned
check.between("empty_pinned 8 MiB: pinned host", pinned_delta, 8 * MiB, 8 * MiB + 511)
check.equal("frees of unknown pointers", stats(0).unknown_frees, 0)
check.finish()
