// Destination of memtide's messages inside the traced process. See log.h.
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <atomic>

namespace memtide::internal {
namespace {

std::atomic<int> g_log_fd{2};
std::atomic<bool> g_verbose{false};

}  // namespace

void OpenLog(const char* path) {
  if (path == nullptr || path[0] == '\0') return;
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    Log("MEMTIDE_LOG='{}' cannot be opened ({}); logging to standard error", path, strerror(errno));
    return;
  }
  g_log_fd.store(fd, std::memory_order_release);
}

void WriteLogLine(const char* text, size_t length) {
  int saved_errno = errno;
  int fd = g_log_fd.load(std::memory_order_acquire);
  while (length > 0) {
    ssize_t written = write(fd, text, length);
    if (written <= 0) {
      if (written < 0 && errno == EINTR) continue;
      break;
    }
    text += written;
    length -= static_cast<size_t>(written);
  }
  errno = saved_errno;
}

bool VerboseLogging() { return g_verbose.load(std::memory_order_relaxed); }
void SetVerboseLogging(bool verbose) { g_verbose.store(verbose, std::memory_order_relaxed); }

}  // namespace memtide::internal
