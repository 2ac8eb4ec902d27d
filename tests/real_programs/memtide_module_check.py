"""Drives python/memtide.py (the ctypes binding of memtide.h) from inside a traced or untraced Python.

Usage: python3 -I memtide_module_check.py PYTHON_DIR absent|active
  absent: no preload; every function must be a harmless no-op.
  active: under the preload; checks the numbers against a 50,000,000-byte allocation and leaves marks
          whose labels and order memtide_module_test.sh checks in the `memtide run --report` JSON.
Prints one line per failed expectation and exits 1 if there was any."""

import sys

sys.path.insert(0, sys.argv[1])
import memtide  # noqa: E402

BIG = 50_000_000
MIB = 1 << 20
LONG_LABEL = "a_label_longer_than_forty_seven_bytes_which_gets_truncated"
failures = []


def expect(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def check_absent():
    expect(not memtide.is_active(), "is_active() is False without the preload")
    expect(memtide.get_traced_memory() == (0, 0), "get_traced_memory() == (0, 0) without the preload")
    memtide.reset_peak()
    memtide.mark("nobody_listens")
    memtide.mark(b"bytes_too")
    stats = memtide.get_heap_stats()
    expect(set(stats) >= {"current_bytes", "peak_bytes", "allocations"}, "get_heap_stats() has the fields")
    expect(not any(stats.values()), "get_heap_stats() is all zero without the preload")
    expect(memtide.snapshot("/nonexistent/never_written.json") is False, "snapshot() is False without the preload")


def check_active():
    expect(memtide.is_active(), "is_active() under the preload")
    memtide.mark("start")
    try:
        memtide.snapshot("/nonexistent/never_written.json")
        expect(False, "snapshot() raises when tracing is off")
    except OSError as error:
        import errno
        expect(error.errno == errno.ENOTSUP, "snapshot() with tracing off: ENOTSUP, got %r" % error)
    memtide.get_traced_memory()  # warm up: the first call creates ctypes objects of its own
    before, _ = memtide.get_traced_memory()
    expect(before > 0, "current > 0 in a running interpreter (got %d)" % before)

    big = bytes(BIG)
    after, peak = memtide.get_traced_memory()
    rise = after - before
    expect(BIG <= rise <= BIG + MIB,
           "current rose by %d..%d bytes for bytes(%d), got %d" % (BIG, BIG + MIB, BIG, rise))
    expect(peak >= after, "peak %d >= current %d" % (peak, after))
    stats = memtide.get_heap_stats()
    expect(stats["current_bytes"] >= BIG and stats["allocations"] > 0,
           "get_heap_stats() sees the block: %r" % stats)
    memtide.mark("after_alloc")

    del big
    freed, peak = memtide.get_traced_memory()
    expect(after - freed >= BIG, "current fell by >= %d after del, got %d" % (BIG, after - freed))
    expect(peak >= after, "peak %d still >= %d after the free" % (peak, after))
    memtide.mark("after_free")

    memtide.reset_peak()
    current, peak = memtide.get_traced_memory()
    expect(peak == current, "peak == current right after reset_peak(), got %d and %d" % (peak, current))
    expect(peak < after - BIG // 2, "reset_peak() dropped the peak below the freed block's level")
    memtide.mark("after_reset_peak")
    memtide.mark(LONG_LABEL)
    memtide.mark("na\u00efve")  # non-ASCII: 6 bytes of UTF-8


{"absent": check_absent, "active": check_active}[sys.argv[2]]()
if failures:
    sys.exit(1)
print("memtide module", sys.argv[2], "ok")
