// Per-site counters and the lazy peak attribution (tracer/site_stats.h), checked against a brute force that
// copies every site at every new high-water mark.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "site_stats.h"

#include <doctest/doctest.h>

#include <map>
#include <thread>
#include <vector>

namespace memtide::internal {
namespace {

struct Reference {
  std::map<uint32_t, int64_t> live_bytes;
  std::map<uint32_t, int64_t> live_blocks;
  std::map<uint32_t, int64_t> peak_bytes;
  std::map<uint32_t, int64_t> peak_blocks;
  int64_t total = 0;
  int64_t max = 0;

  void Change(uint32_t site, int64_t bytes, int64_t blocks) {
    live_bytes[site] += bytes;
    live_blocks[site] += blocks;
    total += bytes;
    if (total > max) {
      max = total;
      peak_bytes = live_bytes;
      peak_blocks = live_blocks;
    }
  }
};

// `unflushed`: the one thread's count not yet in the shared total (site_stats.h), left as it is.
void CompareWithReference(SiteStats& stats, const Reference& reference, uint32_t max_site, int64_t unflushed) {
  CHECK(stats.peak_total() == reference.max);
  CHECK(stats.current_total() + unflushed == reference.total);
  CHECK(unflushed <= kTotalFlushBytes);
  CHECK(unflushed >= -kTotalFlushBytes);
  for (const SiteCounters& site : stats.Collect(max_site)) {
    INFO("site " << site.site);
    auto get = [](const std::map<uint32_t, int64_t>& map, uint32_t key) {
      auto found = map.find(key);
      return found == map.end() ? 0 : found->second;
    };
    CHECK(site.live_bytes == get(reference.live_bytes, site.site));
    CHECK(site.live_blocks == get(reference.live_blocks, site.site));
    CHECK(site.peak_bytes == get(reference.peak_bytes, site.site));
    CHECK(site.peak_blocks == get(reference.peak_blocks, site.site));
  }
}

TEST_CASE("random allocation and free sequences: figures at the peak match a brute force") {
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    SiteStats stats;
    Reference reference;
    uint64_t rng = seed;
    auto next = [&rng] {
      rng = rng * 6364136223846793005ull + 1442695040888963407ull;
      return rng >> 24;
    };
    const uint32_t sites = 1 + static_cast<uint32_t>(seed % 200);  // beyond one shard round for most seeds
    std::vector<std::pair<uint32_t, int64_t>> live;                // the blocks a program holds
    int64_t unflushed = 0;
    for (int step = 0; step < 20000; ++step) {
      // Phases of growth and shrinkage so that the maximum is set many times, also late.
      const bool grow = ((step / 1500) % 2 == 0) ? next() % 10 < 7 : next() % 10 < 3;
      if (grow || live.empty()) {
        const uint32_t site = 1 + static_cast<uint32_t>(next() % sites);
        const int64_t size = static_cast<int64_t>(next() % 5000);
        REQUIRE(stats.OnAllocation(&unflushed, site, static_cast<double>(size), 1, static_cast<uint64_t>(size), size));
        reference.Change(site, size, 1);
        live.emplace_back(site, size);
      } else {
        const size_t index = next() % live.size();
        const auto [site, size] = live[index];
        live[index] = live.back();
        live.pop_back();
        stats.OnFree(&unflushed, site, static_cast<double>(size), 1, size);
        reference.Change(site, -size, -1);
      }
      if (step % 4999 == 0) CompareWithReference(stats, reference, sites, unflushed);
    }
    CompareWithReference(stats, reference, sites, unflushed);
    stats.FlushTotal(&unflushed);
    CompareWithReference(stats, reference, sites, unflushed);
  }
}

TEST_CASE("changes parked in several pending buffers, merged late and in any order, give the same figures") {
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    SiteStats stats;
    Reference reference;
    std::vector<PendingSiteChanges> buffers(4);  // as the live table's shards hold them
    int64_t unflushed = 0;
    uint64_t rng = seed * 977;
    auto next = [&rng] {
      rng = rng * 6364136223846793005ull + 1442695040888963407ull;
      return rng >> 24;
    };
    const uint32_t sites = 1 + static_cast<uint32_t>(seed % 40);  // few sites: buffers fill and coalesce
    for (uint32_t site = 1; site <= sites; ++site) REQUIRE(stats.Prepare(site));
    std::vector<std::pair<uint32_t, int64_t>> live;
    for (int step = 0; step < 20000; ++step) {
      const bool grow = ((step / 1500) % 2 == 0) ? next() % 10 < 7 : next() % 10 < 3;
      PendingSiteChanges& pending = buffers[next() % buffers.size()];
      const uint64_t version = stats.PeakVersion();
      if (grow || live.empty()) {
        const uint32_t site = 1 + static_cast<uint32_t>(next() % sites);
        const int64_t size = static_cast<int64_t>(next() % 5000);
        stats.Record(pending, site, version, static_cast<double>(size), 1, true, static_cast<uint64_t>(size));
        stats.RaiseTotal(&unflushed, size);
        reference.Change(site, size, 1);
        live.emplace_back(site, size);
      } else {
        const size_t index = next() % live.size();
        const auto [site, size] = live[index];
        live[index] = live.back();
        live.pop_back();
        stats.Record(pending, site, version, -static_cast<double>(size), -1, false, 0);
        stats.LowerTotal(&unflushed, size);
        reference.Change(site, -size, -1);
      }
      if (next() % 50 == 0) stats.Flush(buffers[next() % buffers.size()]);
      if (step % 4999 == 0) {
        for (size_t b = buffers.size(); b-- > 0;) stats.Flush(buffers[b]);
        CompareWithReference(stats, reference, sites, unflushed);
      }
    }
    for (PendingSiteChanges& pending : buffers) stats.Flush(pending);
    CompareWithReference(stats, reference, sites, unflushed);
  }
}

TEST_CASE("allocated figures and distinct sizes") {
  SiteStats stats;
  int64_t unflushed = 0;
  for (uint64_t size : {8, 16, 8, 24, 32, 40, 8}) {
    stats.OnAllocation(&unflushed, 3, size, 1, size, static_cast<int64_t>(size));
  }
  stats.OnFree(&unflushed, 3, 16, 1, 16);
  const auto sites = stats.Collect(3);
  REQUIRE(sites.size() == 1);
  CHECK(sites[0].site == 3);
  CHECK(sites[0].allocations == 7);
  CHECK(sites[0].allocated_bytes == 136);
  CHECK(sites[0].live_bytes == 120);
  CHECK(sites[0].live_blocks == 6);
  CHECK(sites[0].peak_bytes == 136);
  REQUIRE(sites[0].size_count == 4);
  CHECK(sites[0].sizes[0] == 8);
  CHECK(sites[0].sizes[1] == 16);
  CHECK(sites[0].sizes[2] == 24);
  CHECK(sites[0].sizes[3] == 32);
}

TEST_CASE("a site that only appears after the peak held nothing at the peak") {
  SiteStats stats;
  int64_t unflushed = 0;
  stats.OnAllocation(&unflushed, 1, 1000, 1, 1000, 1000);
  stats.OnFree(&unflushed, 1, 1000, 1, 1000);
  stats.OnAllocation(&unflushed, 2, 10, 1, 10, 10);
  const auto sites = stats.Collect(2);
  REQUIRE(sites.size() == 2);
  CHECK(sites[0].peak_bytes == 1000);
  CHECK(sites[1].peak_bytes == 0);
  CHECK(sites[1].live_bytes == 10);
}

TEST_CASE("threads: totals are exact after they flush, the peak within the documented bound") {
  SiteStats stats;
  constexpr int kThreads = 4;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&stats, t] {
      int64_t unflushed = 0;
      for (int round = 0; round < 20000; ++round) {
        const uint32_t site = 1 + static_cast<uint32_t>((round + t) % 100);
        stats.OnAllocation(&unflushed, site, 100, 1, 100, 100);
        if (round % 4 != 0) stats.OnFree(&unflushed, site, 100, 1, 100);
      }
      stats.FlushTotal(&unflushed);  // as at thread exit
    });
  }
  for (auto& thread : threads) thread.join();
  const int64_t live = kThreads * 5000 * 100;
  CHECK(stats.current_total() == live);
  // Every thread only grows, so the true maximum is the end state (plus one block in flight per thread); a
  // thread sees the others' counts only as they flush: (T - 1) * kTotalFlushBytes either way.
  CHECK(stats.peak_total() >= live);
  CHECK(stats.peak_total() <= live + kThreads * 100 + (kThreads - 1) * kTotalFlushBytes);
  double live_sum = 0;
  double peak_sum = 0;
  for (const SiteCounters& site : stats.Collect(100)) {
    live_sum += site.live_bytes;
    peak_sum += site.peak_bytes;
  }
  CHECK(live_sum == live);
  // The documented approximation: other threads' unflushed counts and in-flight changes (one block each).
  const int64_t slack = kThreads * 100 + (kThreads - 1) * kTotalFlushBytes;
  CHECK(peak_sum >= stats.peak_total() - slack);
  CHECK(peak_sum <= stats.peak_total() + slack);
}

}  // namespace
}  // namespace memtide::internal
