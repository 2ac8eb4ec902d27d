// One segment shown to a person or a program: the JSON fragments shared by `memtide show --json` and the
// run report, and the text block of `memtide show` and the run summary.
#ifndef MEMTIDE_VIEWER_SEGMENT_VIEW_H_
#define MEMTIDE_VIEWER_SEGMENT_VIEW_H_

#include <string>

#include "nlohmann/json.hpp"
#include "segment_reader.h"

namespace memtide {

// {"heap":{...}, "mmap":{...}, "rss":{...}, "cgroup":{...}, "marks":[...], "marks_total":N}
nlohmann::json CountersJson(const Segment& segment);
// The marks that survived in the ring, oldest first.
nlohmann::json MarksJson(const Segment& segment);
// `memtide show --json`
nlohmann::json SegmentJson(const SegmentSnapshot& snapshot);
// `memtide show`
std::string SegmentText(const SegmentSnapshot& snapshot);
// The counter lines (heap, mmap, rss, cgroup, marks), each starting with two spaces.
std::string CountersText(const Segment& segment);

}  // namespace memtide

#endif  // MEMTIDE_VIEWER_SEGMENT_VIEW_H_
