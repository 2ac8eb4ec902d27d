// Answers requests that `memtide trim|reset-peak PID` leave in the segment's control mailbox
// (segment.h, SegmentControl). Monitor thread only.
#ifndef MEMTIDE_PRELOAD_CONTROL_MAILBOX_H_
#define MEMTIDE_PRELOAD_CONTROL_MAILBOX_H_

namespace memtide::internal {

// Handles the pending request, if any. Returns true when one was answered.
bool AnswerControlRequest();

}  // namespace memtide::internal

#endif  // MEMTIDE_PRELOAD_CONTROL_MAILBOX_H_
