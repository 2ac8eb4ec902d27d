// setuid and its siblings. glibc applies a credential change to every thread of the process: the calling
// thread makes the system call, then signals each other thread to make the same call, and aborts the whole
// process if any thread's result differs. Capabilities and PR_SET_KEEPCAPS are per thread, so when a program
// drops privileges the way setpriv, su-exec or a container entrypoint does (keep capabilities, setresuid,
// raise them again with capset, then setresgid/setgroups), memtide's monitor thread, which did none of the
// per-thread steps, fails where the program's thread succeeds, and glibc aborts the program.
// So memtide's thread is not there for the change: it is ended (joined) before the real call and started again
// after it, with the process's new credentials. Credential changes are rare; the cost is at most one monitor
// interval of waiting. Runs in the program's thread, outside any hook; never in a vfork child.
// Not covered: initgroups(), which calls glibc's setgroups internally (a program that drops capabilities
// between capset and initgroups would still meet the abort).
#include "credential_hooks.h"

#include <dlfcn.h>
#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/types.h>
#include <unistd.h>

#include "bookkeeping_thread.h"
#include "lifecycle.h"
#include "monitor_thread.h"
#include "thread_state.h"

#define MEMTIDE_EXPORT extern "C" __attribute__((visibility("default")))

namespace memtide::internal {
namespace {

pthread_mutex_t g_change_lock = PTHREAD_MUTEX_INITIALIZER;

template <typename Function>
Function Next(const char* name) {
  ScopedGuard guard;  // dlsym may allocate
  return reinterpret_cast<Function>(dlsym(RTLD_NEXT, name));
}

// Calls `call` (the real function) with memtide's thread out of the way; errno is the real call's.
template <typename Call>
int WithoutMonitorThread(Call call) {
  if (!IsInitializedProcess()) return call();  // a vfork child: the monitor belongs to the parent
  pthread_mutex_lock(&g_change_lock);
  bool paused = PauseMonitorThread();
  bool bookkeeping_paused = PauseBookkeepingThread();
  int result = call();
  int saved_errno = errno;
  if (bookkeeping_paused) ResumeBookkeepingThread();
  if (paused) ResumeMonitorThread();
  pthread_mutex_unlock(&g_change_lock);
  errno = saved_errno;
  return result;
}

}  // namespace

void ResetCredentialHooksInChild() { g_change_lock = PTHREAD_MUTEX_INITIALIZER; }

}  // namespace memtide::internal

using memtide::internal::Next;
using memtide::internal::WithoutMonitorThread;

// Each resolves its real function on first use; a missing one (never the case with glibc) reports ENOSYS.
#define MEMTIDE_CREDENTIAL_HOOK(name, parameters, arguments)                               \
  MEMTIDE_EXPORT int name parameters {                                                     \
    static auto real = Next<int(*) parameters>(#name);                                     \
    if (real == nullptr) {                                                                 \
      errno = ENOSYS;                                                                      \
      return -1;                                                                           \
    }                                                                                      \
    return WithoutMonitorThread([&] { return real arguments; });                           \
  }

MEMTIDE_CREDENTIAL_HOOK(setuid, (uid_t uid), (uid))
MEMTIDE_CREDENTIAL_HOOK(setgid, (gid_t gid), (gid))
MEMTIDE_CREDENTIAL_HOOK(seteuid, (uid_t uid), (uid))
MEMTIDE_CREDENTIAL_HOOK(setegid, (gid_t gid), (gid))
MEMTIDE_CREDENTIAL_HOOK(setreuid, (uid_t real_id, uid_t effective), (real_id, effective))
MEMTIDE_CREDENTIAL_HOOK(setregid, (gid_t real_id, gid_t effective), (real_id, effective))
MEMTIDE_CREDENTIAL_HOOK(setresuid, (uid_t real_id, uid_t effective, uid_t saved), (real_id, effective, saved))
MEMTIDE_CREDENTIAL_HOOK(setresgid, (gid_t real_id, gid_t effective, gid_t saved), (real_id, effective, saved))
MEMTIDE_CREDENTIAL_HOOK(setgroups, (size_t count, const gid_t* groups), (count, groups))
