// The trace file writer (tracer/trace_writer.h): the document has exactly the keys of tracer/trace_file.h,
// stacks become one call tree, figures are rounded, empty sites are left out, the text streams in chunks,
// and files are written the way the callers need.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "trace_writer.h"

#include <doctest/doctest.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <sstream>

#include "nlohmann/json.hpp"

#include "trace_file.h"

namespace memtide::internal {
namespace {

std::set<std::string> Keys(const nlohmann::json& object) {
  std::set<std::string> keys;
  for (auto it = object.begin(); it != object.end(); ++it) keys.insert(it.key());
  return keys;
}

// Frame storage for the example stacks (StacksFromArrays points into it).
const uintptr_t kBase = 0x7f0000000000;
const uintptr_t kStackOne[] = {kBase + 0x1234, 0xdeadbeef};
const int32_t kModulesOne[] = {0, -1};

TraceContents Example() {
  TraceContents contents;
  contents.exit = true;
  contents.pid = 4242;
  contents.command = {"./prog", "arg"};
  contents.time_s = 1.25;
  contents.sample_mode = true;
  contents.sample_mean_bytes = 524288;
  contents.totals = {1000.4, 10.6, 5000, 50, 40, 12345.5};
  contents.modules.push_back({"/usr/lib/x86_64-linux-gnu/libc.so.6", "abcd", kBase, kBase + 0x1000, kBase + 0x100000});
  contents.stacks = StacksFromArrays({{1, 2, kStackOne, kModulesOne}});
  SiteCounters site;
  site.site = 1;
  site.live_bytes = 1000.4;
  site.live_blocks = 10.2;
  site.peak_bytes = 800;
  site.peak_blocks = 8;
  site.allocated_bytes = 5000;
  site.allocations = 50;
  site.sizes[0] = 100;
  site.sizes[1] = 37;
  site.size_count = 2;
  contents.sites.push_back(site);
  SiteCounters empty;
  empty.site = 2;
  empty.live_bytes = 0.2;  // rounds to zero: left out
  contents.sites.push_back(empty);
  return contents;
}

nlohmann::json Document(const TraceContents& contents) { return nlohmann::json::parse(TraceText(contents)); }

// The stack of a version-2 site, innermost first, as [module, offset] pairs.
nlohmann::json StackOf(const nlohmann::json& trace, int64_t node) {
  nlohmann::json frames = nlohmann::json::array();
  for (; node >= 0; node = trace["nodes"][node][0].get<int64_t>()) {
    frames.push_back(trace["frames"][trace["nodes"][node][1].get<size_t>()]);
  }
  return frames;
}

TEST_CASE("the document has exactly trace_file.h's keys and parses back") {
  const nlohmann::json trace = Document(Example());
  CHECK(Keys(trace) == std::set<std::string>{kTraceFileVersionKey, "kind", "pid", "command", "time_s", "exit_code",
                                             "mode", "sample_mean_bytes", "byte_unit", "complete", "totals", "modules",
                                             "frames", "nodes", "site_fields", "sites"});
  CHECK(trace[kTraceFileVersionKey] == kTraceFileVersion);
  CHECK(trace["kind"] == "exit");
  CHECK(trace["pid"] == 4242);
  CHECK(trace["command"] == nlohmann::json({"./prog", "arg"}));
  CHECK(trace["time_s"] == 1.25);
  CHECK(trace["exit_code"].is_null());
  CHECK(trace["mode"] == "sample");
  CHECK(trace["sample_mean_bytes"] == 524288);
  CHECK(trace["byte_unit"] == "requested");
  CHECK(trace["complete"] == true);
  CHECK(Keys(trace["totals"]) ==
        std::set<std::string>{"live_bytes", "live_blocks", "peak_bytes", "allocations", "frees", "allocated_bytes"});
  CHECK(trace["totals"]["live_bytes"] == 1000);
  CHECK(trace["totals"]["live_blocks"] == 11);
  CHECK(trace["totals"]["allocated_bytes"] == 12346);
  REQUIRE(trace["modules"].size() == 1);
  CHECK(Keys(trace["modules"][0]) == std::set<std::string>{"path", "build_id", "base", "start", "end"});
  CHECK(trace["modules"][0]["base"] == kBase);
  // Outermost frame first in the tree: the unknown frame is the root, the libc one its child.
  CHECK(trace["frames"] == nlohmann::json::parse("[[-1, 3735928559], [0, 4660]]"));
  CHECK(trace["nodes"] == nlohmann::json::parse("[[-1, 0], [0, 1]]"));
  CHECK(trace["site_fields"] == nlohmann::json({"node", "live_bytes", "live_blocks", "peak_bytes", "peak_blocks",
                                                "allocated_bytes", "allocations", "sizes"}));
  REQUIRE(trace["sites"].size() == 1);
  CHECK(trace["sites"][0] == nlohmann::json::parse("[1, 1000, 10, 800, 8, 5000, 50, [100, 37]]"));
  CHECK(StackOf(trace, 1) == nlohmann::json::parse("[[0, 4660], [-1, 3735928559]]"));
}

TEST_CASE("stacks share their outer frames as call-tree nodes; a frame is written once") {
  // main -> run -> parse -> {0x40, 0x50}, and main -> run -> 0x30 (parse's own call site, as a leaf): three
  // stacks, five distinct frames, five nodes; the third stack's node is the first two's inner "parse" node.
  const uintptr_t main_frame = kBase + 0x10, run = kBase + 0x20, parse = kBase + 0x30;
  const uintptr_t first[] = {kBase + 0x40, parse, run, main_frame};
  const uintptr_t second[] = {kBase + 0x50, parse, run, main_frame};
  const uintptr_t third[] = {kBase + 0x30, run, main_frame};  // parse's address, as another stack's leaf
  const int32_t modules[] = {0, 0, 0, 0};
  TraceContents contents = Example();
  contents.stacks = StacksFromArrays({{1, 4, first, modules}, {2, 4, second, modules}, {3, 3, third, modules}});
  contents.sites.clear();
  for (uint32_t id = 1; id <= 3; ++id) {
    SiteCounters site;
    site.site = id;
    site.allocations = id;
    contents.sites.push_back(site);
  }
  const nlohmann::json trace = Document(contents);
  CHECK(trace["frames"].size() == 5);
  CHECK(trace["nodes"].size() == 5);
  REQUIRE(trace["sites"].size() == 3);
  const auto offsets = [&](int64_t node) {
    std::vector<uint64_t> result;
    for (const auto& frame : StackOf(trace, node)) result.push_back(frame[1].get<uint64_t>());
    return result;
  };
  CHECK(offsets(trace["sites"][0][0]) == std::vector<uint64_t>{0x40, 0x30, 0x20, 0x10});
  CHECK(offsets(trace["sites"][1][0]) == std::vector<uint64_t>{0x50, 0x30, 0x20, 0x10});
  CHECK(offsets(trace["sites"][2][0]) == std::vector<uint64_t>{0x30, 0x20, 0x10});
  for (size_t i = 0; i < trace["nodes"].size(); ++i) CHECK(trace["nodes"][i][0].get<int64_t>() < int64_t(i));
}

TEST_CASE("a site whose stack is not given is left out, and so are frames no written site uses") {
  TraceContents contents = Example();
  contents.sites[0].site = 7;  // no stack 7
  const nlohmann::json trace = Document(contents);
  CHECK(trace["sites"].empty());
  CHECK(trace["frames"].empty());
  CHECK(trace["nodes"].empty());
}

TEST_CASE("a stack of no frame is node -1") {
  TraceContents contents = Example();
  contents.stacks = StacksFromArrays({{1, 0, kStackOne, kModulesOne}});
  const nlohmann::json trace = Document(contents);
  REQUIRE(trace["sites"].size() == 1);
  CHECK(trace["sites"][0][0] == -1);
  CHECK(trace["nodes"].empty());
}

TEST_CASE("the text streams in chunks; the sink's first error stops it") {
  // Enough sites for several 1 MiB chunks.
  static uintptr_t frames[20000];
  static int32_t modules[20000];
  TraceContents contents = Example();
  std::vector<TraceStack> stacks;
  contents.sites.clear();
  for (uint32_t i = 0; i < 20000; ++i) {
    frames[i] = kBase + 0x100 + i;
    modules[i] = 0;
    stacks.push_back({i + 1, 1, &frames[i], &modules[i]});
    SiteCounters site;
    site.site = i + 1;
    site.allocated_bytes = 123456789;
    site.allocations = 1000000;
    site.sizes[0] = 4096;
    site.size_count = 1;
    contents.sites.push_back(site);
  }
  contents.stacks = StacksFromArrays(std::move(stacks));
  std::vector<size_t> chunks;
  std::string text;
  CHECK(WriteTrace(contents, [&](std::string_view chunk) {
          chunks.push_back(chunk.size());
          text.append(chunk);
          return 0;
        }) == 0);
  CHECK(chunks.size() >= 2);
  CHECK(text == TraceText(contents));
  CHECK(nlohmann::json::parse(text)["sites"].size() == 20000);
  int calls = 0;
  CHECK(WriteTrace(contents, [&](std::string_view) { return ++calls == 1 ? ENOSPC : 0; }) == ENOSPC);
  CHECK(calls == 1);
}

TEST_CASE("full mode writes sample_mean_bytes 0; snapshot kind; an exit code when known") {
  TraceContents contents = Example();
  contents.sample_mode = false;
  contents.exit = false;
  contents.has_exit_code = true;
  contents.exit_code = 3;
  contents.complete = false;
  const nlohmann::json trace = Document(contents);
  CHECK(trace["mode"] == "full");
  CHECK(trace["sample_mean_bytes"] == 0);
  CHECK(trace["kind"] == "snapshot");
  CHECK(trace["exit_code"] == 3);
  CHECK(trace["complete"] == false);
}

TEST_CASE("invalid UTF-8 in the command line is replaced, not thrown on") {
  TraceContents contents = Example();
  contents.command = {"./prog", std::string("\xff\xfe", 2)};
  std::string text;
  CHECK_NOTHROW(text = TraceText(contents));
  CHECK(nlohmann::json::parse(text)["command"].size() == 2);
}

TEST_CASE("%p expands to the pid") {
  CHECK(ExpandPid("/tmp/trace.%p.json", 77) == "/tmp/trace.77.json");
  CHECK(ExpandPid("%p%p", 1) == "11");
  CHECK(ExpandPid("plain%", 1) == "plain%");
}

TEST_CASE("the command line comes from /proc/self/cmdline") {
  const std::vector<std::string> command = ReadCommandLine();
  REQUIRE_FALSE(command.empty());
  CHECK(command[0].find("trace_writer_test") != std::string::npos);
}

TEST_CASE("files: replaced through a temporary, created exclusively, truncated") {
  char folder[] = "/tmp/memtide-writer-test.XXXXXX";
  REQUIRE(mkdtemp(folder) != nullptr);
  const std::string path = std::string(folder) + "/trace.json";
  CHECK(WriteFileReplacing(path, FixedText("first")) == 0);
  CHECK(WriteFileReplacing(path, FixedText("second")) == 0);
  std::ifstream in(path);
  std::stringstream read;
  read << in.rdbuf();
  CHECK(read.str() == "second");
  struct stat info;
  REQUIRE(stat(path.c_str(), &info) == 0);
  CHECK((info.st_mode & 0777) == 0644);

  const std::string snapshot = std::string(folder) + "/snapshot.json";
  CHECK(WriteFileDirect(snapshot, FixedText("one"), /*create_new=*/true) == 0);
  CHECK(WriteFileDirect(snapshot, FixedText("two"), /*create_new=*/true) == EEXIST);
  CHECK(WriteFileDirect(snapshot, FixedText("three"), /*create_new=*/false) == 0);
  REQUIRE(stat(snapshot.c_str(), &info) == 0);
  CHECK((info.st_mode & 0777) == 0600);
  CHECK(info.st_size == 5);
  // O_NOFOLLOW: a planted link is not followed.
  const std::string link = std::string(folder) + "/link.json";
  REQUIRE(symlink(path.c_str(), link.c_str()) == 0);
  CHECK(WriteFileDirect(link, FixedText("x"), /*create_new=*/false) == ELOOP);
  CHECK(WriteFileReplacing(std::string(folder) + "/missing/trace.json", FixedText("x")) == ENOENT);
  // A source that fails: the error comes back and no half-written file replaces the old one.
  CHECK(WriteFileReplacing(path, [](const ChunkSink& sink) { return sink("partial") == 0 ? ENOSPC : EIO; }) == ENOSPC);
  std::ifstream again(path);
  std::stringstream kept;
  kept << again.rdbuf();
  CHECK(kept.str() == "second");
  unlink(link.c_str());
  unlink(snapshot.c_str());
  unlink(path.c_str());
  rmdir(folder);
}

}  // namespace
}  // namespace memtide::internal
