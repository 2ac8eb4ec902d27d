// Interposed pipe/pipe2: the pipe libunwind (the tracer module's fallback unwinder) opens goes to a high
// descriptor number.
//
// libunwind opens a pipe when it first unwinds and keeps it for the life of the process: it checks that an
// address is readable by writing a byte from it into that pipe, and cannot unwind without it (refused one, it
// returned no frame at all). At the program's lowest free numbers (3 and 4, from the first traced allocation
// on) the pipe is in the way of the program: a daemon that closes everything above 2 and opens its own files
// gets those numbers back, and libunwind's next check then reads from the program's descriptor, finds it is
// not its pipe, closes it and the next one to make a new pipe, and writes a byte of stack into whatever it
// got. So a pipe asked for by libunwind's code while memtide's guard is held (the tracer only unwinds under
// it) is moved to the top of the first 1024 descriptors, where programs that number their own files from
// the bottom do not reach. It stays visible to a program that lists every descriptor it has (CPython's
// test_pass_fds_redirected compares a child's whole set, and fails under tracing): libunwind must have it
// in the program's table, where its checks run. Every other caller (the program, a signal handler that
// interrupted memtide) gets pipe2 unchanged.
#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

#include "heap_counters.h"
#include "pipe_hooks.h"
#include "real_symbols.h"
#include "thread_state.h"

#define MEMTIDE_EXPORT extern "C" __attribute__((visibility("default")))

namespace memtide::internal {
namespace {

// libunwind's code, from the tracer's start on (release: readers acquire the end).
uintptr_t g_libunwind_begin = 0;
std::atomic<uintptr_t> g_libunwind_end{0};

bool FromLibunwind(const void* return_address) {
  const uintptr_t end = g_libunwind_end.load(std::memory_order_acquire);
  const uintptr_t address = reinterpret_cast<uintptr_t>(return_address);
  return end != 0 && address - g_libunwind_begin < end - g_libunwind_begin;
}

// Resolved with the allocator's symbols at the first hook call, so a first pipe() inside a signal handler
// calls no dlsym.
int RealPipe(int fds[2], int flags) {
  if (g_real_ready && g_real.pipe2 != nullptr) return g_real.pipe2(fds, flags);
  return static_cast<int>(syscall(SYS_pipe2, fds, flags));
}

// The lowest free number from kHighFloor (or below the soft limit, if that is lower) on; unchanged if none.
constexpr int kHighFloor = 1000;
int MoveHigh(int fd) {
  rlimit limit{};
  int floor = kHighFloor;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY &&
      limit.rlim_cur < static_cast<rlim_t>(kHighFloor) + 24) {
    floor = limit.rlim_cur > 32 ? static_cast<int>(limit.rlim_cur) - 24 : fd;
  }
  if (fd >= floor) return fd;
  const int moved = fcntl(fd, F_DUPFD_CLOEXEC, floor);
  if (moved < 0) return fd;
  close(fd);
  return moved;
}

int Pipe(int fds[2], int flags, const void* caller) {
  if (MEMTIDE_PREDICT_TRUE(tls_state.guard_depth == 0) || !FromLibunwind(caller)) return RealPipe(fds, flags);
  const int saved_errno = errno;
  const int status = RealPipe(fds, flags | O_CLOEXEC);
  if (status != 0) return status;
  fds[0] = MoveHigh(fds[0]);
  fds[1] = MoveHigh(fds[1]);
  errno = saved_errno;
  return 0;
}

}  // namespace

void MoveLibunwindPipesHigh(const void* libunwind_function) {
  const LoadedObject libunwind = LoadedObjectOf(libunwind_function);
  if (libunwind.code_end == 0) return;
  g_libunwind_begin = libunwind.code_begin;
  g_libunwind_end.store(libunwind.code_end, std::memory_order_release);
}

}  // namespace memtide::internal

MEMTIDE_EXPORT int pipe2(int fds[2], int flags) {
  return memtide::internal::Pipe(fds, flags, __builtin_return_address(0));
}

MEMTIDE_EXPORT int pipe(int fds[2]) { return memtide::internal::Pipe(fds, 0, __builtin_return_address(0)); }
