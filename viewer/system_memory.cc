// See system_memory.h. Runs in the CLI.
#include "system_memory.h"

#include <dirent.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "printable.h"

namespace memtide {
namespace {

constexpr size_t kCommandBytes = 4096;

// "Key:   123 kB" -> bytes; -1 when absent.
int64_t KilobytesOf(absl::string_view text, absl::string_view key) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::ConsumePrefix(&line, key) || !absl::ConsumePrefix(&line, ":")) continue;
    line = absl::StripAsciiWhitespace(line);
    bool kilobytes = absl::ConsumeSuffix(&line, "kB");
    int64_t value = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &value) || value < 0 || value > (INT64_MAX >> 10)) {
      return -1;
    }
    return kilobytes ? value * 1024 : value;
  }
  return -1;
}

std::string ReadFile(const std::string& path, size_t limit) {
  std::ifstream in(path, std::ios::binary);
  std::string text(limit, '\0');
  in.read(text.data(), static_cast<std::streamsize>(limit));
  text.resize(static_cast<size_t>(in.gcount()));
  return text;
}

}  // namespace

Meminfo ParseMeminfo(absl::string_view text) {
  Meminfo info;
  info.total_bytes = KilobytesOf(text, "MemTotal");
  info.free_bytes = KilobytesOf(text, "MemFree");
  info.available_bytes = KilobytesOf(text, "MemAvailable");
  info.buffers_bytes = KilobytesOf(text, "Buffers");
  info.cached_bytes = KilobytesOf(text, "Cached");
  info.shmem_bytes = KilobytesOf(text, "Shmem");
  info.swap_total_bytes = KilobytesOf(text, "SwapTotal");
  info.swap_free_bytes = KilobytesOf(text, "SwapFree");
  return info;
}

std::vector<ProcessResident> TopProcessesByRss(size_t count, const std::string& proc_root) {
  std::vector<ProcessResident> processes;
  DIR* dir = opendir(proc_root.c_str());
  if (dir == nullptr) return processes;
  while (dirent* entry = readdir(dir)) {
    int32_t pid = 0;
    if (!absl::SimpleAtoi(entry->d_name, &pid) || pid <= 0) continue;
    std::string base = proc_root + "/" + entry->d_name;
    std::string status = ReadFile(base + "/status", 8192);
    int64_t rss = KilobytesOf(status, "VmRSS");
    if (rss < 0) continue;  // kernel thread, or gone
    ProcessResident process{pid, rss, ""};
    std::string command = ReadFile(base + "/cmdline", kCommandBytes);
    while (!command.empty() && command.back() == '\0') command.pop_back();
    std::replace(command.begin(), command.end(), '\0', ' ');
    if (command.empty()) {
      for (absl::string_view line : absl::StrSplit(status, '\n')) {
        if (absl::ConsumePrefix(&line, "Name:")) command = "[" + std::string(absl::StripAsciiWhitespace(line)) + "]";
      }
    }
    process.command = Printable(command);
    processes.push_back(std::move(process));
  }
  closedir(dir);
  std::sort(processes.begin(), processes.end(), [](const ProcessResident& a, const ProcessResident& b) {
    return a.rss_bytes != b.rss_bytes ? a.rss_bytes > b.rss_bytes : a.pid < b.pid;
  });
  if (processes.size() > count) processes.resize(count);
  return processes;
}

}  // namespace memtide
