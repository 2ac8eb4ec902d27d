// See large_stack.h. ucontext: glibc's makecontext/swapcontext switch stacks without assembly of our own.
#include "large_stack.h"

#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

namespace memtide::internal {
namespace {

// makecontext passes int arguments only: the call goes through here.
struct PendingCall {
  void (*function)(void*);
  void* argument;
  ucontext_t caller;
};
PendingCall* g_pending = nullptr;

void Trampoline() { g_pending->function(g_pending->argument); }

}  // namespace

bool RunOnLargeStack(void (*function)(void*), void* argument, size_t bytes) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  // Not `bytes` itself from here on: getcontext returns twice, and a changed parameter may not survive that.
  const size_t stack_bytes = (bytes + page - 1) / page * page;
  const size_t mapped_bytes = stack_bytes + page;
  void* const mapping = mmap(nullptr, mapped_bytes, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (mapping == MAP_FAILED) return false;
  mprotect(mapping, page, PROT_NONE);  // an overflow faults here instead of running into other memory
  PendingCall call{function, argument, {}};
  ucontext_t context;
  if (getcontext(&context) != 0) {
    munmap(mapping, mapped_bytes);
    return false;
  }
  context.uc_stack.ss_sp = static_cast<char*>(mapping) + page;
  context.uc_stack.ss_size = stack_bytes;
  context.uc_link = &call.caller;  // the function's return resumes the caller
  makecontext(&context, Trampoline, 0);
  PendingCall* const outer = g_pending;
  g_pending = &call;
  const bool switched = swapcontext(&call.caller, &context) == 0;
  g_pending = outer;
  munmap(mapping, mapped_bytes);
  return switched;
}

}  // namespace memtide::internal
