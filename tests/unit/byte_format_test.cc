// Unit tests for tracer/byte_format.cc.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <stdint.h>

#include "byte_format.h"

TEST_CASE("human bytes") {
  CHECK(memtide::HumanBytes(0) == "0 B");
  CHECK(memtide::HumanBytes(1023) == "1023 B");
  CHECK(memtide::HumanBytes(1024) == "1.0 KiB");
  CHECK(memtide::HumanBytes(512LL << 20) == "512.0 MiB");
  CHECK(memtide::HumanBytes(-(3LL << 30)) == "-3.0 GiB");
  CHECK(memtide::HumanBytes(4200000) == "4.0 MiB");
  CHECK(memtide::HumanBytes(INT64_MIN) == "-8388608.0 TiB");
}

TEST_CASE("grouped counts") {
  CHECK(memtide::GroupedCount(0) == "0");
  CHECK(memtide::GroupedCount(999) == "999");
  CHECK(memtide::GroupedCount(1000) == "1,000");
  CHECK(memtide::GroupedCount(1234567) == "1,234,567");
  CHECK(memtide::GroupedCount(-1234) == "-1,234");
  CHECK(memtide::GroupedCount(-1000) == "-1,000");
  CHECK(memtide::GroupedCount(INT64_MIN) == "-9,223,372,036,854,775,808");
}
