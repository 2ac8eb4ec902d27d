// libFuzzer target: every parser of the CLI's own input (viewer/flag_values.h: --interval, --timeout,
// --grace, --sort, --listen), the control request argument check (control_client.h), and the text the
// outside commands read from files others control: /proc/meminfo, mountinfo, nvidia-smi output, and the
// escaping of strings into terminals, CSV and Prometheus labels.
#include <stdint.h>
#include <stdlib.h>

#include <string>

#include "cgroup_report.h"
#include "control_client.h"
#include "flag_values.h"
#include "gpu_probe.h"
#include "monitor_command.h"
#include "printable.h"
#include "prometheus_format.h"
#include "system_memory.h"

namespace {

// Valid UTF-8 without C0/C1 controls or DEL: what Printable promises.
void RequirePrintable(const std::string& text) {
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) abort();
    if (c == 0xc2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) < 0xa0) abort();
  }
  if (memtide::Printable(text) != text) abort();  // idempotent: valid and clean already
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<int64_t> interval = memtide::ParseIntervalMs(text);
  if (interval.ok() && (*interval < 10 || *interval > 24 * 3600 * 1000)) abort();
  absl::StatusOr<int64_t> timeout = memtide::ParseTimeoutMs(text);
  if (timeout.ok() && (*timeout < 1 || *timeout > 3600 * 1000)) abort();
  absl::StatusOr<int64_t> grace = memtide::ParseGraceMs(text);
  if (grace.ok() && *grace < 0) abort();
  (void)memtide::ParseSortKey(text);
  absl::StatusOr<memtide::ListenAddress> address = memtide::ParseListenAddress(text);
  if (address.ok() && (address->port < 0 || address->port > 65535 || address->host.empty())) abort();
  for (const absl::Status& status : {interval.status(), timeout.status(), address.status()}) {
    if (!status.ok()) RequirePrintable(std::string(status.message()));
  }
  (void)memtide::ValidateControlArgument(text);

  std::string printable = memtide::Printable(text);
  RequirePrintable(printable);
  RequirePrintable(memtide::Truncate(printable, size % 17));
  std::string label = memtide::PrometheusLabelValue(text);
  for (size_t i = 0; i < label.size(); ++i) {
    if (label[i] == '"' && (i == 0 || label[i - 1] != '\\')) abort();
  }
  std::string field = memtide::CsvField(text);
  if (field.find('\n') != std::string::npos) abort();

  memtide::ParseMeminfo(text);
  memtide::ParseCgroupMounts(text);
  for (const memtide::GpuDevice& device : memtide::ParseNvidiaSmiCsv(text)) {
    if (device.used_bytes < 0 || device.total_bytes < 0) abort();
    RequirePrintable(device.name);
  }
  return 0;
}
