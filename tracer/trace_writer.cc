// The trace file writer (see trace_writer.h and trace_file.h). Tracer module, off the hot path: exit and
// snapshots. Allocates; takes no lock.
#include "trace_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <unistd.h>

#include "trace_file.h"

namespace memtide::internal {
namespace {

int64_t Rounded(double value) { return static_cast<int64_t>(llround(value)); }

int WriteAll(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    done += static_cast<size_t>(n);
  }
  return 0;
}

int WriteAndClose(int fd, const std::string& text) {
  int error = WriteAll(fd, text);
  if (close(fd) != 0 && error == 0 && errno != EINTR) error = errno;
  return error;
}

}  // namespace

bool SiteRoundsToZero(const SiteCounters& site) {
  return Rounded(site.live_bytes) == 0 && Rounded(site.live_blocks) == 0 && Rounded(site.peak_bytes) == 0 &&
         Rounded(site.peak_blocks) == 0 && Rounded(site.allocated_bytes) == 0 && Rounded(site.allocations) == 0;
}

nlohmann::json BuildTraceJson(const TraceContents& contents) {
  using nlohmann::json;
  json trace = json::object();
  trace[kTraceFileVersionKey] = kTraceFileVersion;
  trace["kind"] = contents.exit ? "exit" : "snapshot";
  trace["pid"] = contents.pid;
  trace["command"] = contents.command;
  trace["time_s"] = contents.time_s;
  trace["exit_code"] = contents.has_exit_code ? json(contents.exit_code) : json(nullptr);
  trace["mode"] = contents.sample_mode ? "sample" : "full";
  trace["sample_mean_bytes"] = contents.sample_mode ? contents.sample_mean_bytes : 0;
  trace["byte_unit"] = "requested";
  trace["complete"] = contents.complete;
  const TraceTotals& totals = contents.totals;
  trace["totals"] = {{"live_bytes", Rounded(totals.live_bytes)}, {"live_blocks", Rounded(totals.live_blocks)},
                     {"peak_bytes", Rounded(totals.peak_bytes)}, {"allocations", Rounded(totals.allocations)},
                     {"frees", Rounded(totals.frees)},           {"allocated_bytes", Rounded(totals.allocated_bytes)}};
  json modules = json::array();
  for (const ModuleInfo& module : contents.modules) {
    modules.push_back({{"path", module.path},
                       {"build_id", module.build_id},
                       {"base", static_cast<uint64_t>(module.base)},
                       {"start", static_cast<uint64_t>(module.start)},
                       {"end", static_cast<uint64_t>(module.end)}});
  }
  trace["modules"] = std::move(modules);
  json stacks = json::array();
  for (const TraceStack& stack : contents.stacks) {
    json frames = json::array();
    for (const auto& [module, offset] : stack.frames) frames.push_back(json::array({module, offset}));
    stacks.push_back({{"id", stack.id}, {"frames", std::move(frames)}});
  }
  trace["stacks"] = std::move(stacks);
  json sites = json::array();
  for (const SiteCounters& site : contents.sites) {
    if (SiteRoundsToZero(site)) continue;
    const int64_t figures[] = {Rounded(site.live_bytes),  Rounded(site.live_blocks),     Rounded(site.peak_bytes),
                               Rounded(site.peak_blocks), Rounded(site.allocated_bytes), Rounded(site.allocations)};
    json sizes = json::array();
    for (uint32_t i = 0; i < site.size_count; ++i) sizes.push_back(site.sizes[i]);
    sites.push_back({{"stack", site.site},
                     {"live_bytes", figures[0]},
                     {"live_blocks", figures[1]},
                     {"peak_bytes", figures[2]},
                     {"peak_blocks", figures[3]},
                     {"allocated_bytes", figures[4]},
                     {"allocations", figures[5]},
                     {"sizes", std::move(sizes)}});
  }
  trace["sites"] = std::move(sites);
  return trace;
}

std::string SerializeTrace(const nlohmann::json& trace) {
  return trace.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::vector<std::string> ReadCommandLine() {
  std::vector<std::string> command;
  const int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return command;
  std::string text;
  char buffer[4096];
  for (;;) {
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\0', begin);
    if (end == std::string::npos) end = text.size();
    command.push_back(text.substr(begin, end - begin));
    begin = end + 1;
  }
  return command;
}

std::string ExpandPid(const std::string& pattern, int64_t pid) {
  std::string result;
  const std::string pid_text = std::to_string(pid);
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '%' && i + 1 < pattern.size() && pattern[i + 1] == 'p') {
      result += pid_text;
      ++i;
    } else {
      result += pattern[i];
    }
  }
  return result;
}

int WriteFileReplacing(const std::string& path, const std::string& text) {
  const std::string temporary = path + ".tmp." + std::to_string(getpid());
  int fd = open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0 && errno == EEXIST) {
    // Left by a process of the same pid that died mid-write (pid reuse): it is ours to replace.
    unlink(temporary.c_str());
    fd = open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  }
  if (fd < 0) return errno;
  int error = WriteAndClose(fd, text);
  if (error == 0 && rename(temporary.c_str(), path.c_str()) != 0) error = errno;
  if (error != 0) unlink(temporary.c_str());
  return error;
}

int WriteFileDirect(const std::string& path, const std::string& text, bool create_new) {
  const int flags = O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (create_new ? O_EXCL : O_TRUNC);
  const int fd = open(path.c_str(), flags, 0600);
  if (fd < 0) return errno;
  return WriteAndClose(fd, text);
}

}  // namespace memtide::internal
