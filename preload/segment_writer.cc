// Writer side of the stats segment. See segment_writer.h and include/memtide/segment.h.
// Runs on the monitor thread, in memtide_mark and at exit, always under the guard (its own mmap and
// file calls go uncounted) and under the publish lock.
#include "segment_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>

#include "gpu_accounting.h"
#include "heap_counters.h"
#include "lifecycle.h"
#include "log.h"
#include "memtide/segment.h"
#include "mmap_accounting.h"
#include "private_descriptors.h"

namespace memtide::internal {
namespace {

pthread_mutex_t g_publish_mutex = PTHREAD_MUTEX_INITIALIZER;

// Written under g_publish_mutex; read lock-free by SharedControl() (the monitor's wake word) and SegmentExists().
std::atomic<Segment*> g_shared_atomic{nullptr};

// All below guarded by g_publish_mutex.
Segment* g_shared = nullptr;
SegmentMemoryPolicy g_policy{};
pid_t g_owner_pid = 0;
bool g_create_failed = false;
char g_path[640];
SegmentMark g_marks[MEMTIDE_SEGMENT_MARKS];
uint64_t g_marks_total = 0;
ProcessMemory g_process{};
CgroupMemory g_cgroup{};
uint32_t g_disabled_features = 0;
bool g_heap_hooks_bypassed = false;  // a property of the process image: kept across fork
uint64_t g_publishes = 0;

int64_t RealtimeNs() {
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  return now.tv_sec * 1000000000LL + now.tv_nsec;
}

template <typename... Args>
void FormatInto(char* buffer, size_t size, fmt::format_string<Args...> format, Args&&... args) {
  auto result = fmt::format_to_n(buffer, size - 1, format, std::forward<Args>(args)...);
  *result.out = '\0';
}

int OpenExclusive(const char* path) {
  return open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
}

// Creates the segment's temporary file, sizes it and maps it; the descriptor is closed before returning.
struct SegmentFileCreation {
  const char* path;
  const char* failed_step;  // null on success
  void* mapping;
  int error;
  bool created;  // the temporary file exists (to unlink on a later failure)
};

void CreateAndMapSegmentFile(void* argument) {
  SegmentFileCreation* creation = static_cast<SegmentFileCreation*>(argument);
  int fd = OpenExclusive(creation->path);
  if (fd < 0 && errno == EEXIST) {
    // Left by an earlier image of this very process (pid and start time match) that exec'd mid-creation.
    unlink(creation->path);
    fd = OpenExclusive(creation->path);
  }
  if (fd < 0) {
    creation->failed_step = "create";
  } else if (ftruncate(fd, sizeof(Segment)) != 0) {
    creation->failed_step = "size";
  } else {
    creation->mapping = mmap(nullptr, sizeof(Segment), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (creation->mapping == MAP_FAILED) creation->failed_step = "map";
  }
  creation->error = errno;
  creation->created = fd >= 0;
  if (fd >= 0) close(fd);
}

void FillIdentity(Segment* segment, pid_t pid, uint64_t start_ticks) {
  memcpy(segment->magic, MEMTIDE_SEGMENT_MAGIC, sizeof(segment->magic));
  segment->version = MEMTIDE_SEGMENT_VERSION;
  segment->header_bytes = offsetof(Segment, sequence);
  segment->total_bytes = sizeof(Segment);
  segment->pid = pid;
  segment->uid = getuid();
  segment->start_time_ticks = start_ticks;
  segment->start_unix_ns = RealtimeNs() - ElapsedNs();
  ssize_t length = ReadSmallFile("/proc/self/cmdline", segment->command, sizeof(segment->command));
  segment->command_bytes = length > 0 ? static_cast<uint32_t>(length) : 0;
  segment->exit_code = -1;
}

}  // namespace

void LockPublishing() { pthread_mutex_lock(&g_publish_mutex); }

bool TryLockPublishingFor(int64_t milliseconds) {
  for (int64_t waited = 0; waited <= milliseconds; ++waited) {
    if (pthread_mutex_trylock(&g_publish_mutex) == 0) return true;
    timespec pause{0, 1000000};
    nanosleep(&pause, nullptr);
  }
  return false;
}

void UnlockPublishing() { pthread_mutex_unlock(&g_publish_mutex); }

void ResetPublishingInChild() { pthread_mutex_init(&g_publish_mutex, nullptr); }

void SetSampledStats(const ProcessMemory* process, const CgroupMemory* cgroup) {
  if (process != nullptr) {
    g_process = *process;
  } else {
    g_disabled_features |= kFeatureProcStats;
  }
  if (cgroup != nullptr) {
    g_cgroup = *cgroup;
  } else {
    g_disabled_features |= kFeatureCgroup;
  }
}

void NoteHeapHooksBypassed() { g_heap_hooks_bypassed = true; }

bool SegmentExists() { return g_shared_atomic.load(std::memory_order_acquire) != nullptr; }

bool CreateSegment(const char* directory) {
  if (g_shared != nullptr) return true;
  if (g_create_failed) return false;
  pid_t pid = getpid();
  uint64_t start_ticks = ReadStartTimeTicks(0);
  char temporary[640];
  FormatInto(g_path, sizeof(g_path), "{}/" MEMTIDE_SEGMENT_PREFIX "{}.{}", directory, pid, start_ticks);
  FormatInto(temporary, sizeof(temporary), "{}/." MEMTIDE_SEGMENT_PREFIX "{}.{}.tmp", directory, pid, start_ticks);

  // On memtide's descriptor thread when there is one: the program never sees the file's descriptor.
  SegmentFileCreation creation{temporary, nullptr, MAP_FAILED, 0, false};
  if (!RunWithPrivateDescriptors(CreateAndMapSegmentFile, &creation)) CreateAndMapSegmentFile(&creation);
  const char* failed_step = creation.failed_step;
  void* mapping = creation.mapping;
  int saved_errno = creation.error;
  if (failed_step == nullptr) {
    FillIdentity(static_cast<Segment*>(mapping), pid, start_ticks);
    // The final name appears only once the identity is complete; it replaces the segment an earlier image
    // of this process (same pid and start time, before exec) left behind.
    if (rename(temporary, g_path) != 0) {
      saved_errno = errno;
      failed_step = "rename";
    }
  }
  if (failed_step != nullptr) {
    if (mapping != MAP_FAILED) munmap(mapping, sizeof(Segment));
    if (creation.created) unlink(temporary);
    g_create_failed = true;
    Log("cannot {} the stats segment in MEMTIDE_DIR='{}' ({}); counting goes on without it", failed_step, directory,
        strerror(saved_errno));
    return false;
  }
  g_shared = static_cast<Segment*>(mapping);
  g_shared_atomic.store(g_shared, std::memory_order_release);
  g_owner_pid = pid;
  LogVerbose("segment {}", g_path);
  return true;
}

void PublishSegment(uint32_t state, int32_t exit_code) {
  if (g_shared == nullptr) return;
  HeapTotals heap = ReadHeapTotals();
  MmapTotals mapped = ReadMmapTotals();
  SegmentCounters counters{};
  counters.heap_current_bytes = heap.current_bytes;
  counters.heap_peak_bytes = heap.peak_bytes;
  counters.heap_allocations = heap.allocations;
  counters.heap_frees = heap.frees;
  counters.heap_allocated_bytes_total = heap.allocated_bytes_total;
  counters.mmap_current_bytes = mapped.current_bytes;
  counters.mmap_peak_bytes = mapped.peak_bytes;
  counters.rss_bytes = g_process.rss_bytes;
  counters.rss_peak_bytes = g_process.rss_peak_bytes;
  counters.cgroup_usage_bytes = g_cgroup.usage_bytes;
  counters.cgroup_limit_bytes = g_cgroup.limit_bytes;
  counters.cgroup_version = g_cgroup.version;
  counters.elapsed_ns = ElapsedNs();
  counters.updated_unix_ns = RealtimeNs();
  counters.publishes = ++g_publishes;
  counters.marks_total = g_marks_total;
  counters.disabled_features = g_disabled_features | (mapped.table_full ? kFeatureMmapTable : 0) |
                               (g_heap_hooks_bypassed ? kFeatureHeapHooks : 0);
  SegmentGpuDevice gpu[MEMTIDE_SEGMENT_GPU_DEVICES] = {};
  uint32_t gpu_count = GpuFillSegment(gpu, MEMTIDE_SEGMENT_GPU_DEVICES);

  // Seqlock write: odd while writing. Readers copy and retry; see segment.h.
  uint64_t sequence = __atomic_load_n(&g_shared->sequence, __ATOMIC_RELAXED);
  __atomic_store_n(&g_shared->sequence, sequence + 1, __ATOMIC_RELAXED);
  __atomic_thread_fence(__ATOMIC_RELEASE);
  g_shared->state = state;
  g_shared->exit_code = exit_code;
  memcpy(&g_shared->counters, &counters, sizeof(counters));
  memcpy(g_shared->marks, g_marks, sizeof(g_marks));
  memcpy(&g_shared->policy, &g_policy, sizeof(g_policy));
  g_shared->gpu_device_count = gpu_count;
  memcpy(g_shared->gpu, gpu, sizeof(gpu));
  __atomic_store_n(&g_shared->sequence, sequence + 2, __ATOMIC_RELEASE);
}

void RecordMark(const char* label) {
  HeapTotals heap = ReadHeapTotals();
  SegmentMark& mark = g_marks[g_marks_total % MEMTIDE_SEGMENT_MARKS];
  memset(&mark, 0, sizeof(mark));
  if (label != nullptr) strncpy(mark.label, label, sizeof(mark.label) - 1);
  mark.time_ns = ElapsedNs();
  mark.heap_current_bytes = heap.current_bytes;
  mark.heap_peak_bytes = heap.peak_bytes;
  ++g_marks_total;
}

void RemoveSegmentFile() {
  if (g_shared == nullptr || g_owner_pid != getpid()) return;
  if (unlink(g_path) == 0) LogVerbose("removed segment {}", g_path);
}

SegmentMemoryPolicy& PolicyState() { return g_policy; }

SegmentControl* SharedControl() {
  Segment* segment = g_shared_atomic.load(std::memory_order_acquire);
  return segment != nullptr ? &segment->control : nullptr;
}

void RemoveSegmentOfEarlierImage(const char* directory) {
  static std::atomic<bool> done{false};
  if (done.exchange(true) || g_shared != nullptr) return;
  char path[640];
  FormatInto(path, sizeof(path), "{}/" MEMTIDE_SEGMENT_PREFIX "{}.{}", directory, getpid(), ReadStartTimeTicks(0));
  if (unlink(path) == 0) LogVerbose("removed {}, left by this process before it exec'd", path);
}

void ForgetSegmentInChild() {
  if (g_shared != nullptr) syscall(SYS_munmap, g_shared, sizeof(Segment));
  g_shared = nullptr;
  g_shared_atomic.store(nullptr, std::memory_order_relaxed);
  SegmentMemoryPolicy fresh{};
  fresh.trim_threshold_bytes = g_policy.trim_threshold_bytes;
  fresh.threshold_source = g_policy.threshold_source;
  fresh.allocator_free_bytes = -1;
  g_policy = fresh;
  g_owner_pid = 0;
  g_create_failed = false;
  memset(g_marks, 0, sizeof(g_marks));
  g_marks_total = 0;
  g_publishes = 0;
  g_disabled_features = 0;
}

}  // namespace memtide::internal
