// See segment_scan.h. Runs in the CLI.
#include "segment_scan.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>

#include "absl/strings/str_cat.h"
#include "options.h"

namespace memtide {

SegmentScan ScanSegments(const std::vector<std::string>& directories) {
  SegmentScan scan;
  for (const std::string& directory : directories) {
    DIR* dir = opendir(directory.c_str());
    if (dir == nullptr) {
      scan.problems.push_back(absl::StrCat(directory, ": cannot open the segment directory: ", strerror(errno)));
      continue;
    }
    closedir(dir);
    for (const std::string& path : ListSegmentFiles(directory)) {
      absl::StatusOr<SegmentSnapshot> snapshot = ReadSegmentFile(path);
      if (snapshot.ok()) {
        scan.segments.push_back(*std::move(snapshot));
      } else {
        scan.problems.emplace_back(snapshot.status().message());
      }
    }
  }
  return scan;
}

std::string DefaultSegmentDirectory() {
  Options options;
  LoadOptions(&options, nullptr, nullptr);  // a traced program reports bad values itself
  return options.dir.text;
}

}  // namespace memtide
