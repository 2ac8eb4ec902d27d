// Anonymous-mapping range table. See mmap_accounting.h.
#include "mmap_accounting.h"

#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

#include "log.h"

namespace memtide::internal {
namespace {

// Every anonymous range the program mapped, counted or not: a PROT_NONE range is left out of the totals, and
// an mprotect that makes part of it accessible has to know it is anonymous memory (a file mapping is not).
struct Range {
  uintptr_t start;
  uintptr_t end;
  bool counted;  // accessible (any protection but PROT_NONE)
};

constexpr size_t kPageBytes = 4096;
constexpr size_t kMaxRanges = size_t{1} << 20;  // 24 MiB of table at most

// Guarded by g_lock.
Range* g_ranges = nullptr;
size_t g_count = 0;
size_t g_capacity = 0;
int64_t g_current = 0;
int64_t g_peak = 0;
bool g_full = false;

std::atomic<bool> g_lock{false};

class SpinLock {
 public:
  SpinLock() {
    while (g_lock.exchange(true, std::memory_order_acquire)) sched_yield();
  }
  ~SpinLock() { g_lock.store(false, std::memory_order_release); }
};

uintptr_t PageUp(uintptr_t value) { return (value + kPageBytes - 1) & ~(uintptr_t{kPageBytes} - 1); }

void* RawMap(size_t bytes) {
  long result = syscall(SYS_mmap, nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return result < 0 && result > -4096 ? nullptr : reinterpret_cast<void*>(result);
}

bool Grow() {
  size_t capacity = g_capacity == 0 ? 4096 : g_capacity * 2;
  if (capacity > kMaxRanges) return false;
  Range* ranges = static_cast<Range*>(RawMap(capacity * sizeof(Range)));
  if (ranges == nullptr) return false;
  if (g_count > 0) memcpy(ranges, g_ranges, g_count * sizeof(Range));
  if (g_ranges != nullptr) syscall(SYS_munmap, g_ranges, g_capacity * sizeof(Range));
  g_ranges = ranges;
  g_capacity = capacity;
  return true;
}

// First range whose end is above `address`.
size_t LowerBound(uintptr_t address) {
  size_t low = 0, high = g_count;
  while (low < high) {
    size_t middle = (low + high) / 2;
    if (g_ranges[middle].end <= address) {
      low = middle + 1;
    } else {
      high = middle;
    }
  }
  return low;
}

int64_t CountedBytes(const Range& range, uintptr_t start, uintptr_t end) {
  return range.counted ? static_cast<int64_t>(end - start) : 0;
}

// Removes [start, end) from every range; returns the counted bytes removed.
int64_t RemoveLocked(uintptr_t start, uintptr_t end) {
  int64_t removed = 0;
  size_t i = LowerBound(start);
  while (i < g_count && g_ranges[i].start < end) {
    Range& range = g_ranges[i];
    uintptr_t cut_start = range.start > start ? range.start : start;
    uintptr_t cut_end = range.end < end ? range.end : end;
    removed += CountedBytes(range, cut_start, cut_end);
    if (range.start < cut_start && cut_end < range.end) {
      // The hole splits the range in two.
      if (g_count == g_capacity && !Grow()) {
        g_full = true;  // the upper part is dropped from the table: counts become a lower bound
        removed += CountedBytes(range, cut_end, range.end);
        range.end = cut_start;
        return removed;
      }
      memmove(&g_ranges[i + 2], &g_ranges[i + 1], (g_count - i - 1) * sizeof(Range));
      g_ranges[i + 1] = {cut_end, g_ranges[i].end, g_ranges[i].counted};
      g_ranges[i].end = cut_start;
      ++g_count;
      return removed;
    }
    if (range.start < cut_start) {
      range.end = cut_start;
      ++i;
    } else if (cut_end < range.end) {
      range.start = cut_end;
      ++i;
    } else {
      memmove(&g_ranges[i], &g_ranges[i + 1], (g_count - i - 1) * sizeof(Range));
      --g_count;
    }
  }
  return removed;
}

void RaiseCurrent(int64_t bytes) {
  g_current += bytes;
  if (g_current > g_peak) g_peak = g_current;
}

bool RoomForOneMore() {
  if (g_count < g_capacity || Grow()) return true;
  if (!g_full) Log("too many anonymous mappings to track; mmap counts are a lower bound from now on");
  g_full = true;
  return false;
}

void AddLocked(uintptr_t start, uintptr_t end, bool counted) {
  if (!RoomForOneMore()) return;
  size_t i = LowerBound(start);
  memmove(&g_ranges[i + 1], &g_ranges[i], (g_count - i) * sizeof(Range));
  g_ranges[i] = {start, end, counted};
  ++g_count;
  RaiseCurrent(CountedBytes(g_ranges[i], start, end));
}

// Makes `address` a boundary between ranges when it lies inside one. False when the table cannot grow.
bool SplitAt(uintptr_t address) {
  size_t i = LowerBound(address);
  if (i == g_count || g_ranges[i].start >= address) return true;
  if (!RoomForOneMore()) return false;
  memmove(&g_ranges[i + 2], &g_ranges[i + 1], (g_count - i - 1) * sizeof(Range));
  g_ranges[i + 1] = {address, g_ranges[i].end, g_ranges[i].counted};
  g_ranges[i].end = address;
  ++g_count;
  return true;
}

// Joins each range in [first, last] with the next when they touch and agree, so that a program flipping
// protections page by page (a JIT's W^X) does not grow the table without bound.
void MergeLocked(size_t first, size_t last) {
  size_t i = first;
  while (i < last && i + 1 < g_count) {
    Range& range = g_ranges[i];
    const Range& next = g_ranges[i + 1];
    if (range.end == next.start && range.counted == next.counted) {
      range.end = next.end;
      memmove(&g_ranges[i + 1], &g_ranges[i + 2], (g_count - i - 2) * sizeof(Range));
      --g_count;
      --last;
    } else {
      ++i;
    }
  }
}

}  // namespace

void RecordMapping(uintptr_t start, size_t length, bool anonymous, bool accessible) {
  uintptr_t end = PageUp(start + length);
  SpinLock lock;
  g_current -= RemoveLocked(start, end);
  if (anonymous) AddLocked(start, end, accessible);
}

void RecordProtection(uintptr_t start, size_t length, bool accessible) {
  uintptr_t end = PageUp(start + length);
  SpinLock lock;
  if (!SplitAt(start) || !SplitAt(end)) {
    // The table is full (RoomForOneMore said so once): keep the totals a lower bound. What turns PROT_NONE
    // leaves the table (no later mprotect counts it again); what turns accessible stays uncounted.
    if (!accessible) g_current -= RemoveLocked(start, end);
    return;
  }
  size_t first = LowerBound(start);
  size_t i = first;
  for (; i < g_count && g_ranges[i].start < end; ++i) {
    Range& range = g_ranges[i];
    if (range.counted == accessible) continue;
    const int64_t bytes = static_cast<int64_t>(range.end - range.start);
    range.counted = accessible;
    if (accessible) {
      RaiseCurrent(bytes);
    } else {
      g_current -= bytes;
    }
  }
  MergeLocked(first > 0 ? first - 1 : 0, i);
}

void RecordUnmapping(uintptr_t start, size_t length) {
  uintptr_t end = PageUp(start + length);
  SpinLock lock;
  g_current -= RemoveLocked(start, end);
}

void RecordRemapping(uintptr_t old_start, size_t old_length, uintptr_t new_start, size_t new_length, bool keep_old) {
  uintptr_t old_end = PageUp(old_start + old_length);
  uintptr_t new_end = PageUp(new_start + new_length);
  SpinLock lock;
  size_t i = LowerBound(old_start);
  // The kernel remaps within one mapping, so one protection: the first range's.
  bool anonymous = i < g_count && g_ranges[i].start < old_end;
  bool counted = anonymous && g_ranges[i].counted;
  if (!keep_old) g_current -= RemoveLocked(old_start, old_end);
  g_current -= RemoveLocked(new_start, new_end);
  if (anonymous) AddLocked(new_start, new_end, counted);
}

MmapTotals ReadMmapTotals() {
  SpinLock lock;
  return {g_current, g_peak, g_full};
}

size_t MmapRangeCount() {
  SpinLock lock;
  return g_count;
}

void ResetMmapPeak() {
  SpinLock lock;
  g_peak = g_current;
}

void ResetMmapLockInChild() { g_lock.store(false, std::memory_order_relaxed); }

}  // namespace memtide::internal
