// The live-allocation table (tracer/live_allocations.h): insert, remove, growth, replacement, sample-mode
// values, concurrent use, and the memory it takes per live block.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "live_allocations.h"

#include <doctest/doctest.h>

#include <thread>
#include <unordered_map>
#include <vector>

namespace memtide::internal {
namespace {

using FullTable = LiveAllocations<FullLiveValue>;

TEST_CASE("insert, find by removing, replace") {
  FullTable table;
  FullLiveValue old{};
  CHECK(table.Insert(0x1000, {1, 10}, &old) == FullTable::InsertResult::kInserted);
  CHECK(table.Insert(0x2000, {2, 20}, &old) == FullTable::InsertResult::kInserted);
  CHECK(table.Insert(0x1000, {3, 30}, &old) == FullTable::InsertResult::kReplaced);
  CHECK(old.stack == 1);
  CHECK(old.size == 10);
  CHECK(table.Size() == 2);
  FullLiveValue removed{};
  CHECK(table.Remove(0x1000, &removed));
  CHECK(removed.stack == 3);
  CHECK(removed.size == 30);
  CHECK_FALSE(table.Remove(0x1000, &removed));
  CHECK_FALSE(table.Remove(0x3000, &removed));
  CHECK(table.Remove(0x2000, &removed));
  CHECK(table.Size() == 0);
}

TEST_CASE("random inserts and removes match a reference map through many growths") {
  FullTable table;
  std::unordered_map<uintptr_t, FullLiveValue> reference;
  uint64_t rng = 7;
  auto next = [&rng] {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return rng >> 20;
  };
  for (int i = 0; i < 400000; ++i) {
    // Addresses from a small range so that removes often hit and probe runs collide.
    const uintptr_t key = 0x10000 + (next() % 60000) * 16;
    if (next() % 3 != 0) {
      const FullLiveValue value{static_cast<uint32_t>(i), static_cast<uint32_t>(next())};
      FullLiveValue old{};
      const auto result = table.Insert(key, value, &old);
      auto found = reference.find(key);
      if (found == reference.end()) {
        REQUIRE(result == FullTable::InsertResult::kInserted);
      } else {
        REQUIRE(result == FullTable::InsertResult::kReplaced);
        REQUIRE(old.stack == found->second.stack);
      }
      reference[key] = value;
    } else {
      FullLiveValue removed{};
      const bool was = table.Remove(key, &removed);
      auto found = reference.find(key);
      REQUIRE(was == (found != reference.end()));
      if (was) {
        REQUIRE(removed.stack == found->second.stack);
        REQUIRE(removed.size == found->second.size);
        reference.erase(found);
      }
    }
  }
  CHECK(table.Size() == reference.size());
  size_t visited = 0;
  table.ForEach([&](uintptr_t key, const FullLiveValue& value) {
    ++visited;
    auto found = reference.find(key);
    REQUIRE(found != reference.end());
    CHECK(found->second.stack == value.stack);
  });
  CHECK(visited == reference.size());
}

TEST_CASE("memory per live block stays under 64 bytes") {
  FullTable table;
  constexpr size_t kBlocks = 1000000;
  FullLiveValue old{};
  for (size_t i = 0; i < kBlocks; ++i) {
    // Addresses as an allocator hands them out: 32-byte steps.
    REQUIRE(table.Insert(0x7f0000000000 + i * 32, {static_cast<uint32_t>(i % 1000 + 1), 24}, &old) ==
            FullTable::InsertResult::kInserted);
  }
  const double per_block = static_cast<double>(table.MemoryBytes()) / kBlocks;
  MESSAGE("live table: " << per_block << " bytes per live block (1M blocks, 16-byte entries)");
  CHECK(per_block <= 64.0);
  // And with fewer blocks, just past a growth (the worst case).
  FullTable small;
  for (size_t i = 0; i < 64 * 49 + 1; ++i) small.Insert(0x1000 + i * 16, {1, 1}, &old);
  MESSAGE("live table: " << static_cast<double>(small.MemoryBytes()) / (64 * 49 + 1) << " bytes per live block ("
                         << 64 * 49 + 1 << " blocks)");
}

TEST_CASE("blocks on page and 64 KiB boundaries spread over the table like 16-byte neighbours") {
  // The home slot comes from the address's top product bits, so aligned addresses (mmap'd blocks, arenas' page
  // runs) do not pile into a few probe runs. A run of 64 would mean a free walks 16 cache lines.
  for (const uintptr_t step : {uintptr_t{16}, uintptr_t{4096}, uintptr_t{65536}, uintptr_t{2} << 20}) {
    FullTable table;
    FullLiveValue old{};
    for (uintptr_t i = 0; i < 50000; ++i) table.Insert(0x7f0000000000 + i * step, {1, 1}, &old);
    // Remove every other block and insert them back: backward shifts over runs of aligned keys.
    FullLiveValue removed{};
    for (uintptr_t i = 0; i < 50000; i += 2) REQUIRE(table.Remove(0x7f0000000000 + i * step, &removed));
    for (uintptr_t i = 0; i < 50000; i += 2) table.Insert(0x7f0000000000 + i * step, {2, 2}, &old);
    CHECK(table.Size() == 50000);
    const size_t longest = table.LongestProbe();
    MESSAGE("step " << step << ": longest probe " << longest);
    CHECK(longest < 64);
  }
}

TEST_CASE("huge sizes table and sample values") {
  LiveAllocations<uint64_t> huge;
  uint64_t old = 0;
  CHECK(huge.Insert(0x5000, uint64_t{5} << 32, &old) == LiveAllocations<uint64_t>::InsertResult::kInserted);
  uint64_t size = 0;
  CHECK(huge.Remove(0x5000, &size));
  CHECK(size == uint64_t{5} << 32);

  LiveAllocations<SampleLiveValue> sampled;
  SampleLiveValue replaced{};
  CHECK(sampled.Insert(0x9000, {4, 0, 3.5, 100}, &replaced) ==
        LiveAllocations<SampleLiveValue>::InsertResult::kInserted);
  SampleLiveValue removed{};
  CHECK_FALSE(sampled.Remove(0x9010, &removed));
  CHECK(sampled.Remove(0x9000, &removed));
  CHECK(removed.inverse_probability == 3.5);
  CHECK(removed.requested == 100);
  CHECK_FALSE(sampled.Remove(0x9000, &removed));  // gone
}

TEST_CASE("threads inserting and removing concurrently, some blocks freed by another thread") {
  FullTable table;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 200000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&table, t] {
      FullLiveValue unused{};
      for (int i = 0; i < kPerThread; ++i) {
        const uintptr_t key = (uintptr_t{1} << 40) * (t + 1) + uintptr_t(i) * 16;
        CHECK(table.Insert(key, {static_cast<uint32_t>(t + 1), 8}, &unused) == FullTable::InsertResult::kInserted);
        if (i % 2 == 1) CHECK(table.Remove(key - 16, &unused));
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(table.Size() == kThreads * kPerThread / 2);
  // Cross-thread frees: each thread frees what the next one kept.
  threads.clear();
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&table, t] {
      const int owner = (t + 1) % kThreads;
      FullLiveValue removed{};
      for (int i = 1; i < kPerThread; i += 2) {
        const uintptr_t key = (uintptr_t{1} << 40) * (owner + 1) + uintptr_t(i) * 16;
        CHECK(table.Remove(key, &removed));
        CHECK(removed.stack == static_cast<uint32_t>(owner + 1));
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(table.Size() == 0);
}

}  // namespace
}  // namespace memtide::internal
