"""scripts/gpu-check, JAX part, run with XLA_PYTHON_CLIENT_MEM_FRACTION=.1: XLA preallocates its BFC pool (on
CUDA 13, one cuMemCreate through XLA's dlsym stubs) and makes a few cuMemAlloc_v2 calls outside it."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from memtide_gpu import MiB, Check, skip, stats  # noqa: E402

try:
    import jax
    import jax.numpy as jnp
except Exception as error:  # noqa: BLE001
    skip("jax", f"JAX is not importable ({type(error).__name__}: {error})")
    sys.exit(0)
try:
    device = jax.devices("gpu")[0]
except Exception as error:  # noqa: BLE001
    skip("jax", f"JAX sees no GPU ({error})")
    sys.exit(0)

check = Check("jax")
x = jax.device_put(jnp.ones((1024, 1024), dtype=jnp.float32), device)
(x @ x).block_until_ready()
memory = device.memory_stats() or {}
s = stats(0)
check.info("memory_stats()", s.current_bytes, " ".join(f"{k}={v}" for k, v in sorted(memory.items())))
limit = memory.get("bytes_limit")
if limit is None:
    skip("jax", "memory_stats() has no bytes_limit")
else:
    # The BFC pool (bytes_limit, preallocated) plus XLA's allocations outside it (CUDA.md §1.4: ~67 MB).
    check.between("device current - bytes_limit (preallocated pool; XLA's own allocations)",
                  s.current_bytes - limit, -64 * MiB, 1024 * MiB)
fraction = float(os.environ.get("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.75"))
check.row(f"device current >= {fraction:g} x device total (preallocation)", s.current_bytes,
          int(0.95 * fraction * s.device_total_bytes), ">=", s.current_bytes >= 0.95 * fraction * s.device_total_bytes)
check.equal("frees of unknown pointers", s.unknown_frees, 0)
check.finish()
