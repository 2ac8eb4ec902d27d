"""scripts/gpu-check, PyTorch part. One process per allocator mode (argv[1]):
  default     the native caching allocator (cudaMalloc -> cuMemAlloc_v2), plus pinned host memory
  expandable  PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True (cuMemCreate/cuMemMap through
              cudaGetDriverEntryPointByVersion)
  async       PYTORCH_CUDA_ALLOC_CONF=backend:cudaMallocAsync (cuMemAllocAsync, a stream-ordered pool)
  register    pinned_use_cuda_host_register:True (malloc + cudaHostRegister)
  graph       CUDA graph capture (torch.cuda.graph, global capture mode) and replay: memtide's calls during the
              capture must not disturb it, and the graph's private pool is PyTorch's reserved memory
Ground truth is PyTorch's own accounting. memtide also counts the driver allocations PyTorch makes outside its
allocator (CUDA.md §1.5: ~64 MiB after a matmul), so the checks compare differences: memtide's device bytes
minus PyTorch's must stay the same constant through allocations, frees and empty_cache, exactly.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from memtide_gpu import MiB, Check, reset_peak, skip, stats  # noqa: E402

mode = sys.argv[1]
component = f"torch {mode}"
try:
    import torch
except Exception as error:  # noqa: BLE001 - any import failure means "not here"
    skip(component, f"PyTorch is not importable ({type(error).__name__}: {error})")
    sys.exit(0)
if not torch.cuda.is_available():
    skip(component, "torch.cuda.is_available() is False")
    sys.exit(0)

check = Check(component)
torch.cuda.set_device(0)
warm = torch.randn(512, 512, device="cuda")
(warm @ warm).sum().item()  # cuBLAS handle and workspace: allocations outside the caching allocator
torch.cuda.synchronize()


def pinned_test(register):
    # The host allocator's bytes of pinned blocks it owns (active and cached, sizes rounded up to a power of two):
    # "reserved_bytes.current" in older releases, "allocated_bytes.current" in newer ones.
    host_stats = getattr(torch.cuda, "host_memory_stats", None)

    def owned():
        if host_stats is None:
            return None
        values = host_stats()
        return values.get("reserved_bytes.current", values.get("allocated_bytes.current"))

    before = stats(0)
    truth_before = owned()
    pinned = torch.empty(10 * MiB, dtype=torch.uint8, pin_memory=True)
    after = stats(0)
    truth_after = owned()
    pinned_delta = after.pinned_host_current_bytes - before.pinned_host_current_bytes
    registered_delta = after.host_registered_bytes - before.host_registered_bytes
    if register:
        if registered_delta == 0 and pinned_delta > 0:
            skip(component, "this PyTorch ignored pinned_use_cuda_host_register (it used cudaHostAlloc)")
            return pinned
        check.row("pin_memory 10 MiB: host registered grows", registered_delta, 10 * MiB, ">=",
                  registered_delta >= 10 * MiB)
        check.equal("pin_memory 10 MiB: no cudaHostAlloc", pinned_delta, 0)
    elif truth_before is not None and truth_after is not None:
        check.equal("pin_memory 10 MiB: pinned host vs host allocator reserved (delta)", pinned_delta,
                    truth_after - truth_before)
    else:
        check.row("pin_memory 10 MiB: pinned host (delta)", pinned_delta, 10 * MiB, ">=", pinned_delta >= 10 * MiB)
    return pinned


if mode == "register":
    keep = pinned_test(register=True)
    check.finish()

# The PyTorch figure memtide's device bytes correspond to.
if mode == "async":
    name, truth, peak_truth = "memory_allocated", torch.cuda.memory_allocated, torch.cuda.max_memory_allocated
else:
    name, truth, peak_truth = "memory_reserved", torch.cuda.memory_reserved, torch.cuda.max_memory_reserved


def outside():
    return stats(0).current_bytes - truth()


base = outside()
check.info(f"device current vs torch.cuda.{name}() at start", stats(0).current_bytes, truth())

if mode == "graph":
    static_in = torch.randn(1024, 1024, device="cuda")
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            static_out = static_in @ static_in
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = static_in @ static_in + 1
    graph.replay()
    torch.cuda.synchronize()
    expected = (static_in @ static_in + 1)
    check.equal("captured graph replays correctly", int(torch.allclose(static_out, expected)), 1)
    check.equal("after capture and replay: current - memory_reserved()", outside(), base)
    del graph, static_out
    torch.cuda.empty_cache()
    check.equal("after releasing the graph: current - memory_reserved()", outside(), base)
    check.equal("frees of unknown pointers", stats(0).unknown_frees, 0)
    check.finish()

torch.cuda.reset_peak_memory_stats()
reset_peak()
big = torch.empty(100 * MiB, dtype=torch.uint8, device="cuda")
odd = torch.empty(30 * MiB + 123, dtype=torch.uint8, device="cuda")
torch.cuda.synchronize()
check.equal(f"after 130 MiB of tensors: current - {name}()", outside(), base)
peak_outside = stats(0).peak_bytes - peak_truth()
check.equal(f"peak - max_{name}()", peak_outside, base)
if mode == "async":
    # The pool keeps what cudaFreeAsync returns: its reserved bytes, as sampled, against PyTorch's view of them.
    check.near("pool reserved (sampled) vs memory_reserved()", stats(0).pool_reserved_bytes,
               torch.cuda.memory_reserved(), 2 * MiB)
del big
torch.cuda.synchronize()
check.equal(f"after del 100 MiB: current - {name}()", outside(), base)
before_empty = stats(0).current_bytes
torch.cuda.empty_cache()
torch.cuda.synchronize()
check.equal(f"after empty_cache: current - {name}()", outside(), base)
if mode != "async":
    after_empty = stats(0).current_bytes
    check.row("empty_cache lowers device current", after_empty, before_empty, "<", after_empty < before_empty)
del odd
torch.cuda.empty_cache()
check.equal("frees of unknown pointers", stats(0).unknown_frees, 0)
if mode == "default":
    keep = pinned_test(register=False)
check.finish()
