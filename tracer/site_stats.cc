// Per-site counters and lazy peak attribution (see site_stats.h). Tracer module: hot path (allocation and free
// on any thread) and the writers.
#include "site_stats.h"

namespace memtide::internal {

PendingSiteChanges::Entry* SiteStats::NewPending(PendingSiteChanges& pending, uint32_t site, uint64_t version) {
  if (pending.count_ == PendingSiteChanges::kEntries) Flush(pending);
  pending.last_ = pending.count_;
  PendingSiteChanges::Entry* entry = &pending.entries_[pending.count_++];
  entry->site = site;
  entry->size_count = 0;
  entry->change = PeakAccumulator{version, 0, 0, 0, 0};
  entry->allocated_bytes = 0;
  entry->allocations = 0;
  return entry;
}

void SiteStats::Flush(PendingSiteChanges& pending) {
  for (int i = 0; i < pending.count_; ++i) {
    const PendingSiteChanges::Entry& entry = pending.entries_[i];
    Site* record = sites_.Find(entry.site);
    if (record == nullptr) continue;  // never: recorded sites were Prepare'd
    SpinLockHolder hold(record->lock);
    record->used = true;
    record->peak.Merge(entry.change);
    record->allocated_bytes += entry.allocated_bytes;
    record->allocations += entry.allocations;
    for (uint32_t s = 0; s < entry.size_count; ++s) AddSize(record->sizes, &record->size_count, entry.sizes[s]);
  }
  pending.count_ = 0;
  pending.last_ = 0;
}

void SiteStats::FlushTotal(int64_t* unflushed) {
  const int64_t delta = *unflushed;
  *unflushed = 0;
  const int64_t total = peak_.total.fetch_add(delta, std::memory_order_relaxed) + delta;
  int64_t max = peak_.max.load(std::memory_order_relaxed);
  while (total > max) {
    if (peak_.max.compare_exchange_weak(max, total, std::memory_order_relaxed)) {
      peak_.version.fetch_add(1, std::memory_order_relaxed);
      return;
    }
  }
}

bool SiteStats::OnAllocation(int64_t* unflushed, uint32_t site, double bytes, double blocks, uint64_t requested,
                             int64_t total_delta) {
  Site* record = sites_.Ensure(site);
  if (record == nullptr) return false;
  const uint64_t version = PeakVersion();
  {
    SpinLockHolder hold(record->lock);
    record->used = true;
    record->peak.Merge(PeakAccumulator{version, bytes, blocks, 0, 0});
    record->allocated_bytes += bytes;
    record->allocations += blocks;
    AddSize(record->sizes, &record->size_count, requested);
  }
  RaiseTotal(unflushed, total_delta);
  return true;
}

void SiteStats::OnFree(int64_t* unflushed, uint32_t site, double bytes, double blocks, int64_t total_delta) {
  Site* record = sites_.Find(site);
  if (record == nullptr) return;
  const uint64_t version = PeakVersion();
  {
    SpinLockHolder hold(record->lock);
    record->peak.Merge(PeakAccumulator{version, -bytes, -blocks, 0, 0});
  }
  LowerTotal(unflushed, total_delta);
}

std::vector<SiteCounters> SiteStats::Collect(uint32_t max_site) {
  std::vector<SiteCounters> result;
  // Sized once: growing by doubling would hold the old and the new buffer together, up to three times the
  // sites' 96 bytes each (PyTorch's import: 600,000 sites, so 57 MB became a 150 MB peak while writing).
  result.reserve(max_site);
  for (size_t id = 1; id <= max_site; ++id) {
    Site* record = sites_.Find(id);
    if (record == nullptr) continue;
    SiteCounters counters;
    {
      SpinLockHolder hold(record->lock);
      if (!record->used) continue;
      const PeakAccumulator& peak = record->peak;
      const bool current = peak.version == PeakVersion();
      counters.site = static_cast<uint32_t>(id);
      counters.live_bytes = peak.live_bytes;
      counters.live_blocks = peak.live_blocks;
      counters.peak_bytes = current ? peak.before_bytes : peak.live_bytes;
      counters.peak_blocks = current ? peak.before_blocks : peak.live_blocks;
      counters.allocated_bytes = record->allocated_bytes;
      counters.allocations = record->allocations;
      counters.size_count = record->size_count;
      for (uint32_t i = 0; i < record->size_count; ++i) counters.sizes[i] = record->sizes[i];
    }
    result.push_back(counters);
  }
  return result;
}

template <typename Visit>
void SiteStats::ForEachChunk(Visit&& visit) {
  using Sites = decltype(sites_);
  for (size_t chunk = 0; chunk < Sites::kCapacity / Sites::kChunkSize; ++chunk) {
    Site* first = sites_.Find(chunk * Sites::kChunkSize);
    if (first == nullptr) continue;
    for (size_t i = 0; i < Sites::kChunkSize; ++i) visit(first[i]);
  }
}

void SiteStats::LockAll() {
  // The chunk lock first: no chunk appears while the sites are being locked.
  sites_.grow_lock().Lock();
  ForEachChunk([](Site& site) { site.lock.Lock(); });
}

void SiteStats::UnlockAll() {
  ForEachChunk([](Site& site) { site.lock.Unlock(); });
  sites_.grow_lock().Unlock();
}

void SiteStats::ResetLocksAfterFork() {
  ForEachChunk([](Site& site) { site.lock.ResetAfterFork(); });
  sites_.grow_lock().ResetAfterFork();
}

}  // namespace memtide::internal
