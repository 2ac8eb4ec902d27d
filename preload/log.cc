// Destination of memtide's messages inside the traced process. See log.h.
//
// MEMTIDE_LOG is opened for each line and closed after it, never kept open: a descriptor held for the whole
// run would sit at the program's lowest free number, where a daemon that closes everything above 2 and then
// opens its own file would have memtide's next line written into that file, and where programs that check
// their descriptors (CPython's subprocess tests) would find it. Once the thread with memtide's own
// descriptor table runs (private_descriptors.h, through SetLogFileWorkRunner), the open happens there and the
// program never sees it.
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <atomic>

#include "options.h"

namespace memtide::internal {
namespace {

std::atomic<bool> g_verbose{false};
// MEMTIDE_LOG made absolute when the process starts (the program may change its directory later); written
// once, in the constructor, before any other memtide thread exists.
char g_log_path[PATH_MAX];
bool g_log_to_file = false;
std::atomic<bool> g_reopen_failed{false};
std::atomic<bool (*)(void (*)(void*), void*)> g_file_work_runner{nullptr};
// Standard error was closed when the process started (`prog 2>&-`, a daemon's launcher): number 2 then goes
// to the first file the program opens, and memtide's lines would be written into that file. Set once, in the
// constructor.
bool g_stderr_closed_at_start = false;

// A write to a pipe whose reader has gone raises SIGPIPE, whose default action ends the process: a traced
// program run as `prog 2>&1 | head` would die of memtide's leak text (status 141, where it exits 0 untraced).
// So SIGPIPE is blocked on this thread for the write, and the one the write raised is taken back before the
// mask is restored; one the program already had pending stays pending.
bool WriteAll(int fd, const char* text, size_t length) {
  sigset_t pipe_signal, previous, pending;
  sigemptyset(&pipe_signal);
  sigaddset(&pipe_signal, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_signal, &previous);
  const bool was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
  bool written_all = true;
  while (length > 0) {
    ssize_t written = write(fd, text, length);
    if (written <= 0) {
      if (written < 0 && errno == EINTR) continue;
      if (written < 0 && errno == EPIPE && !was_pending) {
        const timespec now{0, 0};
        while (sigtimedwait(&pipe_signal, nullptr, &now) < 0 && errno == EINTR) {
        }
      }
      written_all = false;
      break;
    }
    text += written;
    length -= static_cast<size_t>(written);
  }
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  return written_all;
}

void WriteStandardError(const char* text, size_t length) {
  if (!g_stderr_closed_at_start) WriteAll(2, text, length);
}

struct LogAppend {
  const char* text;
  size_t length;
  bool written;
  int open_error;
};

void AppendToLogFile(void* argument) {
  auto* job = static_cast<LogAppend*>(argument);
  int fd = open(g_log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    job->open_error = errno;
    return;
  }
  job->written = WriteAll(fd, job->text, job->length);
  close(fd);
}

}  // namespace

void OpenLog(const char* path) {
  g_stderr_closed_at_start = fcntl(2, F_GETFD) == -1 && errno == EBADF;
  if (path == nullptr || path[0] == '\0') return;
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    Log("MEMTIDE_LOG='{}' cannot be opened ({}); logging to standard error", path, strerror(errno));
    return;
  }
  close(fd);
  if (!MakeAbsolutePath(path, g_log_path, sizeof(g_log_path))) {
    if (errno == ERANGE) {
      Log("MEMTIDE_LOG='{}': the path is too long; logging to standard error", path);
    } else {
      Log("MEMTIDE_LOG='{}': the current directory is unknown ({}); logging to standard error", path, strerror(errno));
    }
    return;
  }
  g_log_to_file = true;
}

void WriteLogLine(const char* text, size_t length) {
  int saved_errno = errno;
  LogAppend job{text, length, false, 0};
  if (g_log_to_file) {
    bool (*run)(void (*)(void*), void*) = g_file_work_runner.load(std::memory_order_acquire);
    if (run == nullptr || !run(AppendToLogFile, &job)) AppendToLogFile(&job);
    if (job.open_error != 0 && !g_reopen_failed.exchange(true, std::memory_order_relaxed)) {
      // A credential change or a chroot can take the file away; say so once, where someone may look.
      char note[PATH_MAX + 128];
      auto end = fmt::format_to_n(note, sizeof(note) - 1,
                                  "memtide: MEMTIDE_LOG='{}' cannot be opened any more ({}); its lines go to "
                                  "standard error\n", g_log_path, strerror(job.open_error)).out;
      WriteStandardError(note, static_cast<size_t>(end - note));
    }
  }
  if (!job.written) WriteStandardError(text, length);
  errno = saved_errno;
}

void SetLogFileWorkRunner(bool (*run)(void (*work)(void*), void* argument)) {
  g_file_work_runner.store(run, std::memory_order_release);
}

bool VerboseLogging() { return g_verbose.load(std::memory_order_relaxed); }
void SetVerboseLogging(bool verbose) { g_verbose.store(verbose, std::memory_order_relaxed); }

}  // namespace memtide::internal
