// Unit tests for preload/options.cc: size/duration/bool parsing and environment loading.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "options.h"

using memtide::LoadOptions;
using memtide::Options;
using memtide::ParseBool;
using memtide::ParseDurationMs;
using memtide::ParseSize;

TEST_CASE("sizes accept bytes, binary and decimal units") {
  int64_t bytes = 0;
  CHECK((ParseSize("10000", &bytes) && bytes == 10000));
  CHECK((ParseSize("64KiB", &bytes) && bytes == 65536));
  CHECK((ParseSize("64k", &bytes) && bytes == 65536));
  CHECK((ParseSize("64KB", &bytes) && bytes == 64000));
  CHECK((ParseSize("512MiB", &bytes) && bytes == 512LL << 20));
  CHECK((ParseSize("2G", &bytes) && bytes == 2LL << 30));
  CHECK((ParseSize("1.5GiB", &bytes) && bytes == 3LL << 29));
  CHECK((ParseSize("1 MiB", &bytes) && bytes == 1LL << 20));
  CHECK_FALSE(ParseSize("", &bytes));
  CHECK_FALSE(ParseSize("-1", &bytes));
  CHECK_FALSE(ParseSize("12 parsecs", &bytes));
  CHECK_FALSE(ParseSize("1.5", &bytes));
  CHECK_FALSE(ParseSize("99999999999999999999", &bytes));
  CHECK_FALSE(ParseSize("9000000000T", &bytes));
}

TEST_CASE("durations: bare numbers are milliseconds") {
  int64_t ms = 0;
  CHECK((ParseDurationMs("100", &ms) && ms == 100));
  CHECK((ParseDurationMs("100ms", &ms) && ms == 100));
  CHECK((ParseDurationMs("2s", &ms) && ms == 2000));
  CHECK((ParseDurationMs("1.5s", &ms) && ms == 1500));
  CHECK((ParseDurationMs("1m", &ms) && ms == 60000));
  CHECK((ParseDurationMs("1h", &ms) && ms == 3600000));
  CHECK((ParseDurationMs("2500us", &ms) && ms == 2));
  CHECK_FALSE(ParseDurationMs("banana", &ms));
  CHECK_FALSE(ParseDurationMs("5 fortnights", &ms));
}

TEST_CASE("booleans") {
  int64_t value = -1;
  CHECK((ParseBool("1", &value) && value == 1));
  CHECK((ParseBool("yes", &value) && value == 1));
  CHECK((ParseBool("OFF", &value) && value == 0));
  CHECK_FALSE(ParseBool("maybe", &value));
}

namespace {

std::vector<std::string> g_problems;
void Collect(const char* line, void*) { g_problems.emplace_back(line); }

}  // namespace

TEST_CASE("environment: defaults, valid values, one line per bad value naming variable and value") {
  unsetenv("MEMTIDE_DIR");
  setenv("MEMTIDE_INTERVAL", "250ms", 1);
  setenv("MEMTIDE_SEGMENT_DELAY", "banana", 1);
  setenv("MEMTIDE_KEEP_SEGMENT", "1", 1);
  setenv("MEMTIDE_RUN_PID", "-5", 1);
  setenv("MEMTIDE_INTERVALL", "1s", 1);
  g_problems.clear();
  Options options;
  int problems = LoadOptions(&options, Collect, nullptr);
  CHECK(problems == 3);
  CHECK(std::string(options.dir.text) == "/dev/shm");
  CHECK(options.interval_ms == 250);
  CHECK(options.segment_delay_ms == 20);
  CHECK(options.keep_segment == 1);
  CHECK(options.run_pid == 0);
  REQUIRE(g_problems.size() == 3);
  CHECK(g_problems[0].find("MEMTIDE_SEGMENT_DELAY='banana'") != std::string::npos);
  CHECK(g_problems[1].find("MEMTIDE_RUN_PID='-5'") != std::string::npos);
  CHECK(g_problems[2].find("unknown variable MEMTIDE_INTERVALL") != std::string::npos);
  for (const std::string& line : g_problems) CHECK(line.find('\n') == std::string::npos);

  setenv("MEMTIDE_INTERVAL", "0", 1);  // below the minimum of 1 ms
  unsetenv("MEMTIDE_SEGMENT_DELAY");
  unsetenv("MEMTIDE_RUN_PID");
  unsetenv("MEMTIDE_INTERVALL");
  g_problems.clear();
  CHECK(LoadOptions(&options, Collect, nullptr) == 1);
  CHECK(options.interval_ms == 100);
  CHECK(g_problems.at(0).find("outside") != std::string::npos);
  unsetenv("MEMTIDE_INTERVAL");
  unsetenv("MEMTIDE_KEEP_SEGMENT");
}

TEST_CASE("a path longer than the buffer keeps the default") {
  std::string long_path(600, 'x');
  setenv("MEMTIDE_DIR", long_path.c_str(), 1);
  g_problems.clear();
  Options options;
  CHECK(LoadOptions(&options, Collect, nullptr) == 1);
  CHECK(std::string(options.dir.text) == "/dev/shm");
  unsetenv("MEMTIDE_DIR");
}

TEST_CASE("a relative path is made absolute from the directory the process starts in") {
  char start[4096];
  REQUIRE(getcwd(start, sizeof(start)) != nullptr);
  REQUIRE(chdir("/tmp") == 0);
  setenv("MEMTIDE_TRACE_FILE", "traces/trace.%p.json", 1);
  setenv("MEMTIDE_DIR", "/dev/shm", 1);
  g_problems.clear();
  Options options;
  CHECK(LoadOptions(&options, Collect, nullptr) == 0);
  CHECK(std::string(options.trace_file.text) == "/tmp/traces/trace.%p.json");
  CHECK(std::string(options.dir.text) == "/dev/shm");
  std::string long_name(509, 'y');  // fits the 512-byte buffer alone, not after "/tmp/"
  setenv("MEMTIDE_TRACE_FILE", long_name.c_str(), 1);
  CHECK(LoadOptions(&options, Collect, nullptr) == 1);
  REQUIRE(g_problems.size() == 1);
  CHECK(g_problems[0].find("MEMTIDE_TRACE_FILE='yyyy") == 0);
  CHECK(g_problems[0].find("once made absolute; using the default") != std::string::npos);
  unsetenv("MEMTIDE_TRACE_FILE");
  unsetenv("MEMTIDE_DIR");
  REQUIRE(chdir(start) == 0);
}

TEST_CASE("ratios: fractions or percentages, in permille") {
  int64_t permille = 0;
  CHECK((memtide::ParseRatioPermille("0.8", &permille) && permille == 800));
  CHECK((memtide::ParseRatioPermille("80%", &permille) && permille == 800));
  CHECK((memtide::ParseRatioPermille("1", &permille) && permille == 1000));
  CHECK((memtide::ParseRatioPermille("0.955", &permille) && permille == 955));
  CHECK_FALSE(memtide::ParseRatioPermille("eighty", &permille));
  CHECK_FALSE(memtide::ParseRatioPermille("0.8x", &permille));
}

TEST_CASE("defaults written the way users write them") {
  Options options;
  LoadOptions(&options, nullptr, nullptr);
  CHECK(options.trim_threshold == 8 << 20);
  CHECK(options.pressure_permille == 800);
  CHECK(options.alert_danger_bytes == 50000000);
  CHECK(options.trim_interval_ms == 1000);
  CHECK(options.trim == 1);
}
