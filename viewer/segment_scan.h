// Every segment in a set of directories, read and validated, for the commands that look at all processes
// (top, monitor, export, doctor, gc). A file that is refused (garbage, another user's, a symlink, a torn
// write by a live process) becomes one line in `problems`, naming the file and why; the others are read.
// Runs in the CLI.
#ifndef MEMTIDE_VIEWER_SEGMENT_SCAN_H_
#define MEMTIDE_VIEWER_SEGMENT_SCAN_H_

#include <string>
#include <vector>

#include "segment_reader.h"

namespace memtide {

struct SegmentScan {
  std::vector<SegmentSnapshot> segments;  // in file-name order within each directory
  std::vector<std::string> problems;      // one line each: "<path>: <why>"
};

SegmentScan ScanSegments(const std::vector<std::string>& directories);

// MEMTIDE_DIR, or its default (/dev/shm): where a process traced with this environment writes.
std::string DefaultSegmentDirectory();

}  // namespace memtide

#endif  // MEMTIDE_VIEWER_SEGMENT_SCAN_H_
