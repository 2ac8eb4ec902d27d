// The sections `memtide show` adds below the counters: the marks as a timeline (heap at each mark, change
// since the one before, peak, a bar) and the GPU buckets per device.
// Pure functions of a validated segment; every length and index is bounded again here. Runs in the CLI.
#ifndef MEMTIDE_VIEWER_SHOW_SECTIONS_H_
#define MEMTIDE_VIEWER_SHOW_SECTIONS_H_

#include <string>

#include "memtide/segment.h"

namespace memtide {

// "  marks   N …" and one line per kept mark, oldest first; empty without marks.
std::string MarksTimelineText(const Segment& segment);
// One block per device the process used; empty without GPU counters.
std::string GpuBucketsText(const Segment& segment);

}  // namespace memtide

#endif  // MEMTIDE_VIEWER_SHOW_SECTIONS_H_
