"""memtide's C API for Python programs, shaped like tracemalloc.

Runs inside the traced process. The functions come from libmemtide.so when it is preloaded
(`memtide run -- python3 app.py`, or LD_PRELOAD); without it every call is a harmless no-op, so
application code can call them unconditionally.

    import memtide
    memtide.mark("model_loaded")
    current, peak = memtide.get_traced_memory()
    memtide.snapshot("/tmp/live.json")   # with MEMTIDE_TRACE=sample|full: live blocks by stack

Byte counts cover the whole process (every allocator call through malloc, not only Python objects),
measured as the allocator's usable sizes.
"""

import ctypes
import os

__all__ = ["get_traced_memory", "reset_peak", "mark", "get_heap_stats", "snapshot", "is_active"]


class _HeapStats(ctypes.Structure):
    # Mirrors struct memtide_heap_stats in include/memtide/memtide.h, field for field.
    _fields_ = [
        ("current_bytes", ctypes.c_uint64),
        ("peak_bytes", ctypes.c_uint64),
        ("allocations", ctypes.c_uint64),
        ("frees", ctypes.c_uint64),
        ("allocated_bytes_total", ctypes.c_uint64),
        ("mmap_current_bytes", ctypes.c_uint64),
        ("mmap_peak_bytes", ctypes.c_uint64),
    ]


# CDLL(None) is dlopen(NULL): the process's global namespace, where LD_PRELOAD puts the preload. Looking
# the names up there (rather than loading libmemtide.so ourselves) never brings an inactive second copy
# into a process that is not traced.
_process = ctypes.CDLL(None)


def _lookup(name, argtypes):
    try:
        fn = getattr(_process, name)
    except AttributeError:
        return None
    fn.argtypes = argtypes
    fn.restype = None
    return fn


_get_traced_memory = _lookup(
    "memtide_get_traced_memory", [ctypes.POINTER(ctypes.c_size_t), ctypes.POINTER(ctypes.c_size_t)]
)
_reset_peak = _lookup("memtide_reset_peak", [])
_mark = _lookup("memtide_mark", [ctypes.c_char_p])
_get_heap_stats = _lookup("memtide_get_heap_stats", [ctypes.POINTER(_HeapStats)])
_snapshot = _lookup("memtide_snapshot", [ctypes.c_char_p])
if _snapshot is not None:
    _snapshot.restype = ctypes.c_int


def is_active():
    """True when libmemtide.so is loaded in this process."""
    return _get_traced_memory is not None


def get_traced_memory():
    """(current, peak) heap bytes of the process; (0, 0) without the preload."""
    if _get_traced_memory is None:
        return (0, 0)
    current, peak = ctypes.c_size_t(0), ctypes.c_size_t(0)
    _get_traced_memory(ctypes.byref(current), ctypes.byref(peak))
    return (current.value, peak.value)


def reset_peak():
    """Set the peak to the current value."""
    if _reset_peak is not None:
        _reset_peak()


def mark(label):
    """Record a labelled checkpoint (str or bytes, at most 47 bytes kept) in the segment and report."""
    if _mark is None:
        return
    if isinstance(label, str):
        label = label.encode("utf-8", "replace")
    # The C side reads a NUL-terminated string; anything after an embedded NUL would be dropped anyway.
    _mark(bytes(label).split(b"\0", 1)[0])


def get_heap_stats():
    """All heap counters as a dict (field names as in memtide.h); all zero without the preload."""
    stats = _HeapStats()
    if _get_heap_stats is not None:
        _get_heap_stats(ctypes.byref(stats))
    return {name: getattr(stats, name) for name, _ in _HeapStats._fields_}


def snapshot(path):
    """Write the live heap blocks by allocation stack to `path` (a trace file for `memtide report` and
    `memtide diff`), like tracemalloc.take_snapshot().dump(path). Needs tracing (MEMTIDE_TRACE=sample|full,
    or `memtide run --trace`). Returns False without the preload; raises OSError when memtide cannot write
    the snapshot (errno ENOTSUP: tracing is off)."""
    if _snapshot is None:
        return False
    status = _snapshot(os.fsencode(path))
    if status != 0:
        raise OSError(status, "memtide_snapshot: " + os.strerror(status), path)
    return True
