// The trace file writer (tracer/trace_writer.h): the document has exactly the keys of tracer/trace_file.h,
// figures are rounded, empty sites are left out, and files are written the way the callers need.
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

#include "trace_file.h"

namespace memtide::internal {
namespace {

std::set<std::string> Keys(const nlohmann::json& object) {
  std::set<std::string> keys;
  for (auto it = object.begin(); it != object.end(); ++it) keys.insert(it.key());
  return keys;
}

TraceContents Example() {
  TraceContents contents;
  contents.exit = true;
  contents.pid = 4242;
  contents.command = {"./prog", "arg"};
  contents.time_s = 1.25;
  contents.sample_mode = true;
  contents.sample_mean_bytes = 524288;
  contents.totals = {1000.4, 10.6, 5000, 50, 40, 12345.5};
  contents.modules.push_back(
      {"/usr/lib/x86_64-linux-gnu/libc.so.6", "abcd", 0x7f0000000000, 0x7f0000001000, 0x7f0000100000});
  contents.stacks.push_back({1, {{0, 0x1234}, {-1, 0xdeadbeef}}});
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

TEST_CASE("the document has exactly trace_file.h's keys and parses back") {
  const std::string text = SerializeTrace(BuildTraceJson(Example()));
  const nlohmann::json trace = nlohmann::json::parse(text);
  CHECK(Keys(trace) == std::set<std::string>{kTraceFileVersionKey, "kind", "pid", "command", "time_s", "exit_code",
                                             "mode", "sample_mean_bytes", "byte_unit", "complete", "totals", "modules",
                                             "stacks", "sites"});
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
  CHECK(trace["modules"][0]["base"] == 0x7f0000000000);
  REQUIRE(trace["stacks"].size() == 1);
  CHECK(Keys(trace["stacks"][0]) == std::set<std::string>{"id", "frames"});
  CHECK(trace["stacks"][0]["frames"] == nlohmann::json::parse("[[0, 4660], [-1, 3735928559]]"));
  REQUIRE(trace["sites"].size() == 1);
  const nlohmann::json& site = trace["sites"][0];
  CHECK(Keys(site) == std::set<std::string>{"stack", "live_bytes", "live_blocks", "peak_bytes", "peak_blocks",
                                            "allocated_bytes", "allocations", "sizes"});
  CHECK(site["stack"] == 1);
  CHECK(site["live_bytes"] == 1000);
  CHECK(site["live_blocks"] == 10);
  CHECK(site["sizes"] == nlohmann::json({100, 37}));
}

TEST_CASE("full mode writes sample_mean_bytes 0; snapshot kind; an exit code when known") {
  TraceContents contents = Example();
  contents.sample_mode = false;
  contents.exit = false;
  contents.has_exit_code = true;
  contents.exit_code = 3;
  contents.complete = false;
  const nlohmann::json trace = BuildTraceJson(contents);
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
  CHECK_NOTHROW(text = SerializeTrace(BuildTraceJson(contents)));
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
  CHECK(WriteFileReplacing(path, "first") == 0);
  CHECK(WriteFileReplacing(path, "second") == 0);
  std::ifstream in(path);
  std::stringstream read;
  read << in.rdbuf();
  CHECK(read.str() == "second");
  struct stat info;
  REQUIRE(stat(path.c_str(), &info) == 0);
  CHECK((info.st_mode & 0777) == 0644);

  const std::string snapshot = std::string(folder) + "/snapshot.json";
  CHECK(WriteFileDirect(snapshot, "one", /*create_new=*/true) == 0);
  CHECK(WriteFileDirect(snapshot, "two", /*create_new=*/true) == EEXIST);
  CHECK(WriteFileDirect(snapshot, "three", /*create_new=*/false) == 0);
  REQUIRE(stat(snapshot.c_str(), &info) == 0);
  CHECK((info.st_mode & 0777) == 0600);
  CHECK(info.st_size == 5);
  // O_NOFOLLOW: a planted link is not followed.
  const std::string link = std::string(folder) + "/link.json";
  REQUIRE(symlink(path.c_str(), link.c_str()) == 0);
  CHECK(WriteFileDirect(link, "x", /*create_new=*/false) == ELOOP);
  CHECK(WriteFileReplacing(std::string(folder) + "/missing/trace.json", "x") == ENOENT);
  unlink(link.c_str());
  unlink(snapshot.c_str());
  unlink(path.c_str());
  rmdir(folder);
}

}  // namespace
}  // namespace memtide::internal
