// Per-site counters (site = stack id): what is live now, what was held at the traced high-water mark, what was
// ever allocated, and a few of the requested sizes. Runs on the hot path of every traced allocation and free,
// on any thread; read by the writers (snapshot thread, exit).
//
// Peak attribution without snapshots. A global total (sum of live traced bytes) and its maximum are atomics;
// peak_version is incremented whenever the total exceeds the maximum. Every change to a site is tagged with
// the peak_version read before it; the change that sets a new peak carries the old version, so "version < V"
// means "part of the state at peak V". A site keeps (version = the newest tag among its changes, live = the sum
// of all its changes, before = the sum of those tagged older than `version`). A change tagged v is merged as:
// v > version: before = live, version = v (everything so far predates peak v); v == version: nothing more;
// v < version: before += change. Then live += change. At write time, with V the current peak_version, a
// site's figure at the peak is `before` if its version is V, `live` otherwise (nothing changed since peak V).
// Cost per change: a compare and a few stores, whatever the number of sites; nothing walks the sites when a
// peak is set. The merge is order-independent and associative, which is what lets changes wait:
//
// Pending changes. A traced allocation or free already holds its live-table shard's lock; the site change is
// recorded there (PendingSiteChanges, one small buffer per shard, coalescing changes per site) instead of
// taking the site's own lock, and merged into the site records when the buffer is full and by the writers
// before they read. So the hot path takes one lock, not two, and threads allocating from the same stack do
// not pass the site's cache line back and forth on every call.
//
// The total is shared, but a thread adds to it in batches: its changes collect in its own unflushed count
// (kept by the caller, one per thread) and reach the shared total when that count leaves +-kTotalFlushBytes,
// when the thread's view (shared total + its own count) exceeds the maximum, and when the thread ends. Two
// threads allocating at once then share no written cache line on most calls (one atomic add per call on a shared
// total made two threads 2.5x slower than one, malloc micro-benchmark). Single-threaded every view is the true
// total, so the peak and the figures at the peak stay exact.
//
// Threads: a thread sees neither the unflushed counts of the others nor their in-flight changes (the version
// read, the change and the total update are separate steps). So with T threads the traced peak can miss or
// exceed the true high-water mark by up to (T - 1) * kTotalFlushBytes, and the sum of the sites' figures at the
// peak can differ from peak_bytes by that much plus one block per thread. Unit-tested against a brute force
// single-threaded and against these bounds with threads (site_stats_test).
//
// Sample mode feeds estimates (doubles) to the sites and rounded estimates (integers, the same rounding at
// allocation and free, so they cancel) to the total.
#ifndef MEMTIDE_TRACER_SITE_STATS_H_
#define MEMTIDE_TRACER_SITE_STATS_H_

#include <stddef.h>
#include <stdint.h>

#include <atomic>
#include <vector>

#include "chunked_array.h"
#include "spin_lock.h"

namespace memtide::internal {

inline constexpr int kMaxSiteSizes = 4;
inline constexpr int64_t kTotalFlushBytes = 64 * 1024;

struct SiteCounters {
  uint32_t site = 0;
  double live_bytes = 0;
  double live_blocks = 0;
  double peak_bytes = 0;  // held at the traced high-water mark
  double peak_blocks = 0;
  double allocated_bytes = 0;
  double allocations = 0;
  uint64_t sizes[kMaxSiteSizes] = {};  // the first distinct requested sizes seen
  uint32_t size_count = 0;
  // Exit traces: of live_*, what the C runtime's exit cleanup freed in the probe's child (exit_cleanup_probe.h).
  double freed_at_exit_bytes = 0;
  double freed_at_exit_blocks = 0;
};

// Sums of changes to one site, mergeable in any order (see the top of this file).
struct PeakAccumulator {
  uint64_t version;   // newest peak version among the changes summed
  double live_bytes;  // every change
  double live_blocks;
  double before_bytes;  // changes tagged older than `version`
  double before_blocks;

  void Merge(const PeakAccumulator& other) {
    if (other.version > version) {
      before_bytes = live_bytes + other.before_bytes;
      before_blocks = live_blocks + other.before_blocks;
      version = other.version;
    } else if (other.version == version) {
      before_bytes += other.before_bytes;
      before_blocks += other.before_blocks;
    } else {
      before_bytes += other.live_bytes;
      before_blocks += other.live_blocks;
    }
    live_bytes += other.live_bytes;
    live_blocks += other.live_blocks;
  }
};

// Site changes not yet merged into the site records. Each live-table shard keeps one and only touches it under
// its own lock (live_allocations.h), so it needs no lock of its own. Plain data: a fork child inherits it.
class PendingSiteChanges {
 public:
  static constexpr int kEntries = 8;

 private:
  friend class SiteStats;
  struct Entry {
    uint32_t site;
    uint32_t size_count;
    PeakAccumulator change;
    double allocated_bytes;
    double allocations;
    uint64_t sizes[kMaxSiteSizes];
  };
  int count_ = 0;
  int last_ = 0;  // the entry recorded to last: a shard's blocks mostly come from one or two sites in a row
  Entry entries_[kEntries];
};

class SiteStats {
 public:
  SiteStats() = default;
  SiteStats(const SiteStats&) = delete;
  SiteStats& operator=(const SiteStats&) = delete;

  // Makes sure the site's record exists (lock-free when it does; allocates its chunk otherwise). False when
  // that allocation failed or the id is beyond capacity. Called before a block enters the live table, so
  // that recording and merging its changes cannot fail later.
  bool Prepare(uint32_t site) { return sites_.Ensure(site) != nullptr; }

  // The tag of a change: read before the change, and before the total moves (relaxed; see the top).
  uint64_t PeakVersion() const { return peak_.version.load(std::memory_order_relaxed); }

  // Hot path, under the lock that guards `pending` (a live-table shard's). Allocation-free; when the buffer
  // is full, merges it first (takes each of its sites' locks). `bytes`/`blocks` are negative for a free;
  // `allocation` adds to the allocated figures and `requested` to the sizes. The site must be Prepare'd.
  // Inline: it runs twice per traced malloc/free pair, and with no new peak since the entry's last change (the
  // common case) the merge is two additions.
  void Record(PendingSiteChanges& pending, uint32_t site, uint64_t version, double bytes, double blocks,
              bool allocation, uint64_t requested) {
    PendingSiteChanges::Entry* entry = &pending.entries_[pending.last_];
    if (pending.last_ >= pending.count_ || entry->site != site) {
      entry = FindPending(pending, site);
      if (entry == nullptr) entry = NewPending(pending, site, version);
    }
    if (version == entry->change.version) {
      entry->change.live_bytes += bytes;
      entry->change.live_blocks += blocks;
    } else {
      entry->change.Merge(PeakAccumulator{version, bytes, blocks, 0, 0});
    }
    if (allocation) {
      entry->allocated_bytes += bytes;
      entry->allocations += blocks;
      AddSize(entry->sizes, &entry->size_count, requested);
    }
  }

  // Merges and empties a buffer (under the lock that guards it). Takes each site's lock; allocation-free.
  void Flush(PendingSiteChanges& pending);

  // Hot path, after the site change, with the calling thread's unflushed count (see the top): reads of the
  // shared total and maximum; an atomic add only when the count is flushed; a new maximum also takes a CAS and
  // bumps the version.
  void RaiseTotal(int64_t* unflushed, int64_t delta) {
    *unflushed += delta;
    const int64_t seen = peak_.total.load(std::memory_order_relaxed) + *unflushed;
    if (seen > peak_.max.load(std::memory_order_relaxed) || *unflushed > kTotalFlushBytes) FlushTotal(unflushed);
  }
  void LowerTotal(int64_t* unflushed, int64_t delta) {
    *unflushed -= delta;
    if (*unflushed < -kTotalFlushBytes) FlushTotal(unflushed);
  }
  // Adds a thread's unflushed count to the shared total (its end, a writer on its way) and raises the maximum.
  void FlushTotal(int64_t* unflushed);

  // Without a pending buffer (tests, and any caller that holds no shard lock): the site's own lock, then the
  // total. OnAllocation is false when the site's record could not be created (nothing changed then).
  bool OnAllocation(int64_t* unflushed, uint32_t site, double bytes, double blocks, uint64_t requested,
                    int64_t total_delta);
  void OnFree(int64_t* unflushed, uint32_t site, double bytes, double blocks, int64_t total_delta);

  // Every site that ever changed, figures at the peak resolved, in id order. Merge the pending buffers first.
  // Takes the sites' locks one at a time; allocates.
  std::vector<SiteCounters> Collect(uint32_t max_site);

  // The flushed total: exact once every thread has flushed (ended, or passed its count to FlushTotal).
  int64_t current_total() const { return peak_.total.load(std::memory_order_relaxed); }
  int64_t peak_total() const { return peak_.max.load(std::memory_order_relaxed); }

  size_t MemoryBytes() const { return sizeof(*this) + sites_.MemoryBytes(); }

  // fork(): the chunk lock, then every site's lock (O(sites), a few ms for a million stacks). Site locks nest
  // inside live-table shard locks (Flush), so before_fork takes the live tables first.
  void LockAll();
  void UnlockAll();
  void ResetLocksAfterFork();

 private:
  // Two cache lines, aligned, so no two sites share a line.
  struct alignas(64) Site {
    SpinLock lock;
    bool used;
    uint32_t size_count;
    PeakAccumulator peak;
    double allocated_bytes;
    double allocations;
    uint64_t sizes[kMaxSiteSizes];
  };

  // One cache line: every change reads the total, the maximum and the version; flushes and new maxima write it.
  struct alignas(64) PeakState {
    std::atomic<int64_t> total{0};
    std::atomic<int64_t> max{0};
    // Relaxed everywhere: a stale value only moves a change to the other side of a concurrent peak (the
    // approximation documented above).
    std::atomic<uint64_t> version{0};
  };

  // The pending entry of a site (and it becomes the last one), or null.
  static PendingSiteChanges::Entry* FindPending(PendingSiteChanges& pending, uint32_t site) {
    for (int i = 0; i < pending.count_; ++i) {
      if (pending.entries_[i].site == site) {
        pending.last_ = i;
        return &pending.entries_[i];
      }
    }
    return nullptr;
  }
  // An empty entry for a site with none, tagged `version` (the buffer merged first when it is full).
  PendingSiteChanges::Entry* NewPending(PendingSiteChanges& pending, uint32_t site, uint64_t version);

  static void AddSize(uint64_t* sizes, uint32_t* count, uint64_t size) {
    if (*count >= kMaxSiteSizes) return;
    for (uint32_t i = 0; i < *count; ++i) {
      if (sizes[i] == size) return;
    }
    sizes[(*count)++] = size;
  }

  template <typename Visit>
  void ForEachChunk(Visit&& visit);

  PeakState peak_;
  // 2048 sites (256 KiB) per chunk, 8192 chunks: 16M stacks, as many as the depot holds.
  ChunkedArray<Site, 11, 8192> sites_;
};

}  // namespace memtide::internal

#endif  // MEMTIDE_TRACER_SITE_STATS_H_
