// Unit tests for tracer/trace_report.cc and tracer/leak_suppressions.cc: loading and validating trace files
// and reports (every hostile input is one clear line, never a crash), grouping by stack, LeakSanitizer
// suppressions, and which blocks are the C runtime's.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "trace_report.h"

#include <doctest/doctest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <random>
#include <string>

#include "leak_suppressions.h"
#include "report_render.h"

namespace memtide {
namespace {

using Json = nlohmann::json;

// Modules that do not exist: frames stay module+offset, so nothing depends on this machine's files.
Json ValidTrace() {
  return Json::parse(R"({
    "memtide_trace_version": 1, "kind": "exit", "pid": 4242, "command": ["./prog", "--flag"],
    "time_s": 2.5, "exit_code": null, "mode": "full", "sample_mean_bytes": 0, "byte_unit": "requested",
    "complete": true,
    "totals": {"live_bytes": 1500, "live_blocks": 13, "peak_bytes": 9000, "allocations": 40, "frees": 27,
               "allocated_bytes": 20000},
    "modules": [{"path": "/nonexistent/bin/prog", "build_id": "00ff", "base": 93824992231424,
                 "start": 93824992235520, "end": 93824992239616},
                {"path": "/nonexistent/lib/libc.so.6", "build_id": "", "base": 0, "start": 0, "end": 0}],
    "stacks": [{"id": 1, "frames": [[0, 4096], [0, 8192], [1, 100]]},
               {"id": 2, "frames": [[0, 4096], [0, 8192], [1, 100]]},
               {"id": 3, "frames": [[1, 200], [1, 300]]},
               {"id": 7, "frames": [[-1, 139638264181504]]},
               {"id": 8, "frames": []}],
    "sites": [{"stack": 1, "live_bytes": 1000, "live_blocks": 10, "peak_bytes": 800, "peak_blocks": 8,
               "allocated_bytes": 5000, "allocations": 50, "sizes": [100]},
              {"stack": 2, "live_bytes": 300, "live_blocks": 1, "peak_bytes": 0, "peak_blocks": 0,
               "allocated_bytes": 300, "allocations": 1, "sizes": [300, 100]},
              {"stack": 3, "live_bytes": 150, "live_blocks": 1, "peak_bytes": 150, "peak_blocks": 1,
               "allocated_bytes": 150, "allocations": 1, "sizes": [150]},
              {"stack": 7, "live_bytes": 0, "live_blocks": 0, "peak_bytes": 8000, "peak_blocks": 2,
               "allocated_bytes": 8000, "allocations": 2, "sizes": [4000]},
              {"stack": 8, "live_bytes": 50, "live_blocks": 1, "peak_bytes": 50, "peak_blocks": 1,
               "allocated_bytes": 50, "allocations": 1}]
  })");
}

absl::StatusOr<TraceReport> Parse(const Json& json) {
  Symbolizer symbolizer;
  return ParseTraceOrReport(json, "t.json", &symbolizer);
}

std::string ErrorOf(const Json& json) {
  absl::StatusOr<TraceReport> report = Parse(json);
  REQUIRE_FALSE(report.ok());
  std::string message(report.status().message());
  CHECK(message.find('\n') == std::string::npos);
  return message;
}

TEST_CASE("a valid trace: sites symbolized, equal stacks grouped, sorted by bytes") {
  absl::StatusOr<TraceReport> report = Parse(ValidTrace());
  REQUIRE(report.ok());
  CHECK(report->has_trace);
  CHECK(report->has_sites);
  CHECK(report->trace.kind == TraceKind::kExit);
  CHECK(report->trace.pid == 4242);
  CHECK(report->trace.command == std::vector<std::string>{"./prog", "--flag"});
  CHECK(report->trace.peak_bytes == 9000);
  CHECK_FALSE(report->trace.exit_code.has_value());
  REQUIRE(report->sites.size() == 5);
  const Stack& stack = report->sites[0].stack;
  REQUIRE(stack.size() == 3);
  CHECK(stack[0].function == "??");
  CHECK(stack[0].module == "prog");
  CHECK(stack[0].module_path == "/nonexistent/bin/prog");
  CHECK(FrameModuleOffset(stack[0]) == "prog+0x1000");
  CHECK(FrameModuleOffset(report->sites[3].stack[0]) == "0x7f0011223300");
  // Peak sites: stacks 1 and 2 are the same stack; stack 2 held nothing at the peak.
  REQUIRE(report->peak_sites.size() == 4);
  CHECK(report->peak_sites[0].bytes == 8000);
  CHECK(report->peak_sites[1].bytes == 800);

  ClassifyLeaks(LeakSuppressions(), &*report);
  CHECK(report->has_leaks);
  // Stacks 1 and 2 merge (1300 bytes, sizes union); stack 3 lies wholly in libc: the runtime's.
  REQUIRE(report->leaks.size() == 2);
  CHECK(report->leaks[0].bytes == 1300);
  CHECK(report->leaks[0].count == 11);
  CHECK(report->leaks[0].sizes == std::vector<int64_t>{100, 300});
  CHECK(report->leaks[1].stack.empty());
  CHECK(report->leaked_bytes == 1350);
  CHECK(report->leaked_blocks == 12);
  REQUIRE(report->runtime_leaks.size() == 1);
  CHECK(report->runtime_leaks[0].bytes == 150);
}

TEST_CASE("validation without symbolization, and live sites only") {
  Json json = ValidTrace();
  absl::StatusOr<TraceReport> checked = ParseRawTrace(json, "t.json", nullptr);
  REQUIRE(checked.ok());
  CHECK(checked->sites[0].stack[0].module == "prog");
  Symbolizer symbolizer;
  RawTraceOptions live_only;
  live_only.live_sites_only = true;
  absl::StatusOr<TraceReport> live = ParseRawTrace(json, "t.json", &symbolizer, live_only);
  REQUIRE(live.ok());
  CHECK(live->sites.size() == 4);  // the site with nothing live is dropped
}

TEST_CASE("RawTraceOptions: no stack copied per site, and only the first entries of each list named") {
  Symbolizer symbolizer;
  absl::StatusOr<TraceReport> whole = ParseRawTrace(ValidTrace(), "t.json", &symbolizer);
  RawTraceOptions lean;
  lean.all_site_stacks = false;
  lean.named_entries = 1;
  absl::StatusOr<TraceReport> named = ParseRawTrace(ValidTrace(), "t.json", &symbolizer, lean);
  REQUIRE(whole.ok());
  REQUIRE(named.ok());
  REQUIRE(named->sites.size() == whole->sites.size());
  for (size_t i = 0; i < named->sites.size(); ++i) {
    const Site& site = named->sites[i];
    const bool live = site.live_bytes != 0 || site.live_blocks != 0;
    const bool held_at_peak = site.peak_bytes != 0 || site.peak_blocks != 0;
    // No copy per site: the stacks of the sites any list counts are read from the report's frame names.
    CHECK(site.stack.empty());
    if (live || held_at_peak) {
      CHECK(StackKey(SiteStack(*named, site)) == StackKey(whole->sites[i].stack));
      CHECK(SiteFrames(*named, site).size() == whole->sites[i].stack.size());
    }
    CHECK(site.peak_bytes == whole->sites[i].peak_bytes);
  }
  REQUIRE(named->peak_sites.size() == whole->peak_sites.size());
  CHECK(StackKey(named->peak_sites[0].stack) == StackKey(whole->peak_sites[0].stack));
  for (size_t i = 1; i < named->peak_sites.size(); ++i) {
    CHECK(named->peak_sites[i].stack.empty());
    CHECK(named->peak_sites[i].bytes == whole->peak_sites[i].bytes);
    CHECK(named->peak_sites[i].count == whole->peak_sites[i].count);
    CHECK(named->peak_sites[i].sizes == whole->peak_sites[i].sizes);
  }
  // all_site_frames: every site's frames readable, still without a copy per site, also those of a site
  // that no list counts (site 3 made neither live nor held at the peak), which are not named otherwise.
  Json allocated_only = ValidTrace();
  allocated_only["sites"][3]["peak_bytes"] = 0;
  allocated_only["sites"][3]["peak_blocks"] = 0;
  RawTraceOptions frames_only = lean;
  frames_only.all_site_frames = true;
  absl::StatusOr<TraceReport> framed = ParseRawTrace(allocated_only, "t.json", &symbolizer, frames_only);
  absl::StatusOr<TraceReport> unframed = ParseRawTrace(allocated_only, "t.json", &symbolizer, lean);
  REQUIRE(framed.ok());
  REQUIRE(unframed.ok());
  for (size_t i = 0; i < framed->sites.size(); ++i) {
    CHECK(framed->sites[i].stack.empty());
    CHECK(StackKey(SiteStack(*framed, framed->sites[i])) == StackKey(whole->sites[i].stack));
  }
  REQUIRE_FALSE(whole->sites[3].stack.empty());
  CHECK(SiteFrames(*unframed, unframed->sites[3]).empty());
  // The leak check reads the live sites alone: the same leaks either way.
  ClassifyLeaks(LeakSuppressions(), &*whole);
  ClassifyLeaks(LeakSuppressions(), &*named);
  REQUIRE(named->leaks.size() == whole->leaks.size());
  for (size_t i = 0; i < named->leaks.size(); ++i) {
    CHECK(StackKey(named->leaks[i].stack) == StackKey(whole->leaks[i].stack));
    CHECK(named->leaks[i].bytes == whole->leaks[i].bytes);
  }
  CHECK(named->runtime_leaks.size() == whole->runtime_leaks.size());
}

TEST_CASE("entries left unnamed read their first site's frames, and fold as named ones do") {
  Symbolizer symbolizer;
  absl::StatusOr<TraceReport> whole = ParseRawTrace(ValidTrace(), "t.json", &symbolizer);
  RawTraceOptions unnamed_options;
  unnamed_options.all_site_stacks = false;
  unnamed_options.named_entries = 0;
  absl::StatusOr<TraceReport> unnamed = ParseRawTrace(ValidTrace(), "t.json", &symbolizer, unnamed_options);
  REQUIRE(whole.ok());
  REQUIRE(unnamed.ok());
  ClassifyLeaks(LeakSuppressions(), &*whole);
  ClassifyLeaks(LeakSuppressions(), &*unnamed, 0);
  auto same_frames = [&](const std::vector<StackTotal>& entries, const std::vector<StackTotal>& named) {
    REQUIRE(entries.size() == named.size());
    REQUIRE_FALSE(entries.empty());
    for (size_t i = 0; i < entries.size(); ++i) {
      CHECK(entries[i].stack.empty());
      Stack read;
      for (const Frame* frame : EntryFrames(*unnamed, entries[i])) read.push_back(*frame);
      CHECK(StackKey(read) == StackKey(named[i].stack));
    }
  };
  same_frames(unnamed->peak_sites, whole->peak_sites);
  same_frames(unnamed->leaks, whole->leaks);
  CHECK(*RenderCollapsed(*unnamed, Weight::kPeak) == *RenderCollapsed(*whole, Weight::kPeak));
  CHECK(*RenderCollapsed(*unnamed, Weight::kLeaked) == *RenderCollapsed(*whole, Weight::kLeaked));
  // A copy of the report reads its own sites: the entries hold an index, not an address.
  TraceReport copy = *unnamed;
  unnamed->sites.clear();
  CHECK(*RenderCollapsed(copy, Weight::kPeak) == *RenderCollapsed(*whole, Weight::kPeak));
}

// Grouping on the frame key ids ParseRawTrace records must give exactly what grouping on StackKey strings gives:
// the same groups, sums, sizes and order, ties in bytes and blocks included.
TEST_CASE("grouping on frame keys equals grouping on stack keys") {
  std::mt19937_64 random(7);
  Json json = ValidTrace();
  Json stacks = Json::array();
  Json sites = Json::array();
  for (int id = 1; id <= 300; ++id) {
    Json frames = Json::array();
    const int depth = static_cast<int>(random() % 4);
    for (int f = 0; f < depth; ++f) {
      const int module = static_cast<int>(random() % 3) - 1;  // -1: no module
      frames.push_back(Json::array({module, 16 * (1 + random() % 6)}));
    }
    stacks.push_back({{"id", id}, {"frames", frames}});
    // Few distinct figures, so that ties in bytes and blocks are common.
    const int64_t live_blocks = static_cast<int64_t>(random() % 3);
    const int64_t peak_blocks = static_cast<int64_t>(random() % 3);
    sites.push_back({{"stack", id}, {"live_bytes", 100 * live_blocks}, {"live_blocks", live_blocks},
                     {"peak_bytes", 100 * peak_blocks}, {"peak_blocks", peak_blocks}, {"allocated_bytes", 300},
                     {"allocations", 3}, {"sizes", Json::array({16 * (1 + random() % 5)})}});
  }
  json["stacks"] = stacks;
  json["sites"] = sites;
  Symbolizer symbolizer;
  absl::StatusOr<TraceReport> report = ParseRawTrace(json, "t.json", &symbolizer);
  REQUIRE(report.ok());
  REQUIRE_FALSE(report->frame_key_ranks.empty());
  std::vector<const Site*> all;
  for (const Site& site : report->sites) all.push_back(&site);
  auto same = [](const std::vector<StackTotal>& by_ids, const std::vector<StackTotal>& by_text) {
    REQUIRE(by_ids.size() == by_text.size());
    for (size_t i = 0; i < by_ids.size(); ++i) {
      CHECK(StackKey(by_ids[i].stack) == StackKey(by_text[i].stack));
      CHECK(by_ids[i].bytes == by_text[i].bytes);
      CHECK(by_ids[i].count == by_text[i].count);
      CHECK(by_ids[i].sizes == by_text[i].sizes);
    }
  };
  same(report->peak_sites, GroupSites(all, &Site::peak_bytes, &Site::peak_blocks));
  same(GroupSites(all, &Site::live_bytes, &Site::live_blocks, &*report),
       GroupSites(all, &Site::live_bytes, &Site::live_blocks));
  CHECK(report->peak_sites.size() < 200);  // equal stacks did merge

  // Leak lists: every stack named, or the first 3 alone (same entries and figures, later stacks empty).
  absl::StatusOr<TraceReport> first_only = ParseRawTrace(json, "t.json", &symbolizer);
  REQUIRE(first_only.ok());
  ClassifyLeaks(LeakSuppressions(), &*report);
  ClassifyLeaks(LeakSuppressions(), &*first_only, 3);
  REQUIRE(first_only->leaks.size() == report->leaks.size());
  REQUIRE(report->leaks.size() > 10);
  for (size_t i = 0; i < report->leaks.size(); ++i) {
    CHECK(first_only->leaks[i].bytes == report->leaks[i].bytes);
    CHECK(first_only->leaks[i].count == report->leaks[i].count);
    if (i < 3) {
      CHECK(StackKey(first_only->leaks[i].stack) == StackKey(report->leaks[i].stack));
    } else {
      CHECK(first_only->leaks[i].stack.empty());
    }
  }
  CHECK(first_only->leaked_bytes == report->leaked_bytes);
  CHECK(first_only->leaked_blocks == report->leaked_blocks);
}

TEST_CASE("a snapshot groups its live sites") {
  Json json = ValidTrace();
  json["kind"] = "snapshot";
  absl::StatusOr<TraceReport> report = Parse(json);
  REQUIRE(report.ok());
  REQUIRE(report->live_sites.size() == 3);
  CHECK(report->live_sites[0].bytes == 1300);
  ClassifyLeaks(LeakSuppressions(), &*report);
  CHECK_FALSE(report->has_leaks);
}

TEST_CASE("hostile traces: one line naming the file, the place and the problem") {
  struct Case {
    std::function<void(Json*)> edit;
    std::string expected;
  };
  const Case cases[] = {
      {[](Json* j) { (*j)["memtide_trace_version"] = 3; },
       "t.json: trace file version 3 is not supported (this memtide reads versions 1 to 2)"},
      {[](Json* j) { (*j)["memtide_trace_version"] = "1"; }, "trace file version \"1\" is not supported"},
      {[](Json* j) { (*j)["stacks"][0]["frames"][1][0] = 5; },
       "t.json: stacks[0].frames[1]: module index 5 is out of range (the file lists 2 modules)"},
      {[](Json* j) { (*j)["stacks"][0]["frames"][1][0] = -2; }, "module index -2 is out of range"},
      {[](Json* j) { (*j)["stacks"][0]["frames"][1][1] = -4; }, "stacks[0].frames[1][1]: -4 is negative"},
      {[](Json* j) { (*j)["stacks"][0]["frames"][1] = Json::array({0}); },
       "stacks[0].frames[1]: is not a [module_index, offset] pair"},
      {[](Json* j) { (*j)["stacks"][1]["id"] = 1; }, "stacks[1].id: stack id 1 appears twice"},
      {[](Json* j) { (*j)["sites"][2]["stack"] = 99; }, "sites[2].stack: stack id 99 is not in \"stacks\""},
      {[](Json* j) { (*j)["sites"][0]["live_bytes"] = -5; }, "sites[0].live_bytes: -5 is negative"},
      {[](Json* j) { (*j)["sites"][0]["live_bytes"] = "lots"; }, "sites[0].live_bytes: is a string, not an integer"},
      {[](Json* j) { (*j)["sites"][0]["live_bytes"] = 1e30; }, "is the number 1e+30, not an integer"},
      {[](Json* j) { (*j)["sites"][0]["live_bytes"] = 18446744073709551615ULL; }, "is out of range"},
      {[](Json* j) { (*j)["sites"][0]["sizes"] = "100"; }, "sites[0].sizes: is a string, not a list"},
      {[](Json* j) { (*j)["sites"] = Json::object(); }, "sites: is an object, not a list"},
      {[](Json* j) { (*j)["sites"][0] = 3; }, "sites[0]: is a number, not an object"},
      {[](Json* j) { j->erase("totals"); }, "\"totals\" is missing"},
      {[](Json* j) { j->erase("modules"); }, "\"modules\" is missing"},
      {[](Json* j) { (*j)["modules"][0]["path"] = 7; }, "modules[0].path: is a number, not a string"},
      {[](Json* j) { (*j)["modules"][0]["build_id"] = "xyz"; }, "modules[0].build_id: is not a hexadecimal build id"},
      {[](Json* j) { (*j)["kind"] = "bogus\x1b[31m"; }, "kind: \"bogus?[31m\" is not exit or snapshot"},
      {[](Json* j) { (*j)["mode"] = "partial"; }, "mode: \"partial\" is not full or sample"},
      {[](Json* j) { (*j)["complete"] = 1; }, "complete: is a number, not true or false"},
      {[](Json* j) { (*j)["command"][1] = false; }, "command[1]: is a boolean, not a string"},
      {[](Json* j) {
         (*j)["stacks"][0]["frames"] = Json::array();
         for (int i = 0; i < 2000; ++i) (*j)["stacks"][0]["frames"].push_back({0, 1});
       },
       "stacks[0].frames: 2000 frames is more than 1024"},
  };
  for (const Case& c : cases) {
    Json json = ValidTrace();
    c.edit(&json);
    std::string message = ErrorOf(json);
    INFO(message);
    CHECK(message.find(c.expected) != std::string::npos);
  }
  CHECK(ErrorOf(Json::array()) == "t.json: is a list, not a memtide trace or report");
  CHECK(ErrorOf(Json::object()).find("no version found") != std::string::npos);
  CHECK(ErrorOf(Json{{"memtide_report_version", 7}}) ==
        "t.json: report version 7 is not supported (this memtide reads versions 1 to 2)");
}

// The same trace in version 2 (tracer/trace_file.h): frames table, call tree, site arrays. Stacks must be
// distinct there (the tree merges equal ones), so the caller drops duplicates first.
Json ToVersion2(const Json& v1) {
  Json v2 = v1;
  v2["memtide_trace_version"] = 2;
  v2.erase("stacks");
  Json frames = Json::array(), nodes = Json::array(), sites = Json::array();
  std::map<std::pair<int64_t, uint64_t>, size_t> frame_index;
  std::map<std::pair<int64_t, size_t>, int64_t> node_index;
  std::map<int64_t, int64_t> leaf_of_stack;
  for (const Json& stack : v1["stacks"]) {
    int64_t parent = -1;
    const Json& list = stack["frames"];
    for (size_t i = list.size(); i-- > 0;) {
      const auto key = std::make_pair(list[i][0].get<int64_t>(), list[i][1].get<uint64_t>());
      auto [frame, fresh] = frame_index.emplace(key, frame_index.size());
      if (fresh) frames.push_back(list[i]);
      auto [node, new_node] = node_index.emplace(std::make_pair(parent, frame->second), int64_t(node_index.size()));
      if (new_node) nodes.push_back({parent, frame->second});
      parent = node->second;
    }
    leaf_of_stack[stack["id"].get<int64_t>()] = parent;
  }
  for (const Json& site : v1["sites"]) {
    sites.push_back({leaf_of_stack.at(site["stack"].get<int64_t>()), site["live_bytes"], site["live_blocks"],
                     site["peak_bytes"], site["peak_blocks"], site["allocated_bytes"], site["allocations"],
                     site.value("sizes", Json::array())});
  }
  v2["frames"] = frames;
  v2["nodes"] = nodes;
  v2["site_fields"] = {"node", "live_bytes", "live_blocks", "peak_bytes", "peak_blocks", "allocated_bytes",
                       "allocations", "sizes"};
  v2["sites"] = sites;
  return v2;
}

// ValidTrace without its duplicate stack (2), whose site moves to stack 1's twin in no way version 2 allows.
Json DistinctStacksTrace() {
  Json v1 = ValidTrace();
  v1["stacks"].erase(1);
  v1["sites"].erase(1);
  return v1;
}

TEST_CASE("version 2 reads exactly as the same trace in version 1") {
  absl::StatusOr<TraceReport> one = Parse(DistinctStacksTrace());
  absl::StatusOr<TraceReport> two = Parse(ToVersion2(DistinctStacksTrace()));
  REQUIRE(one.ok());
  REQUIRE(two.ok());
  REQUIRE(one->sites.size() == two->sites.size());
  for (size_t i = 0; i < one->sites.size(); ++i) {
    INFO("site " << i);
    const Site& a = one->sites[i];
    const Site& b = two->sites[i];
    REQUIRE(a.stack.size() == b.stack.size());
    for (size_t j = 0; j < a.stack.size(); ++j) CHECK(FrameModuleOffset(a.stack[j]) == FrameModuleOffset(b.stack[j]));
    CHECK(a.live_bytes == b.live_bytes);
    CHECK(a.live_blocks == b.live_blocks);
    CHECK(a.peak_bytes == b.peak_bytes);
    CHECK(a.peak_blocks == b.peak_blocks);
    CHECK(a.allocated_bytes == b.allocated_bytes);
    CHECK(a.allocations == b.allocations);
    CHECK(a.sizes == b.sizes);
  }
  CHECK(two->sites[0].stack.size() == 3);
  CHECK(two->sites.back().stack.empty());  // node -1
  ClassifyLeaks(LeakSuppressions(), &*one);
  ClassifyLeaks(LeakSuppressions(), &*two);
  CHECK(one->leaked_bytes == two->leaked_bytes);
  CHECK(one->runtime_leaks.size() == two->runtime_leaks.size());
  REQUIRE(one->peak_sites.size() == two->peak_sites.size());
  for (size_t i = 0; i < one->peak_sites.size(); ++i) CHECK(one->peak_sites[i].bytes == two->peak_sites[i].bytes);
}

// An edit of a valid version-2 trace, and what the one-line error must say.
struct HostileEdit {
  std::function<void(Json*)> edit;
  std::string expected;
};

void CheckHostileEdits(const std::vector<HostileEdit>& cases) {
  for (const HostileEdit& c : cases) {
    Json json = ToVersion2(DistinctStacksTrace());
    c.edit(&json);
    std::string message = ErrorOf(json);
    INFO(message);
    CHECK(message.find(c.expected) != std::string::npos);
  }
}

TEST_CASE("hostile version-2 traces: one line naming the place and the problem") {
  CheckHostileEdits({
      {[](Json* j) { (*j)["frames"][0][0] = 9; }, "t.json: frames[0]: module index 9 is out of range"},
      {[](Json* j) { (*j)["frames"][1] = "x"; }, "frames[1]: is not a [module_index, offset] pair"},
      {[](Json* j) { (*j)["nodes"][0][0] = 0; }, "nodes[0][0]: parent 0 is not -1 or an earlier node"},
      {[](Json* j) { (*j)["nodes"][1][0] = 5; }, "nodes[1][0]: parent 5 is not -1 or an earlier node"},
      {[](Json* j) { (*j)["nodes"][1][1] = 99; }, "nodes[1][1]: frame 99 is out of range (the file lists"},
      {[](Json* j) { (*j)["nodes"][1] = Json::array({0}); }, "nodes[1]: is not a [parent, frame] pair"},
      {[](Json* j) { (*j)["site_fields"][1] = "live"; }, "site_fields: [\"node\",\"live\""},
      {[](Json* j) { j->erase("site_fields"); }, "\"site_fields\" is missing"},
      {[](Json* j) { (*j)["sites"][0] = Json::array({0, 1}); }, "sites[0]: is not an array of the 8 site_fields"},
      {[](Json* j) { (*j)["sites"][0][0] = 1000; }, "sites[0][0]: node 1000 is out of range"},
      {[](Json* j) { (*j)["sites"][1][0] = (*j)["sites"][0][0]; }, "is also the stack of sites[0]"},
      {[](Json* j) { (*j)["sites"][0][2] = -1; }, "sites[0][2]: -1 is negative"},
      {[](Json* j) { (*j)["sites"][0][7] = 5; }, "sites[0][7]: is not an array of sizes"},
      {[](Json* j) {
         Json& nodes = (*j)["nodes"];
         for (int i = 0; i < 1100; ++i) nodes.push_back({int64_t(nodes.size()) - 1, 0});
       },
       "a stack of more than 1024 frames"},
  });
}

TEST_CASE("the exit-cleanup probe's figures decide which blocks are the C runtime's") {
  Json json = ToVersion2(DistinctStacksTrace());
  // sites: the program's stack (1000 bytes in 10 blocks live), one wholly in libc (150 in 1), one that held
  // only a peak, one of no frame (50 in 1). The probe saw the runtime's cleanup free 400 bytes in 4 blocks of
  // the first, and nothing of the libc one: its stack no longer decides.
  json["freed_at_exit"] = Json::array({Json::array({json["sites"][0][0], 400, 4})});
  absl::StatusOr<TraceReport> report = Parse(json);
  REQUIRE(report.ok());
  CHECK(report->exit_cleanup_probed);
  ClassifyLeaks(LeakSuppressions(), &*report);
  CHECK(report->leaked_bytes == 600 + 150 + 50);
  CHECK(report->leaked_blocks == 6 + 1 + 1);
  REQUIRE(report->runtime_leaks.size() == 1);
  CHECK(report->runtime_leaks[0].bytes == 400);
  CHECK(report->runtime_leaks[0].count == 4);
  REQUIRE(report->leaks.size() == 3);
  CHECK(report->leaks[0].bytes == 600);

  // A suppression takes only the part the runtime did not free.
  absl::StatusOr<LeakSuppressions> suppressions = LeakSuppressions::Parse("leak:prog\n", "s.supp");
  REQUIRE(suppressions.ok());
  ClassifyLeaks(*suppressions, &*report);
  CHECK(report->suppressed_bytes == 600);
  CHECK(report->suppressed_count == 6);
  CHECK(report->leaked_bytes == 150 + 50);
  REQUIRE(report->runtime_leaks.size() == 1);
  CHECK(report->runtime_leaks[0].bytes == 400);

  // The probe ran and the runtime freed nothing: every live block is a leak, the libc one included.
  json["freed_at_exit"] = Json::array();
  absl::StatusOr<TraceReport> nothing_freed = Parse(json);
  REQUIRE(nothing_freed.ok());
  ClassifyLeaks(LeakSuppressions(), &*nothing_freed);
  CHECK(nothing_freed->leaked_bytes == 1200);
  CHECK(nothing_freed->runtime_leaks.empty());

  // No probe: the stacks decide, as before.
  json.erase("freed_at_exit");
  absl::StatusOr<TraceReport> no_probe = Parse(json);
  REQUIRE(no_probe.ok());
  CHECK_FALSE(no_probe->exit_cleanup_probed);
  ClassifyLeaks(LeakSuppressions(), &*no_probe);
  CHECK(no_probe->leaked_bytes == 1050);
  REQUIRE(no_probe->runtime_leaks.size() == 1);
  CHECK(no_probe->runtime_leaks[0].bytes == 150);
}

TEST_CASE("hostile freed_at_exit lists: one line naming the place and the problem") {
  CheckHostileEdits({
      {[](Json* j) { (*j)["freed_at_exit"] = 5; }, "freed_at_exit: is not an array of [node, bytes, blocks]"},
      {[](Json* j) { (*j)["freed_at_exit"] = Json::array({Json::array({0, 1})}); },
       "freed_at_exit[0]: is not a [node, bytes, blocks] triple"},
      {[](Json* j) { (*j)["freed_at_exit"] = Json::array({Json::array({(*j)["sites"][0][0], -4, 1})}); },
       "freed_at_exit[0][1]: -4 is negative"},
      {[](Json* j) { (*j)["freed_at_exit"] = Json::array({Json::array({1000, 1, 1})}); },
       "freed_at_exit[0][0]: node 1000 is no site's stack"},
      {[](Json* j) { (*j)["freed_at_exit"] = Json::array({Json::array({(*j)["sites"][0][0], 2000, 1})}); },
       "freed_at_exit[0]: frees 2000 bytes in 1 blocks of a site that has only 1000 in 10 live"},
      {[](Json* j) {
         (*j)["freed_at_exit"] = Json::array({Json::array({(*j)["sites"][0][0], 1, 1}),
                                              Json::array({(*j)["sites"][0][0], 1, 1})});
       },
       "is listed twice"},
  });
}

// Random byte edits of a valid file: whatever the parser or the validator says, it is one line and no crash.
TEST_CASE("mutated traces never crash the reader") {
  std::string text = ValidTrace().dump();
  std::mt19937 random(12345);
  const char kBytes[] = "{}[],:\"-019e.xtrufalsn \\";
  for (int round = 0; round < 3000; ++round) {
    std::string mutated = text;
    int edits = 1 + static_cast<int>(random() % 4);
    for (int e = 0; e < edits; ++e) {
      size_t at = random() % mutated.size();
      switch (random() % 3) {
        case 0:
          mutated[at] = kBytes[random() % (sizeof(kBytes) - 1)];
          break;
        case 1:
          mutated.erase(at, 1 + random() % 8);
          break;
        default:
          mutated.insert(at, 1, kBytes[random() % (sizeof(kBytes) - 1)]);
          break;
      }
    }
    Json json = Json::parse(mutated, nullptr, false);
    if (json.is_discarded()) continue;
    absl::StatusOr<TraceReport> report = ParseTraceOrReport(json, "m.json", nullptr);
    if (!report.ok()) CHECK(report.status().message().find('\n') == absl::string_view::npos);
  }
}

struct TempFile {
  std::string path;
  explicit TempFile(const std::string& contents) {
    char name[] = "/tmp/memtide-trace-report-test.XXXXXX";
    int fd = mkstemp(name);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, contents.data(), contents.size()) == static_cast<ssize_t>(contents.size()));
    close(fd);
    path = name;
  }
  ~TempFile() { unlink(path.c_str()); }
};

TEST_CASE("files: missing, empty, not JSON, too deep, a folder") {
  CHECK(ReadJsonFile("/nonexistent/trace.json").status().message() == "/nonexistent/trace.json: no such file");
  CHECK(ReadJsonFile("/tmp").status().message() == "/tmp: not a regular file");
  TempFile empty("");
  CHECK(ReadJsonFile(empty.path).status().message() == empty.path + ": empty file (not a trace or report)");
  TempFile corrupt("{\"memtide_trace_version\": 1, \"kind\": ");
  std::string message(ReadJsonFile(corrupt.path).status().message());
  CHECK(message.rfind(corrupt.path + ": not JSON: parse error at line 1, column ", 0) == 0);
  CHECK(message.find('\n') == std::string::npos);
  TempFile deep(std::string(100000, '[') + std::string(100000, ']'));
  CHECK(ReadJsonFile(deep.path).status().message() == deep.path + ": JSON nested deeper than 64 levels");
  TempFile good(ValidTrace().dump());
  CHECK(ReadJsonFile(good.path).ok());
  // The same checks for text that came another way (a snapshot a traced process wrote).
  CHECK(ParseJsonText(std::string(100000, '{'), "process 7's snapshot").status().message() ==
        "process 7's snapshot: JSON nested deeper than 64 levels");
  CHECK(std::string(ParseJsonText("[1,", "process 7's snapshot").status().message())
            .rfind("process 7's snapshot: not JSON: parse error", 0) == 0);
  CHECK(ParseJsonText(ValidTrace().dump(), "x").ok());
}

TEST_CASE("a report round-trips its lists, and a version-1 report has counters only") {
  absl::StatusOr<TraceReport> traced = Parse(ValidTrace());
  REQUIRE(traced.ok());
  ClassifyLeaks(LeakSuppressions(), &*traced);
  Json report = RenderJson(*traced, 1);
  report[kRunReportVersionKey] = 2;
  report["heap"] = {{"peak_bytes", 12345}};
  absl::StatusOr<TraceReport> read = Parse(report);
  REQUIRE(read.ok());
  CHECK(read->has_trace);
  CHECK(read->has_leaks);
  CHECK_FALSE(read->has_sites);
  REQUIRE(read->leaks.size() == 1);  // listed: the top one; totals whole
  CHECK(read->leaks[0].bytes == 1300);
  CHECK(StackKey(read->leaks[0].stack) == StackKey(traced->leaks[0].stack));
  CHECK(read->leaked_bytes == 1350);
  CHECK(read->runtime_leaks.size() == 1);
  CHECK(read->peak_sites.size() == 1);
  CHECK(read->run_report["heap"]["peak_bytes"] == 12345);

  absl::StatusOr<TraceReport> old = Parse(Json{{"memtide_report_version", 1}, {"heap", {{"peak_bytes", 1}}}});
  REQUIRE(old.ok());
  CHECK_FALSE(old->has_trace);
  CHECK_FALSE(old->has_leaks);

  Json bad = report;
  bad["leaks"][0]["stack"][0]["address"] = "12zz";
  CHECK(ErrorOf(bad).find("leaks[0].stack[0].address: \"12zz\" is not a hexadecimal address") != std::string::npos);
  bad = report;
  bad["leaks"][0]["stack"][0]["line"] = -1;
  CHECK(ErrorOf(bad).find("leaks[0].stack[0].line: -1 is negative") != std::string::npos);
  bad = report;
  bad["trace"]["kind"] = 3;
  CHECK(ErrorOf(bad).find("trace.kind: is a number, not a string") != std::string::npos);
}

TEST_CASE("LeakSanitizer pattern semantics") {
  CHECK(SuppressionPatternMatches("foo", "libfoo.so"));  // substring
  CHECK(SuppressionPatternMatches("^libfoo", "libfoo.so"));
  CHECK_FALSE(SuppressionPatternMatches("^foo", "libfoo.so"));
  CHECK(SuppressionPatternMatches("foo.so$", "libfoo.so"));
  CHECK_FALSE(SuppressionPatternMatches("foo$", "libfoo.so"));
  CHECK(SuppressionPatternMatches("^lib*.so$", "libfoo.so"));
  CHECK(SuppressionPatternMatches("Parser::*Init", "xml::Parser::LazyInit()"));
  CHECK_FALSE(SuppressionPatternMatches("Parser::*Init", "Parser::Run()"));
  CHECK(SuppressionPatternMatches("*", "anything"));
  CHECK(SuppressionPatternMatches("abc$", "abcabc"));  // LSan's first-match search misses this one
  CHECK(SuppressionPatternMatches("^abc$", "abc"));
  CHECK_FALSE(SuppressionPatternMatches("^abc$", "abcabc"));
  CHECK_FALSE(SuppressionPatternMatches("foo", ""));
  CHECK(SuppressionPatternMatches("a*$", "abc"));
}

TEST_CASE("suppressions files: leak: lines, comments, errors with file and line") {
  absl::StatusOr<LeakSuppressions> parsed = LeakSuppressions::Parse(
      "# third-party\n\n  leak:libthird.so  \nleak:^ThirdParty::Init\nleak:vendor/*.c\n", "s.txt");
  REQUIRE(parsed.ok());
  CHECK(parsed->patterns() == std::vector<std::string>{"libthird.so", "^ThirdParty::Init", "vendor/*.c"});
  Frame program;
  program.function = "main";
  program.file = "/src/main.cc";
  program.module = "prog";
  program.module_path = "/usr/bin/prog";
  Frame third = program;
  third.function = "ThirdParty::Init(int)";
  Frame vendor = program;
  vendor.file = "/src/vendor/zlib/inflate.c";
  Frame library = program;
  library.module = "libthird.so";
  library.module_path = "/opt/lib/libthird.so";
  CHECK(parsed->Match({program}) == -1);
  CHECK(parsed->Match({library, program}) == 0);
  CHECK(parsed->Match({program, third}) == 1);
  CHECK(parsed->Match({vendor}) == 2);
  Frame changed = third;
  changed.function += kModuleChangedSuffix;
  CHECK(parsed->Match({changed}) == 1);

  CHECK(LeakSuppressions::Parse("leak:a\ninterceptor_via_fun:foo\n", "s.txt").status().message() ==
        "s.txt:2: 'interceptor_via_fun:foo' is not a suppression; the format is leak:PATTERN (LeakSanitizer's), "
        "# comments and blank lines");
  CHECK(LeakSuppressions::Parse("leak:\n", "s.txt").status().message() == "s.txt:1: leak: without a pattern");
  CHECK(LeakSuppressions::Parse("just text\n", "s.txt").status().message().find("s.txt:1:") == 0);
  CHECK(LeakSuppressions::Load("/nonexistent/supp.txt").status().message() ==
        "cannot read the suppressions file /nonexistent/supp.txt: No such file or directory");
}

Frame At(const char* function, const char* module) {
  Frame frame;
  frame.function = function;
  frame.module = module;
  frame.module_path = std::string("/lib/x86_64-linux-gnu/") + module;
  return frame;
}

TEST_CASE("the C runtime's own blocks") {
  Frame main_frame = At("main", "prog");
  // stdio buffers, wide or not, however the program reached them
  CHECK(IsCRuntimeBlock({At("_IO_file_doallocate", "libc.so.6"), At("_IO_doallocbuf", "libc.so.6"),
                         At("_IO_file_overflow", "libc.so.6"), At("puts", "libc.so.6"), main_frame}));
  CHECK(IsCRuntimeBlock({At("_IO_wfile_doallocate", "libc.so.6"), At("fputws", "libc.so.6"), main_frame}));
  // ...but only while the stack is still in libc: a program function of that name is the program's
  CHECK_FALSE(IsCRuntimeBlock({At("malloc_wrapper", "prog"), At("_IO_file_doallocate", "libc.so.6")}));
  // an fopen never fclosed is the program's leak
  CHECK_FALSE(IsCRuntimeBlock({At("__fopen_internal", "libc.so.6"), At("fopen", "libc.so.6"), main_frame}));
  // a thread's TLS, the loader's tables: freed by libc's freeres
  CHECK(IsCRuntimeBlock({At("calloc", "ld-linux-x86-64.so.2"), At("allocate_dtv", "ld-linux-x86-64.so.2"),
                         At("_dl_allocate_tls", "ld-linux-x86-64.so.2"), At("allocate_stack", "libc.so.6"),
                         At("pthread_create", "libc.so.6"), main_frame}));
  CHECK(IsCRuntimeBlock({At("malloc", "ld-linux-x86-64.so.2"),
                         At("_dlfo_mappings_segment_allocate", "ld-linux-x86-64.so.2"),
                         At("_dl_find_object_update", "ld-linux-x86-64.so.2"), At("dlopen", "libc.so.6"), main_frame}));
  // ...but what dlopen keeps of a library that stays loaded is still in use (valgrind counts it too)
  CHECK_FALSE(IsCRuntimeBlock({At("calloc", "ld-linux-x86-64.so.2"), At("_dl_new_object", "ld-linux-x86-64.so.2"),
                               At("dlopen", "libc.so.6"), main_frame}));
  // nothing but the runtime: loader, libstdc++'s start-up, libgcc
  CHECK(IsCRuntimeBlock(
      {At("??", "libstdc++.so.6"), At("call_init", "ld-linux-x86-64.so.2"), At("_dl_init", "ld-linux-x86-64.so.2")}));
  CHECK(IsCRuntimeBlock({At("??", "libgcc_s.so.1"), At("start_thread", "libc.so.6")}));
  CHECK_FALSE(IsCRuntimeBlock({At("strdup", "libc.so.6"), main_frame}));
  CHECK_FALSE(IsCRuntimeBlock({At("operator new(unsigned long)", "libstdc++.so.6"), At("f", "libapp.so")}));
  CHECK_FALSE(IsCRuntimeBlock({Symbolizer::Unknown(0x1234)}));  // code outside every module (a JIT)
  CHECK_FALSE(IsCRuntimeBlock({}));
}

TEST_CASE("with the probe's figures, a thread still running at exit keeps its TLS apart as the runtime's") {
  TraceReport report;
  report.has_trace = report.has_sites = report.exit_cleanup_probed = true;
  report.trace.kind = TraceKind::kExit;
  Site tls;  // the probe's cleanup frees no running thread's TLS
  tls.stack = {At("allocate_dtv", "ld-linux-x86-64.so.2"), At("_dl_allocate_tls", "ld-linux-x86-64.so.2"),
               At("allocate_stack", "libc.so.6"), At("pthread_create", "libc.so.6"), At("main", "prog")};
  tls.live_bytes = 816;
  tls.live_blocks = 3;
  Site leak;
  leak.stack = {At("main", "prog")};
  leak.live_bytes = 100;
  leak.live_blocks = 1;
  report.sites = {tls, leak};
  ClassifyLeaks(LeakSuppressions(), &report);
  CHECK(report.leaked_bytes == 100);
  CHECK(report.leaked_blocks == 1);
  REQUIRE(report.runtime_leaks.size() == 1);
  CHECK(report.runtime_leaks[0].bytes == 816);
  CHECK(report.runtime_leaks[0].count == 3);
}

TEST_CASE("suppressions applied to a report's stored leaks") {
  absl::StatusOr<TraceReport> traced = Parse(ValidTrace());
  REQUIRE(traced.ok());
  ClassifyLeaks(LeakSuppressions(), &*traced);
  Json json = RenderJson(*traced, 0);
  json[kRunReportVersionKey] = 2;
  absl::StatusOr<TraceReport> report = Parse(json);
  REQUIRE(report.ok());
  absl::StatusOr<LeakSuppressions> suppressions = LeakSuppressions::Parse("leak:prog+\nleak:^prog$\n", "s");
  REQUIRE(suppressions.ok());
  ClassifyLeaks(*suppressions, &*report);
  REQUIRE(report->leaks.size() == 1);  // the empty stack has no module to match
  CHECK(report->leaked_bytes == 50);
  CHECK(report->suppressed_bytes == 1300);
  REQUIRE(report->suppression_hits.size() == 1);
  CHECK(report->suppression_hits[0].pattern == "^prog$");
}

TEST_CASE("SafeText keeps UTF-8 and replaces what a terminal would obey") {
  CHECK(SafeText("plain") == "plain");
  CHECK(SafeText("caf\xc3\xa9 \xe2\x82\xac") == "caf\xc3\xa9 \xe2\x82\xac");
  CHECK(SafeText("a\x1b[2Jb") == "a?[2Jb");
  CHECK(SafeText("\xc2\x9b"
                 "31m") == "??31m");  // C1 CSI
  CHECK(SafeText("\xff\xfe") == "??");
  CHECK(SafeText("\xe2\x82") == "??");       // truncated sequence
  CHECK(SafeText("\xed\xa0\x80") == "???");  // surrogate
  CHECK(SafeText(std::string("a\0b", 3)) == "a?b");
}

}  // namespace
}  // namespace memtide
