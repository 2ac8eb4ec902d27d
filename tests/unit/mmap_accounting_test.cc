// Unit tests for preload/mmap_accounting.cc: partial unmaps, MAP_FIXED replacement, mremap, mprotect.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "mmap_accounting.h"

using namespace memtide::internal;

namespace {
constexpr uintptr_t kBase = 0x7f0000000000;
constexpr size_t kPage = 4096;
int64_t Current() { return ReadMmapTotals().current_bytes; }
}  // namespace

TEST_CASE("anonymous mappings count page-rounded; file mappings do not") {
  int64_t start = Current();
  RecordMapping(kBase, 10000, true, true);
  CHECK(Current() - start == 3 * kPage);
  RecordMapping(kBase + 0x100000, 8192, false, true);
  CHECK(Current() - start == 3 * kPage);
  RecordUnmapping(kBase + 0x100000, 8192);
  RecordUnmapping(kBase, 3 * kPage);
  CHECK(Current() == start);
}

TEST_CASE("unmapping the middle splits a range; the rest stays counted") {
  int64_t start = Current();
  RecordMapping(kBase, 10 * kPage, true, true);
  RecordUnmapping(kBase + 4 * kPage, 2 * kPage);
  CHECK(Current() - start == 8 * kPage);
  RecordUnmapping(kBase + 3 * kPage, 4 * kPage);  // overlaps the hole and both neighbours
  CHECK(Current() - start == 6 * kPage);
  RecordUnmapping(kBase, 100 * kPage);
  CHECK(Current() == start);
}

TEST_CASE("MAP_FIXED over a counted range replaces it, even with a file mapping") {
  int64_t start = Current();
  RecordMapping(kBase, 4 * kPage, true, true);
  RecordMapping(kBase + kPage, 2 * kPage, false, true);
  CHECK(Current() - start == 2 * kPage);
  RecordMapping(kBase + kPage, kPage, true, true);
  CHECK(Current() - start == 3 * kPage);
  RecordUnmapping(kBase, 4 * kPage);
  CHECK(Current() == start);
}

TEST_CASE("mremap moves and resizes counted ranges; DONTUNMAP keeps the old one") {
  int64_t start = Current();
  RecordMapping(kBase, 2 * kPage, true, true);
  RecordRemapping(kBase, 2 * kPage, kBase + 0x200000, 5 * kPage, false);
  CHECK(Current() - start == 5 * kPage);
  RecordRemapping(kBase + 0x200000, 5 * kPage, kBase + 0x400000, 5 * kPage, true);
  CHECK(Current() - start == 10 * kPage);
  RecordRemapping(kBase + 0x800000, kPage, kBase + 0x900000, kPage, false);  // not anonymous: ignored
  CHECK(Current() - start == 10 * kPage);
  RecordUnmapping(kBase, 0x1000000);
  CHECK(Current() == start);
}

TEST_CASE("peak is exact and resettable") {
  RecordUnmapping(0, ~uintptr_t{0} >> 1);
  ResetMmapPeak();
  RecordMapping(kBase, 8 * kPage, true, true);
  RecordUnmapping(kBase, 8 * kPage);
  RecordMapping(kBase, 2 * kPage, true, true);
  CHECK(ReadMmapTotals().peak_bytes == 8 * kPage);
  ResetMmapPeak();
  CHECK(ReadMmapTotals().peak_bytes == 2 * kPage);
  RecordUnmapping(kBase, 2 * kPage);
}

TEST_CASE("many ranges: the table grows") {
  int64_t start = Current();
  for (uintptr_t i = 0; i < 10000; ++i) RecordMapping(kBase + i * 2 * kPage, kPage, true, true);
  CHECK(Current() - start == 10000 * kPage);
  CHECK_FALSE(ReadMmapTotals().table_full);
  for (uintptr_t i = 0; i < 10000; ++i) RecordUnmapping(kBase + i * 2 * kPage, kPage);
  CHECK(Current() == start);
}

TEST_CASE("a PROT_NONE reservation counts only the parts mprotect makes accessible") {
  int64_t start = Current();
  RecordMapping(kBase, 64 * kPage, true, false);  // a JVM's or V8's reservation
  CHECK(Current() == start);
  RecordProtection(kBase + 8 * kPage, 16 * kPage, true);
  CHECK(Current() - start == 16 * kPage);
  RecordProtection(kBase + 4 * kPage, 8 * kPage, true);  // half already accessible
  CHECK(Current() - start == 20 * kPage);
  RecordProtection(kBase + 20 * kPage, 2 * kPage + 1, false);  // page-rounded like the kernel
  CHECK(Current() - start == 17 * kPage);
  // MAP_FIXED PROT_NONE over accessible pages gives them back; MAP_FIXED read-write takes new ones.
  RecordMapping(kBase + 4 * kPage, 4 * kPage, true, false);
  CHECK(Current() - start == 13 * kPage);
  RecordMapping(kBase + 40 * kPage, 2 * kPage, true, true);
  CHECK(Current() - start == 15 * kPage);
  // munmap over the whole reservation removes only what was counted.
  RecordUnmapping(kBase, 64 * kPage);
  CHECK(Current() == start);
}

TEST_CASE("mprotect leaves file mappings and unknown addresses alone") {
  int64_t start = Current();
  RecordMapping(kBase, 4 * kPage, false, true);
  RecordProtection(kBase, 4 * kPage, false);
  RecordProtection(kBase, 4 * kPage, true);
  RecordProtection(kBase + 0x100000, 4 * kPage, true);
  CHECK(Current() == start);
  RecordUnmapping(kBase, 4 * kPage);
}

TEST_CASE("mremap of a reservation keeps it uncounted; of an accessible range, counted") {
  int64_t start = Current();
  RecordMapping(kBase, 4 * kPage, true, false);
  RecordRemapping(kBase, 4 * kPage, kBase + 0x200000, 8 * kPage, false);
  CHECK(Current() == start);
  RecordProtection(kBase + 0x200000, 2 * kPage, true);
  RecordRemapping(kBase + 0x200000, 2 * kPage, kBase + 0x400000, 3 * kPage, false);
  CHECK(Current() - start == 3 * kPage);
  RecordUnmapping(kBase, 0x1000000);
  CHECK(Current() == start);
}

TEST_CASE("flipping protections page by page does not grow the table") {
  int64_t start = Current();
  const size_t ranges = MmapRangeCount();
  RecordMapping(kBase, 1024 * kPage, true, false);
  for (uintptr_t page = 0; page < 1024; ++page) RecordProtection(kBase + page * kPage, kPage, true);
  CHECK(Current() - start == 1024 * kPage);
  CHECK(MmapRangeCount() == ranges + 1);
  for (uintptr_t page = 0; page < 1024; page += 2) RecordProtection(kBase + page * kPage, kPage, false);
  CHECK(Current() - start == 512 * kPage);
  CHECK(MmapRangeCount() == ranges + 1024);
  for (uintptr_t page = 0; page < 1024; page += 2) RecordProtection(kBase + page * kPage, kPage, true);
  CHECK(MmapRangeCount() == ranges + 1);
  RecordUnmapping(kBase, 1024 * kPage);
  CHECK(Current() == start);
  CHECK(MmapRangeCount() == ranges);
}
