// Tests of the outside view's modules without a traced process (viewer/: flag values, printable text, the
// process table, the Prometheus format, cgroup and /proc readers on fake trees, the control client against a
// fake responder thread, directory scans with garbage). Each TEST_CASE is one ctest (outside.unit.*).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "cgroup_report.h"
#include "control_client.h"
#include "export_command.h"
#include "flag_values.h"
#include "fmt/format.h"
#include "gpu_probe.h"
#include "monitor_command.h"
#include "printable.h"
#include "proc_stats.h"
#include "process_table.h"
#include "prometheus_format.h"
#include "segment_scan.h"
#include "system_memory.h"

namespace memtide {
namespace {

constexpr int64_t kMiB = 1 << 20;

class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/memtide-outside-XXXXXX";
    REQUIRE(mkdtemp(pattern) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void WriteText(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << text;
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

Segment MakeSegment(pid_t pid, uint64_t start_ticks) {
  Segment segment{};
  memcpy(segment.magic, MEMTIDE_SEGMENT_MAGIC, sizeof(segment.magic));
  segment.version = MEMTIDE_SEGMENT_VERSION;
  segment.header_bytes = offsetof(Segment, sequence);
  segment.total_bytes = sizeof(Segment);
  segment.pid = pid;
  segment.uid = getuid();
  segment.start_time_ticks = start_ticks;
  const char command[] =
      "/opt/bin/server\0--port\0"
      "8080";
  memcpy(segment.command, command, sizeof(command));
  segment.command_bytes = sizeof(command);
  segment.state = kSegmentStateRunning;
  segment.sequence = 2;
  return segment;
}

// A segment of this very process: alive, so the reader calls it running.
Segment OwnSegment() { return MakeSegment(getpid(), ReadStartTimeTicks(0)); }

std::string WriteSegment(const std::string& path, const Segment& segment, mode_t mode = 0600) {
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, mode);
  REQUIRE(fd >= 0);
  REQUIRE(write(fd, &segment, sizeof(segment)) == static_cast<ssize_t>(sizeof(segment)));
  fchmod(fd, mode);
  close(fd);
  return path;
}

SegmentSnapshot Snapshot(const Segment& segment, ProcessState state = ProcessState::kRunning) {
  SegmentSnapshot snapshot;
  snapshot.path = "/dev/shm/memtide.x";
  snapshot.segment = segment;
  snapshot.state = state;
  return snapshot;
}

pid_t DeadPid() {
  pid_t child = fork();
  if (child == 0) _exit(0);
  waitpid(child, nullptr, 0);
  return child;
}

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// ---------------------------------------------------------------------------------------------------------
TEST_CASE("flag values: intervals are seconds when bare, bounded, and errors quote the input") {
  CHECK(*ParseIntervalMs("60") == 60000);
  CHECK(*ParseIntervalMs("0.5") == 500);
  CHECK(*ParseIntervalMs("250ms") == 250);
  CHECK(*ParseIntervalMs("2m") == 120000);
  CHECK_FALSE(ParseIntervalMs("5ms").ok());  // below 10 ms
  CHECK_FALSE(ParseIntervalMs("").ok());
  CHECK_FALSE(ParseIntervalMs("-1").ok());
  CHECK_FALSE(ParseIntervalMs("1e9").ok());
  CHECK_FALSE(ParseIntervalMs("999999999999999999999").ok());
  CHECK_FALSE(ParseIntervalMs(std::string("1\0s", 3)).ok());
  absl::StatusOr<int64_t> bad = ParseIntervalMs("soon\x1b[2J");
  REQUIRE_FALSE(bad.ok());
  CHECK(Contains(std::string(bad.status().message()), "'soon?[2J'"));
  CHECK(*ParseTimeoutMs("1ms") == 1);
  CHECK_FALSE(ParseTimeoutMs("2h").ok());
}

TEST_CASE("flag values: sort keys and listen addresses") {
  CHECK(*ParseSortKey("gpu") == SortKey::kGpu);
  CHECK_FALSE(ParseSortKey("RSS").ok());
  absl::StatusOr<ListenAddress> address = ParseListenAddress("127.0.0.1:9464");
  REQUIRE(address.ok());
  CHECK(address->host == "127.0.0.1");
  CHECK(address->port == 9464);
  address = ParseListenAddress("[::1]:0");
  REQUIRE(address.ok());
  CHECK(address->host == "::1");
  CHECK(address->port == 0);
  CHECK(ParseListenAddress("localhost:80").ok());
  for (const char* bad : {"", ":9464", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1", "::1:80",
                          "[::1]80", "[::1", "host name:80", "127.0.0.1:12x", "127.0.0.1:000009464"}) {
    CAPTURE(bad);
    CHECK_FALSE(ParseListenAddress(bad).ok());
  }
}

TEST_CASE("printable: controls and invalid UTF-8 become '?', valid UTF-8 stays, truncation by code point") {
  CHECK(Printable("plain text") == "plain text");
  CHECK(Printable("\x1b]0;owned\x07") == "?]0;owned?");
  CHECK(Printable("caf\xc3\xa9 \xe6\xa8\xa1\xe5\x9e\x8b") == "caf\xc3\xa9 \xe6\xa8\xa1\xe5\x9e\x8b");
  CHECK(Printable("\xc2\x9b"
                  "31m") == "?31m");  // C1 CSI
  CHECK(Printable("\xff\xfe") == "??");
  CHECK(Printable("\xc0\xaf") == "??");       // overlong '/'
  CHECK(Printable("\xed\xa0\x80") == "???");  // surrogate
  CHECK(Printable("\xe6\xa8") == "??");       // cut short
  CHECK(Printable(std::string("a\0b", 3)) == "a?b");
  CHECK(Truncate("abcdef", 4) == "abc~");
  CHECK(Truncate("abcd", 4) == "abcd");
  CHECK(Truncate("\xe6\xa8\xa1\xe5\x9e\x8b\xe6\xa8\xa1", 2) == "\xe6\xa8\xa1~");
  CHECK(Truncate("abc", 0) == "");
}

TEST_CASE("process table: rows, GPU sums, cgroup share from the working set, sorting") {
  Segment a = OwnSegment();
  a.counters.heap_current_bytes = 10 * kMiB;
  a.counters.heap_peak_bytes = 90 * kMiB;
  a.counters.rss_bytes = 50 * kMiB;
  a.counters.cgroup_version = kCgroupV2;
  a.counters.cgroup_usage_bytes = 600 * kMiB;
  a.counters.cgroup_limit_bytes = 1024 * kMiB;
  a.policy.pressure_used_bytes = 512 * kMiB;
  a.policy.pressure_limit_bytes = 1024 * kMiB;
  a.policy.alert_level = kAlertSevere;
  Segment b = MakeSegment(7, 1);
  b.counters.heap_current_bytes = 20 * kMiB;
  b.counters.heap_peak_bytes = 30 * kMiB;
  b.counters.rss_bytes = 40 * kMiB;
  b.gpu_device_count = 3;
  b.gpu[0].ordinal = 0;
  b.gpu[0].device_current_bytes = 5 * kMiB;
  b.gpu[0].device_peak_bytes = 6 * kMiB;
  b.gpu[1].ordinal = -1;  // unused slot
  b.gpu[1].device_current_bytes = 999 * kMiB;
  b.gpu[2].ordinal = 1;
  b.gpu[2].device_current_bytes = 7 * kMiB;
  b.gpu[2].device_peak_bytes = 8 * kMiB;
  Segment c = MakeSegment(3, 1);
  c.gpu_device_count = 1000;  // lies: bounded to the array
  std::vector<ProcessRow> rows = MakeProcessRows({Snapshot(a), Snapshot(b, ProcessState::kKilled), Snapshot(c)});
  CHECK(rows[0].command == "/opt/bin/server --port 8080");
  CHECK(CgroupPercentText(rows[0]) == "50.0%");
  CHECK(CgroupPercentText(rows[1]) == "-");
  CHECK(rows[1].has_gpu);
  CHECK(rows[1].gpu_current_bytes == 12 * kMiB);
  CHECK(rows[1].gpu_peak_bytes == 14 * kMiB);
  CHECK(rows[1].json["gpu"]["devices"].size() == 2);
  CHECK(rows[0].json["alert"] == "severe");
  CHECK(rows[1].json["state"] == "killed");

  SortProcessRows(SortKey::kRss, &rows);
  CHECK(rows[0].rss_bytes == 50 * kMiB);
  SortProcessRows(SortKey::kHeap, &rows);
  CHECK(rows[0].pid == 7);
  SortProcessRows(SortKey::kPeak, &rows);
  CHECK(rows[0].pid == getpid());
  SortProcessRows(SortKey::kGpu, &rows);
  CHECK(rows[0].pid == 7);
  SortProcessRows(SortKey::kPid, &rows);
  CHECK(rows[0].pid == 3);

  std::string table = ProcessTableText(rows, 0);
  CHECK(Contains(table, "GPU PEAK"));
  CHECK(Contains(table, "14.0 MiB"));
  std::string narrow = ProcessTableText(rows, 40);
  std::istringstream lines(narrow);
  for (std::string line; std::getline(lines, line);) CHECK(line.size() <= 40);
  CHECK(GpuUuidText(b.gpu[0].uuid) == "GPU-00000000-0000-0000-0000-000000000000");
}

TEST_CASE("prometheus: families once each with HELP/TYPE, escaped labels, newest segment per pid") {
  Segment a = OwnSegment();
  const char command[] = "/usr/bin/we\"ird\\name\n\0arg";
  memcpy(a.command, command, sizeof(command));
  a.command_bytes = sizeof(command);
  a.counters.heap_current_bytes = 11001;
  a.policy.alert_level = kAlertWarning;
  a.gpu_device_count = 1;
  a.gpu[0].ordinal = 2;
  a.gpu[0].device_current_bytes = 4096;
  Segment old = MakeSegment(a.pid, a.start_time_ticks - 1);
  old.counters.heap_current_bytes = 1;
  Segment other = MakeSegment(99, 5);
  other.counters.heap_current_bytes = 12001;
  std::string text = PrometheusText({Snapshot(old, ProcessState::kKilled), Snapshot(a), Snapshot(other)}, 3);
  std::string labels = fmt::format("pid=\"{}\",command=\"we\\\"ird\\\\name?\"", a.pid);
  CHECK(Contains(text, "memtide_heap_current_bytes{" + labels + "} 11001\n"));
  CHECK(Contains(text, "memtide_heap_current_bytes{pid=\"99\",command=\"server\"} 12001\n"));
  CHECK_FALSE(
      Contains(text, "} 1\nmemtide_heap_current_bytes{pid=\"99\""));  // the old segment of the pid is not exported
  CHECK(Contains(text, "memtide_gpu_current_bytes{" + labels + ",device=\"2\"} 4096\n"));
  CHECK(Contains(text, "memtide_alert_level{" + labels + "} 1\n"));
  CHECK(Contains(text, "memtide_exporter_refused_files 3\n"));
  CHECK(Contains(text, "memtide_exporter_segments 2\n"));
  // Each family's samples are contiguous and announced once.
  std::istringstream lines(text);
  std::set<std::string> finished;
  std::string current;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("# TYPE ", 0) == 0) {
      std::string name = line.substr(7, line.find(' ', 7) - 7);
      CHECK(finished.count(name) == 0);
      if (!current.empty()) finished.insert(current);
      current = name;
    } else if (line[0] != '#') {
      CHECK(line.rfind(current, 0) == 0);
      CHECK(std::count(line.begin(), line.end(), '\n') == 0);
    }
  }
}

TEST_CASE("cgroup report: mountinfo, a v1 tree with memsw and OOM kills, a v2 tree with the limit above") {
  TempDir root;
  std::string mountinfo =
      "25 30 0:22 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n"
      "31 25 0:27 / " +
      root.File("memory") +
      " rw,relatime - cgroup cgroup rw,memory\n"
      "32 25 0:28 / " +
      root.File("cpu") +
      " rw - cgroup cgroup rw,cpu,cpuacct\n"
      "33 25 0:29 / " +
      root.File("uni\\040fied") + " rw - cgroup2 cgroup2 rw\n";
  CgroupMounts mounts = ParseCgroupMounts(mountinfo);
  CHECK(mounts.v1_memory.mount_point == root.File("memory"));
  CHECK(mounts.v2.mount_point == root.File("uni fied"));

  std::string v1 = root.File("memory/box");
  WriteText(v1 + "/memory.usage_in_bytes", "300000000\n");
  WriteText(v1 + "/memory.limit_in_bytes", "9223372036854771712\n");
  WriteText(v1 + "/memory.stat",
            "cache 5\ntotal_inactive_file 100000000\nhierarchical_memory_limit 536870912\n"
            "hierarchical_memsw_limit 9223372036854771712\n");
  WriteText(v1 + "/memory.max_usage_in_bytes", "400000000\n");
  WriteText(v1 + "/memory.failcnt", "17\n");
  WriteText(v1 + "/memory.memsw.limit_in_bytes", "1073741824\n");
  WriteText(v1 + "/memory.memsw.usage_in_bytes", "300001000\n");
  WriteText(v1 + "/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
  std::string v2 = root.File("uni fied/parent/box");
  WriteText(root.File("uni fied/parent/memory.max"), "268435456\n");
  WriteText(v2 + "/memory.max", "max\n");
  WriteText(v2 + "/memory.current", "200000000\n");
  WriteText(v2 + "/memory.peak", "250000000\n");
  WriteText(v2 + "/memory.high", "max\n");
  WriteText(v2 + "/memory.swap.current", "0\n");
  WriteText(v2 + "/memory.swap.max", "max\n");
  WriteText(v2 + "/memory.stat", "anon 1\ninactive_file 50000000\n");
  WriteText(v2 + "/memory.events", "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\noom_group_kill 0\n");

  std::vector<CgroupDetail> details = ReadCgroupDetails(mounts, "4:memory:/box\n1:cpu,cpuacct:/\n0::/parent/box\n");
  REQUIRE(details.size() == 2);
  const CgroupDetail& one = details[0];
  CHECK(one.version == 1);
  CHECK(one.directory == v1);
  CHECK(one.usage_bytes == 300000000);
  CHECK(one.limit_bytes == 536870912);  // a parent's, through hierarchical_memory_limit
  CHECK(one.working_set_bytes == 200000000);
  CHECK(one.peak_bytes == 400000000);
  CHECK(one.limit_hits == 17);
  CHECK(one.swap_limit_bytes == 1073741824);
  CHECK(one.oom_kills == 2);
  const CgroupDetail& two = details[1];
  CHECK(two.version == 2);
  CHECK(two.limit_bytes == 268435456);  // the parent's memory.max
  CHECK(two.working_set_bytes == 150000000);
  CHECK(two.peak_bytes == 250000000);
  CHECK(two.swap_limit_bytes == 0);
  CHECK(two.limit_hits == 4);
  CHECK(two.oom_events == 1);
  CHECK(two.oom_kills == 1);
  nlohmann::json json = CgroupDetailJson(two);
  CHECK(json["limit_bytes"] == 268435456);
  CHECK(json["oom_kills"] == 1);

  // A container with its own cgroup namespace: the path is "/" and the mount point holds the files; a v2
  // mount without the memory controller says so.
  WriteText(root.File("memory/memory.usage_in_bytes"), "1000\n");
  details = ReadCgroupDetails(mounts, "4:memory:/\n0::/elsewhere\n");
  REQUIRE(details.size() == 2);
  CHECK(details[0].usage_bytes == 1000);
  CHECK(details[0].limit_bytes == 0);
  CHECK_FALSE(details[1].has_memory);
  CHECK(ReadCgroupDetails(ParseCgroupMounts("garbage\n\n - - -\n"), "junk").empty());
}

TEST_CASE("system memory: meminfo parsing and the top processes of a fake /proc") {
  Meminfo info = ParseMeminfo(
      "MemTotal:       16000000 kB\nMemFree:  100 kB\nMemAvailable: 8000000 kB\n"
      "Cached: 5 kB\nSwapTotal: 0 kB\nBogus\nSwapFree:\n");
  CHECK(info.total_bytes == 16000000LL * 1024);
  CHECK(info.available_bytes == 8000000LL * 1024);
  CHECK(info.swap_total_bytes == 0);
  CHECK(info.swap_free_bytes == -1);
  CHECK(info.buffers_bytes == -1);
  CHECK(ParseMeminfo("MemTotal: 99999999999999999999 kB\n").total_bytes == -1);

  TempDir proc;
  WriteText(proc.File("10/status"), "Name:\tsmall\nVmRSS:\t    100 kB\n");
  WriteText(proc.File("10/cmdline"), std::string("small\0--x\0", 10));
  WriteText(proc.File("11/status"), "Name:\tbig\nVmRSS:\t   9000 kB\n");
  WriteText(proc.File("11/cmdline"), std::string("big\x1b[31m\0", 9));
  WriteText(proc.File("12/status"), "Name:\tkthreadd\n");
  WriteText(proc.File("13/status"), "Name:\tzombie\nVmRSS:\t 500 kB\n");
  WriteText(proc.File("self/status"), "VmRSS: 1 kB\n");
  std::vector<ProcessResident> top = TopProcessesByRss(2, proc.path());
  REQUIRE(top.size() == 2);
  CHECK(top[0].pid == 11);
  CHECK(top[0].command == "big?[31m");
  CHECK(top[1].pid == 13);
  CHECK(top[1].command == "[zombie]");
}

TEST_CASE("CPU quota: quota over period rounded up, none for -1 or a bad period") {
  CHECK(CpusFromQuota(100000, 100000) == 1);
  CHECK(CpusFromQuota(150000, 100000) == 2);  // docker run --cpus=1.5
  CHECK(CpusFromQuota(50000, 100000) == 1);
  CHECK(CpusFromQuota(400000, 100000) == 4);
  CHECK(CpusFromQuota(-1, 100000) == 0);  // v1: no quota
  CHECK(CpusFromQuota(100000, 0) == 0);
  CHECK(CpusFromQuota(0, 100000) == 0);
}

TEST_CASE("nvidia-smi CSV: names with commas, bad lines skipped") {
  std::vector<GpuDevice> devices = ParseNvidiaSmiCsv(
      "0, NVIDIA H100 80GB HBM3, 1234, 81559\n1, Odd, Name, Inc, 0, 1\nNo devices were found\n"
      "x, y, 1, 2\n2, big, 99999999999999999, 1\n");
  REQUIRE(devices.size() == 2);
  CHECK(devices[0].name == "NVIDIA H100 80GB HBM3");
  CHECK(devices[0].used_bytes == 1234LL << 20);
  CHECK(devices[0].total_bytes == 81559LL << 20);
  CHECK(devices[1].index == 1);
  CHECK(devices[1].name == "Odd, Name, Inc");
}

TEST_CASE("monitor CSV: fields quoted, quotes doubled, one line per row") {
  CHECK(CsvField("a \"b\"\nc") == "\"a \"\"b\"\" c\"");
  CHECK(MonitorCsvHeader().find("time_unix_s,time,pid,command,state,") == 0);
}

TEST_CASE("textfile: written atomically, no temporary left behind") {
  TempDir dir;
  std::string path = dir.File("memtide.prom");
  REQUIRE(WriteFileAtomically(path, "a 1\n").ok());
  REQUIRE(WriteFileAtomically(path, "a 2\n").ok());
  CHECK(ReadText(path) == "a 2\n");
  CHECK(std::distance(std::filesystem::directory_iterator(dir.path()), std::filesystem::directory_iterator()) == 1);
  CHECK_FALSE(WriteFileAtomically(dir.File("missing/x.prom"), "a").ok());
}

TEST_CASE("scan: garbage, a stuck seqlock and a symlink are refused by name; the good segment is read") {
  TempDir dir;
  Segment good = OwnSegment();
  good.counters.heap_current_bytes = 11001;
  WriteSegment(dir.File("memtide.1.1"), good);
  Segment stuck = OwnSegment();
  stuck.sequence = 7;  // odd forever: a live writer that never finishes
  WriteSegment(dir.File("memtide.2.2"), stuck);
  WriteText(dir.File("memtide.3.3"), "garbage");
  REQUIRE(symlink(dir.File("memtide.1.1").c_str(), dir.File("memtide.4.4").c_str()) == 0);
  REQUIRE(mkfifo(dir.File("memtide.5.5").c_str(), 0600) == 0);
  REQUIRE(mkdir(dir.File("memtide.6.6").c_str(), 0700) == 0);
  {
    int fd = open(dir.File("memtide.7.7").c_str(), O_WRONLY | O_CREAT, 0600);
    REQUIRE(ftruncate(fd, int64_t{1} << 40) == 0);  // sparse, a terabyte
    close(fd);
  }
  WriteText(dir.File("not-a-segment"), "ignored");
  SegmentScan scan = ScanSegments({dir.path(), dir.File("missing")});
  REQUIRE(scan.segments.size() == 1);
  CHECK(scan.segments[0].segment.counters.heap_current_bytes == 11001);
  REQUIRE(scan.problems.size() == 7);
  std::string all;
  for (const std::string& problem : scan.problems) all += problem + "\n";
  CHECK(Contains(all, dir.File("memtide.2.2") + ": kept changing"));
  CHECK(Contains(all, dir.File("memtide.3.3") + ": has 7 bytes"));
  CHECK(Contains(all, dir.File("memtide.4.4") + ": is a symbolic link"));
  CHECK(Contains(all, dir.File("memtide.5.5") + ": is not a regular file"));
  CHECK(Contains(all, dir.File("memtide.6.6") + ": is not a regular file"));
  CHECK(Contains(all, dir.File("memtide.7.7") + ": has 1099511627776 bytes"));
  CHECK(Contains(all, dir.File("missing") + ": cannot open"));
}

// ---------------------------------------------------------------------------------------------------------
// The control client against a fake monitor thread.

struct MappedSegment {
  Segment* segment = nullptr;
  explicit MappedSegment(const std::string& path) {
    int fd = open(path.c_str(), O_RDWR);
    REQUIRE(fd >= 0);
    void* address = mmap(nullptr, sizeof(Segment), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    REQUIRE(address != MAP_FAILED);
    segment = static_cast<Segment*>(address);
  }
  ~MappedSegment() { munmap(segment, sizeof(Segment)); }
};

// Answers requests like the preload's monitor thread: waits on the futex word, answers trim with fixed
// values, anything else with EINVAL.
class FakeResponder {
 public:
  explicit FakeResponder(const std::string& path)
      : mapped_(path), answered_(__atomic_load_n(&mapped_.segment->control.request_sequence, __ATOMIC_ACQUIRE)) {
    thread_ = std::thread([this] { Run(); });
  }
  ~FakeResponder() {
    stop_ = true;
    SegmentControl* control = &mapped_.segment->control;
    __atomic_add_fetch(&control->wake, 1, __ATOMIC_SEQ_CST);
    syscall(SYS_futex, &control->wake, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
    thread_.join();
  }
  int woken = 0;
  std::string last_argument;

 private:
  void Run() {
    SegmentControl* control = &mapped_.segment->control;
    uint64_t answered = answered_;
    while (!stop_) {
      uint32_t seen = __atomic_load_n(&control->wake, __ATOMIC_ACQUIRE);
      uint64_t sequence = __atomic_load_n(&control->request_sequence, __ATOMIC_ACQUIRE);
      if (sequence != answered) {
        last_argument = control->request_argument;
        if (control->request_kind == kControlTrim) {
          control->response_values[0] = 100 * kMiB;
          control->response_values[1] = 60 * kMiB;
          control->response_values[2] = 40 * kMiB;
          control->response_values[3] = 1500000;
          strcpy(control->response_message, "trimmed \x1b[2J");
          control->response_status = 0;
        } else {
          strcpy(control->response_message, "unknown request kind");
          control->response_status = EINVAL;
        }
        __atomic_store_n(&control->response_sequence, sequence, __ATOMIC_RELEASE);
        answered = sequence;
        continue;
      }
      // Long timeout: only a FUTEX_WAKE from the client (or the destructor) gets the request answered soon.
      timespec timeout{5, 0};
      if (syscall(SYS_futex, &control->wake, FUTEX_WAIT, seen, &timeout, nullptr, 0) == 0) ++woken;
    }
  }
  MappedSegment mapped_;
  uint64_t answered_;  // requests already in the mailbox before the responder started are not answered
  std::thread thread_;
  std::atomic<bool> stop_{false};
};

TEST_CASE("control client: a request is woken, answered and read back; the lock is released") {
  TempDir dir;
  std::string path = WriteSegment(dir.File("memtide.1.1"), OwnSegment());
  FakeResponder responder(path);
  usleep(20000);  // let it sleep on the futex
  auto started = std::chrono::steady_clock::now();
  absl::StatusOr<ControlResponse> response = SendControlRequest(path, kControlTrim, "", 5000);
  REQUIRE_MESSAGE(response.ok(), response.status());
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(2));  // woken, not timed out
  CHECK(response->status == 0);
  CHECK(response->values[0] == 100 * kMiB);
  CHECK(response->values[1] == 60 * kMiB);
  CHECK(response->message == "trimmed ?[2J");
  CHECK(response->pid == getpid());
  MappedSegment mapped(path);
  CHECK(mapped.segment->control.request_lock == 0);
  CHECK(mapped.segment->control.request_sequence == 1);
  // A second request gets its own answer.
  response = SendControlRequest(path, kControlSnapshot, "arg", 5000);
  REQUIRE(response.ok());
  CHECK(response->status == EINVAL);
  CHECK(mapped.segment->control.request_sequence == 2);
  CHECK(mapped.segment->control.request_lock == 0);
}

TEST_CASE("control client: no answer ends at the timeout with a clear message; the lock is released") {
  TempDir dir;
  std::string path = WriteSegment(dir.File("memtide.1.1"), OwnSegment());
  auto started = std::chrono::steady_clock::now();
  absl::StatusOr<ControlResponse> response = SendControlRequest(path, kControlTrim, "", 200);
  auto waited = std::chrono::steady_clock::now() - started;
  REQUIRE_FALSE(response.ok());
  CHECK(absl::IsDeadlineExceeded(response.status()));
  std::string message(response.status().message());
  CHECK(Contains(message, fmt::format("pid {}", getpid())));
  CHECK(Contains(message, "did not answer the trim request within 200 ms"));
  CHECK(waited >= std::chrono::milliseconds(200));
  CHECK(waited < std::chrono::seconds(2));
  MappedSegment mapped(path);
  CHECK(mapped.segment->control.request_lock == 0);
}

TEST_CASE("control client: a live holder of the mailbox is waited for; a dead one's lock is broken") {
  TempDir dir;
  std::string path = WriteSegment(dir.File("memtide.1.1"), OwnSegment());
  MappedSegment mapped(path);
  mapped.segment->control.request_lock = 1;  // pid 1 is alive and never lets go
  absl::StatusOr<ControlResponse> response = SendControlRequest(path, kControlTrim, "", 100);
  REQUIRE_FALSE(response.ok());
  CHECK(Contains(std::string(response.status().message()), "is held by pid 1"));
  CHECK(mapped.segment->control.request_lock == 1);

  mapped.segment->control.request_lock = DeadPid();
  FakeResponder responder(path);
  response = SendControlRequest(path, kControlTrim, "", 5000);
  REQUIRE_MESSAGE(response.ok(), response.status());
  CHECK(response->values[2] == 40 * kMiB);
  CHECK(mapped.segment->control.request_lock == 0);
}

TEST_CASE("control client: refuses processes that ended, bad arguments, and garbage") {
  TempDir dir;
  Segment killed = MakeSegment(DeadPid(), 5);
  absl::StatusOr<ControlResponse> response =
      SendControlRequest(WriteSegment(dir.File("memtide.1.1"), killed), kControlTrim, "", 100);
  REQUIRE_FALSE(response.ok());
  CHECK(Contains(std::string(response.status().message()), "is not running (killed)"));
  Segment exited = OwnSegment();
  exited.state = kSegmentStateExited;
  response = SendControlRequest(WriteSegment(dir.File("memtide.2.2"), exited), kControlTrim, "", 100);
  REQUIRE_FALSE(response.ok());
  CHECK(Contains(std::string(response.status().message()), "is not running (exited)"));
  std::string path = WriteSegment(dir.File("memtide.3.3"), OwnSegment());
  CHECK_FALSE(SendControlRequest(path, kControlTrim, std::string(600, 'a'), 100).ok());
  CHECK_FALSE(SendControlRequest(path, kControlTrim, "bell\a", 100).ok());
  WriteText(dir.File("memtide.4.4"), "garbage");
  CHECK_FALSE(SendControlRequest(dir.File("memtide.4.4"), kControlTrim, "", 100).ok());
}

TEST_CASE("control client: only the owner (or root) sends requests, whatever the file mode says") {
  if (geteuid() != 0) {
    MESSAGE("SKIPPED: needs root to create files owned by another user");
    return;
  }
  TempDir dir;
  chmod(dir.path().c_str(), 0755);
  // Root's segment, writable by everyone: a non-root user is still refused.
  std::string roots = WriteSegment(dir.File("memtide.1.1"), OwnSegment(), 0666);
  // nobody's segment: root may send (and the fake responder answers).
  std::string nobodys = WriteSegment(dir.File("memtide.2.2"), OwnSegment(), 0600);
  REQUIRE(chown(nobodys.c_str(), 65534, 65534) == 0);
  {
    FakeResponder responder(nobodys);
    CHECK(SendControlRequest(nobodys, kControlTrim, "", 5000).ok());
  }
  pid_t child = fork();
  if (child == 0) {
    if (setgroups(0, nullptr) != 0 || setgid(65534) != 0 || setuid(65534) != 0) _exit(10);
    absl::StatusOr<ControlResponse> response = SendControlRequest(roots, kControlTrim, "", 100);
    if (response.ok()) _exit(11);
    // Refused by the reader (owned by uid 0) before anything is written.
    if (!Contains(std::string(response.status().message()), "owned by uid 0")) _exit(12);
    _exit(0);
  }
  int status = 0;
  waitpid(child, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  MappedSegment mapped(roots);
  CHECK(mapped.segment->control.request_sequence == 0);
}

}  // namespace
}  // namespace memtide
