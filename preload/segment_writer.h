// The writer side of the stats segment (include/memtide/segment.h): creation, seqlock'd publishing,
// marks, removal. Runs on the monitor thread, in memtide_mark, and at exit; never inside a hook.
// Every function here except the lock itself must be called with the publish lock held.
#ifndef MEMTIDE_PRELOAD_SEGMENT_WRITER_H_
#define MEMTIDE_PRELOAD_SEGMENT_WRITER_H_

#include <stdint.h>

#include "proc_stats.h"

namespace memtide::internal {

// Serializes everything that touches the segment. Exit uses TryLockFor so a thread that died holding it
// (or a signal handler that interrupted it) cannot hang the process's exit.
void LockPublishing();
bool TryLockPublishingFor(int64_t milliseconds);
void UnlockPublishing();
// fork() child: the lock may be held by a thread that does not exist there.
void ResetPublishingInChild();

// Sampled by the monitor thread and kept for every later publish.
void SetSampledStats(const ProcessMemory* process, const CgroupMemory* cgroup);

bool SegmentExists();
// Creates the segment in `directory`. On failure: one log line, the segment stays off for this process.
bool CreateSegment(const char* directory);
// Writes the counters (heap, mmap, sampled stats, marks) under the seqlock.
void PublishSegment(uint32_t state, int32_t exit_code);
void RecordMark(const char* label);
void RemoveSegmentFile();
// fork() child: drop the parent's mapping (never write to it), marks and failure state.
void ForgetSegmentInChild();

}  // namespace memtide::internal

#endif  // MEMTIDE_PRELOAD_SEGMENT_WRITER_H_
