// The whole text of a small file under /proc, read with one short-lived descriptor: the tracer module's
// command line (trace_writer.cc), seccomp state and a throwaway child's CPU time (throwaway_child.cc).
#ifndef MEMTIDE_TRACER_PROC_FILE_H_
#define MEMTIDE_TRACER_PROC_FILE_H_

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <string>

namespace memtide::internal {

// "" when it cannot be opened.
inline std::string ReadProcFile(const char* path) {
  std::string text;
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return text;
  char buffer[4096];
  for (;;) {
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  return text;
}

}  // namespace memtide::internal

#endif  // MEMTIDE_TRACER_PROC_FILE_H_
