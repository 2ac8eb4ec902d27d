// Unit tests for preload/mmap_accounting.cc: partial unmaps, MAP_FIXED replacement, mremap.
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
  RecordMapping(kBase, 10000, true);
  CHECK(Current() - start == 3 * kPage);
  RecordMapping(kBase + 0x100000, 8192, false);
  CHECK(Current() - start == 3 * kPage);
  RecordUnmapping(kBase + 0x100000, 8192);
  RecordUnmapping(kBase, 3 * kPage);
  CHECK(Current() == start);
}

TEST_CASE("unmapping the middle splits a range; the rest stays counted") {
  int64_t start = Current();
  RecordMapping(kBase, 10 * kPage, true);
  RecordUnmapping(kBase + 4 * kPage, 2 * kPage);
  CHECK(Current() - start == 8 * kPage);
  RecordUnmapping(kBase + 3 * kPage, 4 * kPage);  // overlaps the hole and both neighbours
  CHECK(Current() - start == 6 * kPage);
  RecordUnmapping(kBase, 100 * kPage);
  CHECK(Current() == start);
}

TEST_CASE("MAP_FIXED over a counted range replaces it, even with a file mapping") {
  int64_t start = Current();
  RecordMapping(kBase, 4 * kPage, true);
  RecordMapping(kBase + kPage, 2 * kPage, false);
  CHECK(Current() - start == 2 * kPage);
  RecordMapping(kBase + kPage, kPage, true);
  CHECK(Current() - start == 3 * kPage);
  RecordUnmapping(kBase, 4 * kPage);
  CHECK(Current() == start);
}

TEST_CASE("mremap moves and resizes counted ranges; DONTUNMAP keeps the old one") {
  int64_t start = Current();
  RecordMapping(kBase, 2 * kPage, true);
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
  RecordMapping(kBase, 8 * kPage, true);
  RecordUnmapping(kBase, 8 * kPage);
  RecordMapping(kBase, 2 * kPage, true);
  CHECK(ReadMmapTotals().peak_bytes == 8 * kPage);
  ResetMmapPeak();
  CHECK(ReadMmapTotals().peak_bytes == 2 * kPage);
  RecordUnmapping(kBase, 2 * kPage);
}

TEST_CASE("many ranges: the table grows") {
  int64_t start = Current();
  for (uintptr_t i = 0; i < 10000; ++i) RecordMapping(kBase + i * 2 * kPage, kPage, true);
  CHECK(Current() - start == 10000 * kPage);
  CHECK_FALSE(ReadMmapTotals().table_full);
  for (uintptr_t i = 0; i < 10000; ++i) RecordUnmapping(kBase + i * 2 * kPage, kPage);
  CHECK(Current() == start);
}
