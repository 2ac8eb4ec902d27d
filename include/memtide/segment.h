// The shared-memory stats segment: the one format between a traced process (writer, its monitor thread)
// and every reader outside it (`memtide show`, `memtide top`, `memtide run`). Plain data only, fixed-width
// fields, no pointers. A reader maps a file that anyone could have written: it must check magic, version,
// size and owner before trusting anything, and must bound every index and length it reads.
//
// File: $MEMTIDE_DIR/memtide.<pid>.<start-time>, mode 0600, created O_EXCL|O_NOFOLLOW by the traced process.
// Consistency: `Segment::sequence` is a seqlock. The writer makes it odd, writes, makes it even (release);
// a reader copies the whole body between two equal even reads (acquire) and retries a bounded number of times.
#ifndef MEMTIDE_SEGMENT_H_
#define MEMTIDE_SEGMENT_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
namespace memtide {
#endif

#define MEMTIDE_SEGMENT_MAGIC "MEMTIDE\0SEGMENT"  // 16 bytes with the terminating NUL
#define MEMTIDE_SEGMENT_VERSION 2u
#define MEMTIDE_SEGMENT_PREFIX "memtide."
#define MEMTIDE_SEGMENT_COMMAND_BYTES 1024
#define MEMTIDE_SEGMENT_MARK_LABEL_BYTES 48
#define MEMTIDE_SEGMENT_MARKS 64
#define MEMTIDE_SEGMENT_GPU_DEVICES 16
#define MEMTIDE_SEGMENT_CONTROL_ARGUMENT_BYTES 512
#define MEMTIDE_SEGMENT_CONTROL_MESSAGE_BYTES 256

// Segment::state
enum {
  kSegmentStateStarting = 0,  // created, first publish not done yet
  kSegmentStateRunning = 1,   // published by a live process (if its pid is gone, it was killed)
  kSegmentStateExited = 2,    // final state written at exit (exit, return from main, _exit)
};

// Segment::disabled_features bits: a feature that failed turned itself off (DESIGN.md decision 9).
enum {
  kFeatureProcStats = 1u << 0,  // /proc/self/status could not be read
  kFeatureCgroup = 1u << 1,     // cgroup files could not be read
  kFeatureMmapTable = 1u << 2,  // the anonymous-mapping table is full: mmap counts are a lower bound
  kFeatureHeapHooks = 1u << 3,  // the program's malloc is not memtide's (its executable, or a library preloaded
                                // before libmemtide.so, defines malloc): heap counts and leaks miss that heap
};

// SegmentMemoryPolicy::allocator: the allocator the process really uses, detected at run time.
enum { kAllocatorUnknown = 0, kAllocatorGlibc = 1, kAllocatorMimalloc = 2, kAllocatorJemalloc = 3, kAllocatorTcmalloc = 4 };

// SegmentMemoryPolicy::alert_level (the seed's thresholds, configurable).
enum { kAlertNormal = 0, kAlertWarning = 1, kAlertSevere = 2, kAlertDanger = 3 };

// SegmentControl::request_kind
enum { kControlNone = 0, kControlTrim = 1, kControlResetPeak = 2, kControlSnapshot = 3 };

// Segment::cgroup_version
enum { kCgroupNone = 0, kCgroupV1 = 1, kCgroupV2 = 2 };

struct SegmentMark {
  char label[MEMTIDE_SEGMENT_MARK_LABEL_BYTES];  // NUL-terminated unless full; readers bound it
  int64_t time_ns;                               // since the process started (monotonic)
  int64_t heap_current_bytes;
  int64_t heap_peak_bytes;
};

struct SegmentCounters {
  // Heap, in the next allocator's usable bytes (malloc_usable_size), DESIGN.md decision 2.
  int64_t heap_current_bytes;
  int64_t heap_peak_bytes;
  int64_t heap_allocations;
  int64_t heap_frees;
  int64_t heap_allocated_bytes_total;
  // Accessible anonymous mappings made through mmap/mremap by the program (not the allocator's own, which are
  // heap; not PROT_NONE reservations).
  int64_t mmap_current_bytes;
  int64_t mmap_peak_bytes;
  // Sampled by the monitor thread.
  int64_t rss_bytes;       // VmRSS
  int64_t rss_peak_bytes;  // VmHWM
  int64_t cgroup_usage_bytes;
  int64_t cgroup_limit_bytes;  // 0: no limit found
  uint32_t cgroup_version;
  uint32_t reserved0;
  int64_t elapsed_ns;     // monotonic time since the process started, at this publish
  int64_t updated_unix_ns;  // wall clock at this publish
  uint64_t publishes;
  uint64_t marks_total;  // marks ever made; the last MEMTIDE_SEGMENT_MARKS are in `marks`
  uint32_t disabled_features;
  uint32_t reserved1;
};

// Trim policy and alerts (written by the monitor thread, under the seqlock).
struct SegmentMemoryPolicy {
  uint32_t allocator;
  uint32_t alert_level;
  uint64_t alert_entries[4];         // times each level was entered
  uint64_t trims;                    // trims done (policy, API and control requests)
  int64_t trim_released_bytes;       // RSS before minus RSS after, summed
  int64_t trim_ns;                   // time spent trimming
  uint32_t last_trim_reason;         // policy reason code of the last trim (tracer/trim_policy.h)
  uint32_t threshold_source;         // kThresholdDefault / kThresholdMemtide / kThresholdGlibc
  int64_t allocator_free_bytes;      // retained by the allocator but free, where it can tell; -1 unknown
  int64_t last_trim_rss_before_bytes;
  int64_t last_trim_rss_after_bytes;
  int64_t trim_threshold_bytes;      // the policy's threshold in force
  int64_t pressure_used_bytes;       // what alerts compare: cgroup working set, or host used memory
  int64_t pressure_limit_bytes;      // against this: the cgroup limit, or host memory; 0 unknown
};

// SegmentMemoryPolicy::threshold_source: where the trim threshold came from.
enum { kThresholdDefault = 0, kThresholdMemtide = 1, kThresholdGlibc = 2 };

// One GPU as this process sees it (written by the monitor thread, under the seqlock). Buckets are bytes the
// process allocated through the driver and has not freed; `device_*` includes arrays and VMM physical memory.
struct SegmentGpuDevice {
  uint8_t uuid[16];
  int32_t ordinal;  // the process's device index; -1: slot unused
  uint32_t reserved0;
  int64_t device_current_bytes;
  int64_t device_peak_bytes;
  int64_t managed_current_bytes;
  int64_t managed_peak_bytes;
  int64_t pinned_host_current_bytes;
  int64_t pinned_host_peak_bytes;
  int64_t host_registered_bytes;
  int64_t imported_bytes;
  int64_t array_bytes;
  int64_t pool_reserved_bytes;  // sampled: stream-ordered pools' reserved memory
  int64_t device_used_bytes;    // sampled: whole device, all processes (cuMemGetInfo)
  int64_t device_total_bytes;
  uint64_t allocations;
  uint64_t frees;
  uint64_t unknown_frees;       // frees of pointers memtide never saw allocated: counted, never subtracted
};

// Requests from outside (memtide trim/reset-peak/snapshot) to the process's monitor thread. Not under the
// seqlock: a requester takes `request_lock` (CAS 0 -> its pid), writes kind and argument, increments
// `request_sequence`, bumps `wake` and FUTEX_WAKEs it; the monitor answers and sets `response_sequence`.
// Only the owner (or root) can open the 0600 file for writing, which is the permission check.
struct SegmentControl {
  uint32_t wake;          // futex word the monitor thread sleeps on (shared mapping)
  int32_t request_lock;   // 0 free, else the requester's pid
  uint64_t request_sequence;
  uint32_t request_kind;
  uint32_t reserved0;
  char request_argument[MEMTIDE_SEGMENT_CONTROL_ARGUMENT_BYTES];
  uint64_t response_sequence;
  int32_t response_status;  // 0 ok, else an errno value
  uint32_t reserved1;
  int64_t response_values[4];  // trim: rss before, rss after, released bytes, duration ns
  char response_message[MEMTIDE_SEGMENT_CONTROL_MESSAGE_BYTES];
};

struct Segment {
  // Identity: written once at creation, before the file is visible under its final name.
  char magic[16];
  uint32_t version;
  uint32_t header_bytes;  // offsetof(Segment, sequence)
  uint64_t total_bytes;   // sizeof(Segment); a reader refuses a file of another size
  int32_t pid;
  uint32_t uid;
  uint64_t start_time_ticks;  // /proc/<pid>/stat field 22, also in the file name
  int64_t start_unix_ns;
  uint32_t command_bytes;  // used bytes of `command`: arguments separated by NUL
  uint32_t reserved0;
  char command[MEMTIDE_SEGMENT_COMMAND_BYTES];

  // Everything below is published under the seqlock.
  uint64_t sequence;
  uint32_t state;
  int32_t exit_code;  // valid when state == kSegmentStateExited and known (exit/_exit), else -1
  SegmentCounters counters;
  SegmentMark marks[MEMTIDE_SEGMENT_MARKS];  // ring: mark i lives at i % MEMTIDE_SEGMENT_MARKS
  SegmentMemoryPolicy policy;
  uint32_t gpu_device_count;  // used entries of `gpu`
  uint32_t reserved1;
  SegmentGpuDevice gpu[MEMTIDE_SEGMENT_GPU_DEVICES];

  // Outside the seqlock.
  SegmentControl control;
};

#ifdef __cplusplus
static_assert(sizeof(SegmentMark) == 72, "segment layout changed: bump MEMTIDE_SEGMENT_VERSION");
static_assert(sizeof(SegmentCounters) == 136, "segment layout changed: bump MEMTIDE_SEGMENT_VERSION");
static_assert(sizeof(SegmentMemoryPolicy) == 120, "segment layout changed: bump MEMTIDE_SEGMENT_VERSION");
static_assert(sizeof(SegmentGpuDevice) == 144, "segment layout changed: bump MEMTIDE_SEGMENT_VERSION");
static_assert(sizeof(SegmentControl) == 840, "segment layout changed: bump MEMTIDE_SEGMENT_VERSION");
static_assert(offsetof(Segment, sequence) == 1088, "segment layout changed: bump MEMTIDE_SEGMENT_VERSION");
static_assert(offsetof(Segment, control) == 8280, "segment layout changed: bump MEMTIDE_SEGMENT_VERSION");
static_assert(sizeof(Segment) == 9120, "segment layout changed: bump MEMTIDE_SEGMENT_VERSION");
static_assert(sizeof(MEMTIDE_SEGMENT_MAGIC) == 16, "magic is 16 bytes");
}  // namespace memtide
#endif

#endif  // MEMTIDE_SEGMENT_H_
