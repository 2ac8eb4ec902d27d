// Unit tests for preload/heap_counters.cc: exact current and peak for one thread, exact current and a
// bounded peak error for many.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <thread>
#include <vector>

#include "heap_counters.h"

using namespace memtide::internal;

TEST_CASE("single thread: current and peak are exact, whatever the flush threshold hides") {
  HeapTotals before = ReadHeapTotals();
  FlushCurrentThread();
  ResetHeapPeak();
  int64_t base = ReadHeapTotals().current_bytes;
  CountAlloc(100);
  CountAlloc(kFlushBytes / 2);
  CountFree(100);
  CountAlloc(3 * kFlushBytes);  // crosses the threshold: published
  CountFree(3 * kFlushBytes);
  CountAlloc(7);
  FlushCurrentThread();
  HeapTotals after = ReadHeapTotals();
  CHECK(after.current_bytes - base == kFlushBytes / 2 + 7);
  CHECK(after.peak_bytes - base == kFlushBytes / 2 + 3 * kFlushBytes);
  CHECK(after.allocations - before.allocations == 4);
  CHECK(after.frees - before.frees == 2);
  CHECK(after.allocated_bytes_total - before.allocated_bytes_total == 100 + kFlushBytes / 2 + 3 * kFlushBytes + 7);
  ResetHeapPeak();
  CHECK(ReadHeapTotals().peak_bytes == after.current_bytes);
}

TEST_CASE("a peak below the flush threshold is still exact once the thread publishes") {
  FlushCurrentThread();
  ResetHeapPeak();
  int64_t base = ReadHeapTotals().current_bytes;
  CountAlloc(5000);
  CountFree(5000);
  CountAlloc(10);
  FlushCurrentThread();
  CHECK(ReadHeapTotals().peak_bytes - base == 5000);
}

TEST_CASE("threads: current exact after join (slots folded at thread exit), peak within T * kFlushBytes") {
  constexpr int kThreads = 16;
  constexpr int64_t kBlock = 1000;
  constexpr int kBlocksPerThread = 200;
  FlushCurrentThread();
  ResetHeapPeak();
  HeapTotals before = ReadHeapTotals();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([] {
      for (int i = 0; i < kBlocksPerThread; ++i) CountAlloc(kBlock);
      for (int i = 0; i < kBlocksPerThread / 2; ++i) CountFree(kBlock);
    });
  }
  for (std::thread& thread : threads) thread.join();
  HeapTotals after = ReadHeapTotals();
  CHECK(after.current_bytes - before.current_bytes == kThreads * kBlock * kBlocksPerThread / 2);
  CHECK(after.allocations - before.allocations == kThreads * kBlocksPerThread);
  CHECK(after.frees - before.frees == kThreads * kBlocksPerThread / 2);
  int64_t true_peak_upper = kThreads * kBlock * kBlocksPerThread;  // every thread at its own top at once
  int64_t true_peak_lower = kThreads * kBlock * kBlocksPerThread / 2;
  CHECK(after.peak_bytes - before.current_bytes <= true_peak_upper + kThreads * kFlushBytes);
  CHECK(after.peak_bytes - before.current_bytes >= true_peak_lower);
}

TEST_CASE("fork child reset: current inherited, peak = current, counts restart") {
  CountAlloc(4096);
  FlushCurrentThread();
  int64_t current = ReadHeapTotals().current_bytes;
  ResetHeapCountersInChild();
  HeapTotals totals = ReadHeapTotals();
  CHECK(totals.current_bytes == current);
  CHECK(totals.peak_bytes == current);
  CHECK(totals.allocations == 0);
  CHECK(totals.frees == 0);
}
