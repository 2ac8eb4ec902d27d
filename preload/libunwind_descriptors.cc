// libunwind (the tracer module's fallback unwinder) checks that an address is readable before it reads it by
// writing a byte from it into a pipe, `syscall(SYS_write, pipe[1], address, 1)`, after draining the pipe with
// `read(pipe[0])`. It opens that pipe with `pipe2` when it first unwinds and keeps it for the life of the
// process. In the program's descriptor table the pipe is in the program's way:
//   - a daemon that closes everything above 2 and opens its own files gets the pipe's numbers back, and
//     libunwind's next check reads a byte from the program's file and writes a byte of stack into another;
//   - a program that lists its descriptors (CPython's test_pass_fds_redirected compares a child's whole set)
//     sees two it never opened.
//
// So libunwind's own calls to pipe2, read and syscall are redirected (its GOT slots, import_slots.h; nothing
// changes for any other caller): pipe2 returns two numbers that are never descriptors (negative), read of
// the first says "empty" as a drained pipe does, and the write to the second checks the address with
// process_vm_readv on the process itself, which reads memory without a descriptor and fails with EFAULT where
// the write would have. Where process_vm_readv is refused (a seccomp profile without it) the pipe is real and
// moved to the top of the first 1024 numbers, where programs that number their files from the bottom do not
// reach.
#include "libunwind_descriptors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "child_sharing_memory.h"
#include "import_slots.h"
#include "log.h"

namespace memtide::internal {
namespace {

// Never descriptors: the kernel answers EBADF to any call that gets one by mistake. Not -1, which libunwind
// takes for "no pipe yet".
constexpr int kCheckReadEnd = -1000;
constexpr int kCheckWriteEnd = -1001;

// What libunwind's write of `bytes` from `address` into its pipe would return: bytes, or -1 with EFAULT.
ssize_t CheckReadable(const void* address, size_t bytes) {
  char copy[64];
  size_t checked = 0;
  while (checked < bytes) {
    const size_t chunk = bytes - checked < sizeof(copy) ? bytes - checked : sizeof(copy);
    iovec local{copy, chunk};
    iovec remote{const_cast<char*>(static_cast<const char*>(address) + checked), chunk};
    if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) != static_cast<ssize_t>(chunk)) {
      if (checked > 0) break;
      errno = EFAULT;
      return -1;
    }
    checked += chunk;
  }
  return static_cast<ssize_t>(checked);
}

int PipeWithoutDescriptors(int fds[2], int) {
  fds[0] = kCheckReadEnd;
  fds[1] = kCheckWriteEnd;
  return 0;
}

ssize_t ReadForLibunwind(int fd, void* buffer, size_t bytes) {
  if (fd != kCheckReadEnd) return read(fd, buffer, bytes);
  errno = EAGAIN;  // a drained non-blocking pipe
  return -1;
}

long SyscallForLibunwind(long number, ...) {
  va_list arguments;
  va_start(arguments, number);
  long argument[6];
  for (long& value : argument) value = va_arg(arguments, long);
  va_end(arguments);
  // All six go on to syscall(), as glibc's syscall() itself passes six: the kernel ignores those the call
  // does not take. The descriptor is an int: the upper half of its register is undefined (the kernel
  // ignores it too).
  if (number == SYS_write && static_cast<int>(argument[0]) == kCheckWriteEnd) {
    return CheckReadable(reinterpret_cast<const void*>(argument[1]), static_cast<size_t>(argument[2]));
  }
  return syscall(number, argument[0], argument[1], argument[2], argument[3], argument[4], argument[5]);
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

// The fallback: a real pipe, at high numbers.
int HighPipe(int fds[2], int flags) {
  const int saved_errno = errno;
  const int status = pipe2(fds, flags | O_CLOEXEC);
  if (status != 0) return status;
  fds[0] = MoveHigh(fds[0]);
  fds[1] = MoveHigh(fds[1]);
  errno = saved_errno;
  return 0;
}

// Whether process_vm_readv reads this process's memory, asked in a child that shares that memory
// (child_sharing_memory.h): a seccomp filter that does not allow it kills only that child.
alignas(64) char g_probe_stack[16 * 1024];

int ProbeChild(void*) {
  const char probe = 1;
  return CheckReadable(&probe, 1) == 1 ? 0 : 1;
}

bool ProcessCanReadItself() {
  const int saved_errno = errno;
  const bool readable = AnsweredInChildSharingMemory(ProbeChild, g_probe_stack, sizeof(g_probe_stack));
  errno = saved_errno;
  return readable;
}

}  // namespace

void KeepLibunwindOutOfDescriptors(const void* libunwind_function) {
  if (libunwind_function == nullptr) return;
  const ImportSlot pipe_slot = FindImportSlot(libunwind_function, "pipe2");
  const ImportSlot read_slot = FindImportSlot(libunwind_function, "read");
  const ImportSlot syscall_slot = FindImportSlot(libunwind_function, "syscall");
  if (pipe_slot.address == nullptr) {
    LogVerbose("libunwind imports no pipe2: no memory-check pipe to keep out of the program's descriptors");
    return;
  }
  // Read and syscall first: a pipe without descriptors must never meet the real read or syscall.
  if (read_slot.address != nullptr && syscall_slot.address != nullptr && ProcessCanReadItself() &&
      RedirectImport(read_slot, reinterpret_cast<void*>(&ReadForLibunwind)) &&
      RedirectImport(syscall_slot, reinterpret_cast<void*>(&SyscallForLibunwind)) &&
      RedirectImport(pipe_slot, reinterpret_cast<void*>(&PipeWithoutDescriptors))) {
    return;
  }
  const int saved_errno = errno;
  if (!RedirectImport(pipe_slot, reinterpret_cast<void*>(&HighPipe))) {
    Log("cannot redirect libunwind's pipe2 ({}); its memory-check pipe may take the program's lowest free "
        "descriptors", strerror(errno));
  } else {
    LogVerbose("libunwind checks memory through a pipe at descriptor 1000 or above (process_vm_readv on this "
               "process failed)");
  }
  errno = saved_errno;
}

}  // namespace memtide::internal
