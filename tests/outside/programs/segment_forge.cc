// Writes hand-made segment files for the outside view's tests: the fixed set behind the `memtide top --once`
// golden files (tests/outside/golden/), and files that lie in every way a reader must survive. Runs in the
// test driver, never under the preload.
//   segment_forge golden DIR         three processes (running as pid 1, killed, exited with 0) and a garbage file
//   segment_forge odd FILE PID       a valid segment of live PID whose seqlock is stuck odd (a writer mid-publish)
//   segment_forge valid FILE PID [warning]   a valid running segment of live PID with heap 11001 bytes
//                                            (alert level normal, or warning)
//   segment_forge old FILE PID       PID's segment marked running, last published an hour ago
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <string>

#include "memtide/segment.h"
#include "proc_stats.h"

using memtide::Segment;

namespace {

constexpr int64_t kMiB = 1 << 20;
// No pid can be this large (PID_MAX_LIMIT is 4194304), so these processes are always gone.
constexpr int32_t kGonePid = 4194305;

Segment Base(int32_t pid, uint64_t start_ticks, const char* command, size_t command_bytes) {
  Segment segment{};
  memcpy(segment.magic, MEMTIDE_SEGMENT_MAGIC, sizeof(segment.magic));
  segment.version = MEMTIDE_SEGMENT_VERSION;
  segment.header_bytes = offsetof(Segment, sequence);
  segment.total_bytes = sizeof(Segment);
  segment.pid = pid;
  segment.uid = getuid();
  segment.start_time_ticks = start_ticks;
  memcpy(segment.command, command, command_bytes);
  segment.command_bytes = static_cast<uint32_t>(command_bytes);
  segment.sequence = 42;
  segment.state = memtide::kSegmentStateRunning;
  segment.exit_code = -1;
  segment.counters.elapsed_ns = 3600LL * 1000000000;
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  segment.counters.updated_unix_ns = now.tv_sec * 1000000000LL + now.tv_nsec;
  segment.start_unix_ns = segment.counters.updated_unix_ns - segment.counters.elapsed_ns;
  return segment;
}

bool Write(const std::string& path, const Segment& segment) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return false;
  bool ok = write(fd, &segment, sizeof(segment)) == static_cast<ssize_t>(sizeof(segment));
  return close(fd) == 0 && ok;
}

std::string NameOf(const std::string& directory, const Segment& segment) {
  return directory + "/memtide." + std::to_string(segment.pid) + "." + std::to_string(segment.start_time_ticks);
}

bool Golden(const std::string& directory) {
  // pid 1 always runs; with its own start time the reader takes the segment for a live process.
  const char serve[] = "/usr/bin/python3\0serve.py\0--model\0petr";
  Segment running = Base(1, memtide::ReadStartTimeTicks(1), serve, sizeof(serve));
  auto& c = running.counters;
  c.heap_current_bytes = 120 * kMiB;
  c.heap_peak_bytes = 512 * kMiB;
  c.heap_allocations = 1234567;
  c.heap_frees = 1200000;
  c.mmap_current_bytes = 16 * kMiB;
  c.mmap_peak_bytes = 64 * kMiB;
  c.rss_bytes = 700 * kMiB;
  c.rss_peak_bytes = 900 * kMiB;
  c.cgroup_version = memtide::kCgroupV1;
  c.cgroup_usage_bytes = 900 * kMiB;
  c.cgroup_limit_bytes = 1024 * kMiB;
  running.policy.pressure_used_bytes = 850 * kMiB;
  running.policy.pressure_limit_bytes = 1024 * kMiB;
  running.policy.alert_level = memtide::kAlertWarning;
  running.policy.trims = 3;

  // Killed mid-run (state still running, pid gone), with two GPUs.
  const char trainer[] =
      "trainer\0--epochs\0"
      "3";
  Segment killed = Base(kGonePid, 777, trainer, sizeof(trainer) - 1);
  killed.counters.heap_current_bytes = 300 * kMiB;
  killed.counters.heap_peak_bytes = 310 * kMiB;
  killed.counters.rss_bytes = 2048 * kMiB;
  killed.policy.alert_level = memtide::kAlertDanger;
  killed.gpu_device_count = 2;
  for (int i = 0; i < 2; ++i) {
    memtide::SegmentGpuDevice& gpu = killed.gpu[i];
    gpu.ordinal = i;
    for (int k = 0; k < 16; ++k) gpu.uuid[k] = static_cast<uint8_t>(0x10 * i + k);
    gpu.device_current_bytes = (i + 1) * 1024 * kMiB;
    gpu.device_peak_bytes = (i + 2) * 1024 * kMiB;
  }

  // Exited with 0, segment kept.
  const char compiler[] = "cc1plus\0-O2\0big.cc";
  Segment exited = Base(kGonePid + 1, 888, compiler, sizeof(compiler));
  exited.state = memtide::kSegmentStateExited;
  exited.exit_code = 0;
  exited.counters.heap_current_bytes = 4 * 1024;
  exited.counters.heap_peak_bytes = 96 * kMiB;
  exited.counters.rss_bytes = 110 * kMiB;

  Segment garbage = running;
  garbage.magic[0] = 'X';
  garbage.pid = kGonePid + 2;
  return Write(NameOf(directory, running), running) && Write(NameOf(directory, killed), killed) &&
         Write(NameOf(directory, exited), exited) && Write(NameOf(directory, garbage), garbage);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && strcmp(argv[1], "golden") == 0) return Golden(argv[2]) ? 0 : 1;
  if (argc == 4 || argc == 5) {
    int32_t pid = atoi(argv[3]);
    const char command[] = "forged\0segment";
    Segment segment = Base(pid, memtide::ReadStartTimeTicks(pid), command, sizeof(command));
    segment.counters.heap_current_bytes = 11001;
    if (argc == 5) segment.policy.alert_level = strcmp(argv[4], "warning") == 0 ? memtide::kAlertWarning : 99;
    if (strcmp(argv[1], "odd") == 0) {
      segment.sequence = 43;
    } else if (strcmp(argv[1], "old") == 0) {
      segment.counters.updated_unix_ns -= 3600LL * 1000000000;
    } else if (strcmp(argv[1], "valid") != 0) {
      return 2;
    }
    return Write(argv[2], segment) ? 0 : 1;
  }
  fprintf(stderr, "usage: segment_forge golden DIR | segment_forge odd|valid|old FILE PID [warning]\n");
  return 2;
}
