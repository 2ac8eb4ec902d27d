// libFuzzer target: a segment file with any contents, read by viewer/segment_reader.cc and shown by every
// renderer that takes a segment (show text and JSON, the top row and table, Prometheus, the timeline, GPU
// buckets). The reader must refuse or bound everything; the renderers must not crash, hang or throw.
//
// The first byte picks how the input becomes a file: 0 as is (sizes, magic and version are fuzzed too); else
// laid over a valid header with an even sequence, so the fuzzer spends its time past the header checks.
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "memtide/segment.h"
#include "process_table.h"
#include "prometheus_format.h"
#include "segment_reader.h"
#include "segment_view.h"
#include "show_sections.h"

namespace {

// A private directory on tmpfs for the one file each input becomes, removed at exit.
struct ScratchDirectory {
  std::string path = "/dev/shm/memtide-fuzz-" + std::to_string(getpid());
  ScratchDirectory() { mkdir(path.c_str(), 0700); }
  ~ScratchDirectory() {
    unlink((path + "/memtide.1.1").c_str());
    rmdir(path.c_str());
  }
};

const std::string& Directory() {
  static const ScratchDirectory directory;
  return directory.path;
}

void Render(const memtide::SegmentSnapshot& snapshot) {
  std::string text = memtide::SegmentText(snapshot);
  std::string json = memtide::SegmentJson(snapshot).dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
  memtide::ProcessRow row = memtide::MakeProcessRow(snapshot);
  std::string table = memtide::ProcessTableText({row}, 80);
  std::string metrics = memtide::PrometheusText({snapshot}, 1);
  std::string row_json = row.json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string timeline = memtide::MarksTimelineText(snapshot.segment);
  std::string gpu = memtide::GpuBucketsText(snapshot.segment);
  // Whatever the file said, the text output has no control characters but newlines.
  for (const std::string* output : {&text, &table, &timeline, &gpu}) {
    for (char c : *output) {
      if ((static_cast<unsigned char>(c) < 0x20 && c != '\n') || c == 0x7f) abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string bytes;
  if (data[0] == 0) {
    bytes.assign(reinterpret_cast<const char*>(data + 1), size - 1);
  } else {
    memtide::Segment segment{};
    memcpy(&segment, data + 1, std::min(size - 1, sizeof(segment)));
    memcpy(segment.magic, MEMTIDE_SEGMENT_MAGIC, sizeof(segment.magic));
    segment.version = MEMTIDE_SEGMENT_VERSION;
    segment.header_bytes = offsetof(memtide::Segment, sequence);
    segment.total_bytes = sizeof(segment);
    segment.sequence &= ~uint64_t{1};
    // A dead pid (or this process): never signal-probe arbitrary processes from the fuzzer.
    segment.pid = data[0] == 1 ? getpid() : 0;
    bytes.assign(reinterpret_cast<const char*>(&segment), sizeof(segment));
  }
  std::string path = Directory() + "/memtide.1.1";
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) abort();
  if (write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) abort();
  close(fd);
  absl::StatusOr<memtide::SegmentSnapshot> snapshot = memtide::ReadSegmentFile(path);
  if (snapshot.ok()) Render(*snapshot);
  return 0;
}
