// The writer side of the stats segment (include/memtide/segment.h): creation, seqlock'd publishing,
// marks, removal. Runs on the monitor thread, in memtide_mark, and at exit; never inside a hook.
// Every function here except the lock itself must be called with the publish lock held.
#ifndef MEMTIDE_PRELOAD_SEGMENT_WRITER_H_
#define MEMTIDE_PRELOAD_SEGMENT_WRITER_H_

#include <stdint.h>

#include "memtide/segment.h"
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
// The program's malloc is not memtide's (real_symbols.h, MallocShadowingObject): every publish says so
// (kFeatureHeapHooks), in fork children too. Constructor.
void NoteHeapHooksBypassed();

bool SegmentExists();
// Creates the segment in `directory`. On failure: one log line, the segment stays off for this process.
bool CreateSegment(const char* directory);
// Writes the counters (heap, mmap, sampled stats, marks) under the seqlock.
void PublishSegment(uint32_t state, int32_t exit_code);
void RecordMark(const char* label);
// Trim and alert state published with the counters (memory_policy.cc writes it).
SegmentMemoryPolicy& PolicyState();
// The control mailbox of this process's segment, or null before the segment exists (or after it failed).
// Lock-free read: the monitor's futex word and request fields live outside the seqlock.
SegmentControl* SharedControl();
void RemoveSegmentFile();
// exec keeps the pid and the start time, so an earlier image of this process (one that exec'd) may have left
// a segment under this process's name; this image replaces it, or removes it if it never writes its own.
// Runs once per image (monitor thread start, or exit if the monitor never ran); cheap when there is none.
void RemoveSegmentOfEarlierImage(const char* directory);
// fork() child: drop the parent's mapping (never write to it), marks and failure state.
void ForgetSegmentInChild();

}  // namespace memtide::internal

#endif  // MEMTIDE_PRELOAD_SEGMENT_WRITER_H_
