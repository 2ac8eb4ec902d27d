// See control_client.h. Runs in the CLI.
#include "control_client.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "memtide/segment.h"
#include "printable.h"
#include "proc_stats.h"
#include "process_identity.h"
#include "segment_reader.h"

namespace memtide {
namespace {

constexpr int64_t kPollMs = 2;
constexpr int64_t kAliveCheckMs = 50;

// Milliseconds, fractional: a deadline of N ms never ends early by the truncated part.
double MonotonicMs() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<double>(now.tv_sec) * 1000.0 + static_cast<double>(now.tv_nsec) / 1e6;
}

void SleepMs(int64_t milliseconds) {
  timespec pause{static_cast<time_t>(milliseconds / 1000), static_cast<long>(milliseconds % 1000) * 1000000};
  nanosleep(&pause, nullptr);
}

bool PidAlive(pid_t pid) { return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM); }

// The same process as the segment's: alive and with the start time the segment recorded (here, or in a
// container's pid namespace, process_identity.h).
bool SegmentProcessAlive(const Segment& segment) { return LocateProcess(segment.pid, segment.start_time_ticks).alive; }

// 'T' (stopped) or 't' (traced) from /proc/<pid>/stat: a stopped process cannot answer.
bool ProcessStopped(pid_t pid) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/stat", pid);
  char text[1024];
  if (ReadSmallFile(path, text, sizeof(text)) <= 0) return false;
  const char* p = strrchr(text, ')');
  return p != nullptr && p[1] == ' ' && (p[2] == 'T' || p[2] == 't');
}

struct Mapping {
  Segment* segment = nullptr;
  ~Mapping() {
    if (segment != nullptr) munmap(segment, sizeof(Segment));
  }
};

}  // namespace

const char* ControlKindName(uint32_t kind) {
  switch (kind) {
    case kControlTrim:
      return "trim";
    case kControlResetPeak:
      return "reset-peak";
    case kControlSnapshot:
      return "snapshot";
  }
  return "unknown";
}

absl::Status ValidateControlArgument(absl::string_view argument) {
  if (argument.size() >= MEMTIDE_SEGMENT_CONTROL_ARGUMENT_BYTES) {
    return absl::InvalidArgumentError(absl::StrCat("the request argument has ", argument.size(), " bytes; at most ",
                                                   MEMTIDE_SEGMENT_CONTROL_ARGUMENT_BYTES - 1, " fit in the mailbox"));
  }
  if (Printable(argument) != argument) {
    return absl::InvalidArgumentError("the request argument contains control characters or invalid UTF-8");
  }
  return absl::OkStatus();
}

absl::StatusOr<ControlResponse> SendControlRequest(const std::string& path, uint32_t kind, absl::string_view argument,
                                                   int64_t timeout_ms) {
  if (absl::Status valid = ValidateControlArgument(argument); !valid.ok()) return valid;
  // Validates magic, version, size, owner (for reading) and says whether the process still runs.
  absl::StatusOr<SegmentSnapshot> snapshot = ReadSegmentFile(path);
  if (!snapshot.ok()) return snapshot.status();
  ControlResponse response;
  response.pid = snapshot->local_pid;  // the pid the user named (a container's process seen from the host)
  response.heap_peak_before_bytes = snapshot->segment.counters.heap_peak_bytes;
  std::vector<std::string> arguments = CommandArguments(snapshot->segment);
  response.command = Printable(arguments.empty() ? "" : arguments[0]);
  std::string who = absl::StrCat("pid ", response.pid, " (", response.command, ")");
  const char* name = ControlKindName(kind);
  if (snapshot->state != ProcessState::kRunning) {
    return absl::FailedPreconditionError(absl::StrCat(who, " is not running (", ProcessStateName(snapshot->state),
                                                      "); nothing can answer a ", name, " request"));
  }

  int fd = open(path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    if (errno == EACCES || errno == EPERM) {
      return absl::PermissionDeniedError(absl::StrCat(path, ": cannot open for writing (", strerror(errno),
                                                      "); only the owner of ", who, " or root can send requests"));
    }
    return absl::InvalidArgumentError(absl::StrCat(path, ": cannot open for writing: ", strerror(errno)));
  }
  struct stat status;
  bool stat_ok = fstat(fd, &status) == 0;
  if (!stat_ok || !S_ISREG(status.st_mode) || static_cast<size_t>(status.st_size) != sizeof(Segment)) {
    close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path, ": changed since it was read; not sending"));
  }
  // The mode bits are the process's choice; the rule is ours: only the owner or root asks.
  if (geteuid() != 0 && status.st_uid != geteuid()) {
    close(fd);
    return absl::PermissionDeniedError(absl::StrCat(path, " is owned by uid ", status.st_uid, ", not you; only the ",
                                                    "owner of ", who, " or root can send requests"));
  }
  // The file was checked to be exactly one segment long, and only its owner can shrink it (which would make
  // the accesses below fault): the owner is the one running this command, or root asked for it.
  void* address = mmap(nullptr, sizeof(Segment), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  int map_errno = errno;
  close(fd);
  if (address == MAP_FAILED) {
    return absl::InternalError(absl::StrCat(path, ": cannot map: ", strerror(map_errno)));
  }
  Mapping mapping{static_cast<Segment*>(address)};
  SegmentControl* control = &mapping.segment->control;

  const pid_t self = getpid();
  const double started = MonotonicMs();
  const double deadline = started + static_cast<double>(timeout_ms);
  // Take the mailbox.
  for (;;) {
    int32_t holder = 0;
    if (__atomic_compare_exchange_n(&control->request_lock, &holder, self, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
      break;
    }
    // A requester that died (^C'd memtide, kill -9) never releases: its lock is broken, once, by CAS, so two
    // requesters that both see it dead cannot both win.
    if (holder <= 0 || !PidAlive(holder)) {
      if (__atomic_compare_exchange_n(&control->request_lock, &holder, self, false, __ATOMIC_ACQUIRE,
                                      __ATOMIC_RELAXED)) {
        break;
      }
      continue;
    }
    if (MonotonicMs() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat("the control mailbox of ", who, " is held by pid ", holder,
                                                      " (another memtide request); gave up after ", timeout_ms, " ms"));
    }
    SleepMs(kPollMs);
  }
  struct LockReleaser {
    SegmentControl* control;
    pid_t self;
    ~LockReleaser() {
      int32_t expected = self;
      __atomic_compare_exchange_n(&control->request_lock, &expected, 0, false, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
    }
  } releaser{control, self};

  // Write the request; the release increment of request_sequence publishes kind and argument.
  __atomic_store_n(&control->request_kind, kind, __ATOMIC_RELAXED);
  memset(control->request_argument, 0, sizeof(control->request_argument));
  memcpy(control->request_argument, argument.data(), argument.size());
  uint64_t sequence = __atomic_add_fetch(&control->request_sequence, 1, __ATOMIC_RELEASE);
  __atomic_add_fetch(&control->wake, 1, __ATOMIC_SEQ_CST);
  syscall(SYS_futex, &control->wake, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);

  double next_alive_check = MonotonicMs() + kAliveCheckMs;
  for (;;) {
    if (__atomic_load_n(&control->response_sequence, __ATOMIC_ACQUIRE) == sequence) break;
    double now = MonotonicMs();
    if (now >= next_alive_check) {
      next_alive_check = now + kAliveCheckMs;
      if (!SegmentProcessAlive(mapping.segment[0])) {
        return absl::UnavailableError(absl::StrCat(who, " exited before it answered the ", name, " request"));
      }
    }
    if (now >= deadline) {
      std::string why = ProcessStopped(snapshot->local_pid)
                            ? "it is stopped (SIGSTOP, ^Z or a debugger); resume it with kill -CONT"
                            : "its memtide monitor thread does not answer (the process may be hung, or its "
                              "libmemtide.so may be older than this memtide)";
      return absl::DeadlineExceededError(
          absl::StrCat(who, " did not answer the ", name, " request within ", timeout_ms, " ms: ", why));
    }
    SleepMs(kPollMs);
  }
  response.status = __atomic_load_n(&control->response_status, __ATOMIC_RELAXED);
  for (int i = 0; i < 4; ++i) response.values[i] = control->response_values[i];
  char message[MEMTIDE_SEGMENT_CONTROL_MESSAGE_BYTES];
  memcpy(message, control->response_message, sizeof(message));
  response.message = Printable(absl::string_view(message, strnlen(message, sizeof(message))));
  response.waited_s = (MonotonicMs() - started) / 1000.0;
  return response;
}

}  // namespace memtide
