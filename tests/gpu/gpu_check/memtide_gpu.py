"""Shared by the framework checks of scripts/gpu-check: memtide's GPU counters through its C API (the process
runs under LD_PRELOAD=libmemtide.so, so the symbols are in the global scope), and the ROW/SKIP lines the
driver (run_gpu_check.py) collects:
  ROW <tab> check (the driver prefixes the component) <tab> memtide <tab> truth <tab> relation <tab> PASS|FAIL
  SKIP <tab> what <tab> why
"""
import ctypes
import sys

MiB = 1 << 20

_FIELDS = ("current_bytes", "peak_bytes", "managed_current_bytes", "managed_peak_bytes",
           "pinned_host_current_bytes", "pinned_host_peak_bytes", "host_registered_bytes", "imported_bytes",
           "array_bytes", "pool_reserved_bytes", "device_used_bytes", "device_total_bytes", "allocations", "frees",
           "unknown_frees")


class GpuStats(ctypes.Structure):
    """struct memtide_gpu_stats (include/memtide/memtide.h)."""
    _fields_ = [("ordinal", ctypes.c_int32), ("uuid", ctypes.c_uint8 * 16), ("reserved", ctypes.c_uint32)] + [
        (name, ctypes.c_uint64) for name in _FIELDS]


_process = ctypes.CDLL(None)
_get_stats = getattr(_process, "memtide_get_gpu_stats", None)
_reset_peak = getattr(_process, "memtide_reset_peak", None)


def under_memtide():
    return _get_stats is not None


def stats(device=0):
    """memtide's counters for `device`; all zero (ordinal -1) if memtide has not seen it."""
    s = GpuStats()
    _get_stats(ctypes.c_int(device), ctypes.byref(s))
    return s


def reset_peak():
    _reset_peak()


def skip(what, why):
    print(f"SKIP\t{what}\t{why}", flush=True)


class Check:
    """Prints one ROW per comparison, prefixed with the component's name; counts failures."""

    def __init__(self, component):
        self.component = component
        self.failures = 0
        if not under_memtide():
            self.row("memtide C API bound", 0, 1, "==", False)
            sys.exit(1)

    def row(self, check, memtide, truth, relation, ok):
        print(f"ROW\t{check}\t{memtide}\t{truth}\t{relation}\t{'PASS' if ok else 'FAIL'}", flush=True)
        if not ok:
            self.failures += 1

    def equal(self, check, memtide, truth):
        self.row(check, memtide, truth, "==", memtide == truth)

    def near(self, check, memtide, truth, tolerance):
        self.row(check, memtide, truth, f"within {tolerance / MiB:g} MiB", abs(memtide - truth) <= tolerance)

    def between(self, check, memtide, low, high):
        self.row(check, memtide, f"[{low}, {high}]", "in", low <= memtide <= high)

    def info(self, check, memtide, truth):
        print(f"ROW\t{check}\t{memtide}\t{truth}\tinfo\tINFO", flush=True)

    def finish(self):
        sys.exit(1 if self.failures else 0)
