// Unit tests for viewer/segment_reader.cc: a valid segment, and every way a file in the directory can lie.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "proc_stats.h"
#include "segment_reader.h"

using memtide::ProcessState;
using memtide::ReadSegmentFile;
using memtide::Segment;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char templ[] = "/tmp/memtide-reader-XXXXXX";
    path = mkdtemp(templ);
  }
  ~TempDir() { (void)!system(("rm -rf " + path).c_str()); }
};

Segment ValidSegment(pid_t pid, uint64_t start) {
  Segment segment{};
  memcpy(segment.magic, MEMTIDE_SEGMENT_MAGIC, sizeof(segment.magic));
  segment.version = MEMTIDE_SEGMENT_VERSION;
  segment.header_bytes = offsetof(Segment, sequence);
  segment.total_bytes = sizeof(Segment);
  segment.pid = pid;
  segment.uid = getuid();
  segment.start_time_ticks = start;
  const char command[] = "prog\0--flag\0value";
  memcpy(segment.command, command, sizeof(command));
  segment.command_bytes = sizeof(command);
  segment.state = memtide::kSegmentStateRunning;
  segment.sequence = 4;
  segment.counters.heap_current_bytes = 11001;
  return segment;
}

std::string Write(const std::string& path, const void* data, size_t size) {
  std::ofstream out(path, std::ios::binary);
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}

pid_t DeadPid() {
  pid_t child = fork();
  if (child == 0) _exit(0);
  waitpid(child, nullptr, 0);
  return child;
}

}  // namespace

TEST_CASE("a valid segment of a live process reads as running, command split at NULs") {
  TempDir dir;
  Segment segment = ValidSegment(getpid(), memtide::ReadStartTimeTicks(0));
  std::string path = Write(dir.path + "/memtide.1.1", &segment, sizeof(segment));
  auto snapshot = ReadSegmentFile(path);
  REQUIRE(snapshot.ok());
  CHECK(snapshot->state == ProcessState::kRunning);
  CHECK(snapshot->segment.counters.heap_current_bytes == 11001);
  CHECK(memtide::CommandArguments(snapshot->segment) == std::vector<std::string>{"prog", "--flag", "value"});
}

TEST_CASE("running state with a dead pid is a killed process; exited state stays exited") {
  TempDir dir;
  Segment segment = ValidSegment(DeadPid(), 12345);
  auto snapshot = ReadSegmentFile(Write(dir.path + "/memtide.2.1", &segment, sizeof(segment)));
  REQUIRE(snapshot.ok());
  CHECK(snapshot->state == ProcessState::kKilled);
  segment.state = memtide::kSegmentStateExited;
  snapshot = ReadSegmentFile(Write(dir.path + "/memtide.2.2", &segment, sizeof(segment)));
  REQUIRE(snapshot.ok());
  CHECK(snapshot->state == ProcessState::kExited);
}

TEST_CASE("pid reuse: a live pid with another start time is not the same process") {
  TempDir dir;
  Segment segment = ValidSegment(getpid(), memtide::ReadStartTimeTicks(0) + 1);
  auto snapshot = ReadSegmentFile(Write(dir.path + "/memtide.3.1", &segment, sizeof(segment)));
  REQUIRE(snapshot.ok());
  CHECK(snapshot->state == ProcessState::kKilled);
}

TEST_CASE("garbage is refused with a reason naming the file") {
  TempDir dir;
  Segment segment = ValidSegment(getpid(), 1);
  SUBCASE("wrong magic") {
    segment.magic[0] = 'X';
    auto result = ReadSegmentFile(Write(dir.path + "/memtide.4.1", &segment, sizeof(segment)));
    REQUIRE_FALSE(result.ok());
    CHECK(std::string(result.status().message()).find("magic") != std::string::npos);
    CHECK(std::string(result.status().message()).find(dir.path) != std::string::npos);
  }
  SUBCASE("another version") {
    segment.version = 99;
    auto result = ReadSegmentFile(Write(dir.path + "/memtide.4.2", &segment, sizeof(segment)));
    REQUIRE_FALSE(result.ok());
    CHECK(std::string(result.status().message()).find("version 99") != std::string::npos);
  }
  SUBCASE("truncated") {
    auto result = ReadSegmentFile(Write(dir.path + "/memtide.4.3", &segment, 100));
    REQUIRE_FALSE(result.ok());
    CHECK(std::string(result.status().message()).find("truncated") != std::string::npos);
  }
  SUBCASE("empty") {
    auto result = ReadSegmentFile(Write(dir.path + "/memtide.4.4", &segment, 0));
    REQUIRE_FALSE(result.ok());
  }
  SUBCASE("symbolic link") {
    std::string target = Write(dir.path + "/real", &segment, sizeof(segment));
    REQUIRE(symlink(target.c_str(), (dir.path + "/memtide.4.5").c_str()) == 0);
    auto result = ReadSegmentFile(dir.path + "/memtide.4.5");
    REQUIRE_FALSE(result.ok());
    CHECK(std::string(result.status().message()).find("symbolic link") != std::string::npos);
  }
  SUBCASE("a directory") {
    REQUIRE(mkdir((dir.path + "/memtide.4.6").c_str(), 0700) == 0);
    CHECK_FALSE(ReadSegmentFile(dir.path + "/memtide.4.6").ok());
  }
  SUBCASE("header sizes that disagree") {
    segment.header_bytes = 7;
    CHECK_FALSE(ReadSegmentFile(Write(dir.path + "/memtide.4.7", &segment, sizeof(segment))).ok());
  }
}

TEST_CASE("lengths are bounded: command_bytes too large, labels without NUL") {
  TempDir dir;
  Segment segment = ValidSegment(getpid(), memtide::ReadStartTimeTicks(0));
  segment.command_bytes = 0xFFFFFFFF;
  memset(segment.command, 'a', sizeof(segment.command));
  memset(segment.marks[0].label, 'b', sizeof(segment.marks[0].label));
  segment.counters.marks_total = 1000000;
  auto snapshot = ReadSegmentFile(Write(dir.path + "/memtide.5.1", &segment, sizeof(segment)));
  REQUIRE(snapshot.ok());
  auto arguments = memtide::CommandArguments(snapshot->segment);
  REQUIRE(arguments.size() == 1);
  CHECK(arguments[0].size() == sizeof(segment.command));
  CHECK(strlen(snapshot->segment.marks[0].label) == sizeof(segment.marks[0].label) - 1);
}

TEST_CASE("a seqlock that never settles: an error for a live writer, a torn copy for a dead one") {
  TempDir dir;
  Segment segment = ValidSegment(getpid(), memtide::ReadStartTimeTicks(0));
  segment.sequence = 5;
  auto result = ReadSegmentFile(Write(dir.path + "/memtide.6.1", &segment, sizeof(segment)));
  REQUIRE_FALSE(result.ok());
  CHECK(std::string(result.status().message()).find("kept changing") != std::string::npos);
  segment.pid = DeadPid();
  auto snapshot = ReadSegmentFile(Write(dir.path + "/memtide.6.2", &segment, sizeof(segment)));
  REQUIRE(snapshot.ok());
  CHECK(snapshot->torn);
  CHECK(snapshot->state == ProcessState::kKilled);
}

TEST_CASE("finding a pid's segment picks the newest start time and ignores other names") {
  TempDir dir;
  Segment segment = ValidSegment(getpid(), 1);
  Write(dir.path + "/memtide.77.100", &segment, sizeof(segment));
  Write(dir.path + "/memtide.77.250", &segment, sizeof(segment));
  Write(dir.path + "/memtide.77.x", &segment, sizeof(segment));
  Write(dir.path + "/.memtide.77.300.tmp", &segment, sizeof(segment));
  Write(dir.path + "/unrelated", &segment, sizeof(segment));
  auto path = memtide::FindSegmentOfPid(dir.path, 77);
  REQUIRE(path.ok());
  CHECK(*path == dir.path + "/memtide.77.250");
  CHECK_FALSE(memtide::FindSegmentOfPid(dir.path, 78).ok());
  CHECK(memtide::ListSegmentFiles(dir.path).size() == 2);
}
