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
#define MEMTIDE_SEGMENT_VERSION 1u
#define MEMTIDE_SEGMENT_PREFIX "memtide."
#define MEMTIDE_SEGMENT_COMMAND_BYTES 1024
#define MEMTIDE_SEGMENT_MARK_LABEL_BYTES 48
#define MEMTIDE_SEGMENT_MARKS 64

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
};

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
  // Anonymous mappings made through mmap/mremap by the program (not the allocator's own, which are heap).
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
};

#ifdef __cplusplus
static_assert(sizeof(SegmentMark) == 72, "segment layout changed: bump MEMTIDE_SEGMENT_VERSION");
static_assert(sizeof(SegmentCounters) == 136, "segment layout changed: bump MEMTIDE_SEGMENT_VERSION");
static_assert(offsetof(Segment, sequence) == 1088, "segment layout changed: bump MEMTIDE_SEGMENT_VERSION");
static_assert(sizeof(Segment) == 1088 + 16 + 136 + 64 * 72, "segment layout changed: bump MEMTIDE_SEGMENT_VERSION");
static_assert(sizeof(MEMTIDE_SEGMENT_MAGIC) == 16, "magic is 16 bytes");
}  // namespace memtide
#endif

#endif  // MEMTIDE_SEGMENT_H_
