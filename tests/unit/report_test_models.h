// Already-symbolized report models for the renderer, diff and budget tests: what a trace of a small leaky
// program looks like after symbolization, written out so the golden files do not depend on this machine's
// compiler, paths or libc.
#ifndef MEMTIDE_TESTS_UNIT_REPORT_TEST_MODELS_H_
#define MEMTIDE_TESTS_UNIT_REPORT_TEST_MODELS_H_

#include <stdlib.h>

#include <fstream>
#include <sstream>
#include <string>

#include "leak_suppressions.h"
#include "trace_report.h"

namespace memtide::test {

inline Frame F(const char* function, const char* file, int line, const char* module, uint64_t address) {
  Frame frame;
  frame.function = function;
  frame.file = file;
  frame.line = line;
  frame.module = module;
  frame.module_path = std::string(module[0] == 'l' ? "/usr/lib/x86_64-linux-gnu/" : "/srv/app/bin/") + module;
  frame.address = address;
  return frame;
}

inline Site S(Stack stack, int64_t live_bytes, int64_t live_blocks, int64_t peak_bytes, int64_t peak_blocks,
              std::vector<int64_t> sizes) {
  Site site;
  site.stack = std::move(stack);
  site.live_bytes = live_bytes;
  site.live_blocks = live_blocks;
  site.peak_bytes = peak_bytes;
  site.peak_blocks = peak_blocks;
  site.allocated_bytes = live_bytes + peak_bytes * 3;
  site.allocations = live_blocks + peak_blocks * 3;
  site.sizes = std::move(sizes);
  return site;
}

// An exit trace of ./leaky: two leaks of its own (one through a library without symbols), a stdio buffer,
// a third-party leak the suppressions take out, and a big buffer that was freed but made the peak.
// `scale` multiplies the leaks (a second run that leaks more).
inline TraceReport LeakyExitTrace(int64_t scale = 1) {
  TraceReport report;
  report.path = "leaky.trace.json";
  report.has_trace = true;
  report.has_sites = true;
  TraceInfo& t = report.trace;
  t.kind = TraceKind::kExit;
  t.pid = 4242;
  t.command = {"./leaky", "--items", "10"};
  t.time_s = 0.75;
  t.exit_code = 0;
  t.live_bytes = 2248 * scale;
  t.live_blocks = 14 * scale;
  t.peak_bytes = 4200000;
  t.allocations = 120;
  t.frees = 106;
  t.allocated_bytes = 12700000;
  Frame main_frame = F("main", "/src/leaky/main.cc", 41, "leaky", 0x1240);
  Frame libc_main = F("__libc_start_call_main", "", 0, "libc.so.6", 0x271ca);
  report.sites.push_back(
      S({F("MakeItem(int)", "/src/leaky/items.cc", 12, "leaky", 0x11a5),
         F("ItemList::Fill(int)", "/src/leaky/items.cc", 30, "leaky", 0x1302), main_frame, libc_main},
        1000 * scale, 10 * scale, 800, 8, {100}));
  report.sites.push_back(
      S({F("??", "", 0, "libplugin.so", 0x4f2a),
         F("LoadPlugin(char const*)", "/src/leaky/plugin.cc", 7, "leaky", 0x14c0), main_frame, libc_main},
        24, 1, 24, 1, {24}));
  report.sites.push_back(
      S({F("_IO_file_doallocate", "", 0, "libc.so.6", 0x7581d), F("_IO_doallocbuf", "", 0, "libc.so.6", 0x84a13),
         F("_IO_file_overflow", "", 0, "libc.so.6", 0x83b0c), F("puts", "", 0, "libc.so.6", 0x79f0a), main_frame,
         libc_main},
        1024, 1, 1024, 1, {1024}));
  report.sites.push_back(
      S({F("ThirdParty::Init()", "/opt/third/init.c", 5, "libthird.so", 0x900), main_frame, libc_main}, 200, 2, 200, 2,
        {100}));
  report.sites.push_back(S({F("std::vector<char, std::allocator<char> >::resize(unsigned long)",
                              "/usr/include/c++/12/bits/stl_vector.h", 1011, "leaky", 0x1500),
                            F("Buffer::Grow()", "/src/leaky/buffer.cc", 19, "leaky", 0x1620), main_frame, libc_main},
                           0, 0, 4000000, 1, {4000000}));
  std::vector<const Site*> all;
  for (const Site& site : report.sites) all.push_back(&site);
  report.peak_sites = GroupSites(all, &Site::peak_bytes, &Site::peak_blocks);
  absl::StatusOr<LeakSuppressions> suppressions = LeakSuppressions::Parse("# vendor code\nleak:libthird.so\n", "s");
  ClassifyLeaks(*suppressions, &report);
  return report;
}

inline TraceReport LeakySnapshot() {
  TraceReport report = LeakyExitTrace();
  report.path = "leaky.snapshot.json";
  report.trace.kind = TraceKind::kSnapshot;
  report.trace.exit_code.reset();
  report.trace.time_s = 0.5;
  report.trace.mode = "sample";
  report.trace.sample_mean_bytes = 524288;
  report.trace.complete = false;
  report.has_leaks = false;
  report.leaks.clear();
  report.runtime_leaks.clear();
  report.suppression_hits.clear();
  report.suppressed_bytes = report.suppressed_count = 0;
  report.leaked_bytes = report.leaked_blocks = 0;
  std::vector<const Site*> all;
  for (const Site& site : report.sites) all.push_back(&site);
  report.live_sites = GroupSites(all, &Site::live_bytes, &Site::live_blocks);
  return report;
}

// Compares `actual` with tests/unit/golden/<name>; MEMTIDE_UPDATE_GOLDEN=1 rewrites the file instead.
inline bool MatchesGolden(const std::string& name, const std::string& actual, std::string* expected_out) {
  std::string path = std::string(MEMTIDE_GOLDEN_DIR) + "/" + name;
  const char* update = getenv("MEMTIDE_UPDATE_GOLDEN");
  if (update != nullptr && std::string(update) == "1") {
    std::ofstream(path, std::ios::binary) << actual;
    return true;
  }
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  *expected_out = buffer.str();
  return in.good() || in.eof() ? *expected_out == actual : false;
}

}  // namespace memtide::test

#define CHECK_GOLDEN(name, actual)                                                                             \
  do {                                                                                                         \
    std::string golden_expected;                                                                               \
    std::string golden_actual = (actual);                                                                      \
    INFO("golden/" << (name) << " differs (MEMTIDE_UPDATE_GOLDEN=1 rewrites it); actual:\n" << golden_actual); \
    CHECK(memtide::test::MatchesGolden((name), golden_actual, &golden_expected));                              \
  } while (0)

#endif  // MEMTIDE_TESTS_UNIT_REPORT_TEST_MODELS_H_
