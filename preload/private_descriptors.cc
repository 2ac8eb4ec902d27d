// See private_descriptors.h. The thread is started by the monitor thread; work comes from the monitor thread
// and from whoever reads memtide's statistics.
#include "private_descriptors.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <atomic>

#include "log.h"
#include "own_thread.h"
#include "thread_state.h"

namespace memtide::internal {
namespace {

enum class State { kNotStarted, kStarting, kRunning, kGaveUp };

// Snapshots are collected and serialized here (tracer_loader.cc), not only read: room for the module's
// frames. Untouched pages of the mapping cost nothing.
constexpr size_t kStackBytes = 256 * 1024;
constexpr size_t kGuardBytes = 4096;
void* g_stack = nullptr;

pthread_mutex_t g_mutex = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t g_changed = PTHREAD_COND_INITIALIZER;
pthread_mutex_t g_callers = PTHREAD_MUTEX_INITIALIZER;  // one call at a time
State g_state = State::kNotStarted;                     // under g_mutex
std::atomic<bool> g_running{false};
pthread_t g_thread;
void (*g_work)(void*) = nullptr;  // under g_mutex; null: end the thread
void* g_argument = nullptr;
uint64_t g_posted = 0;
uint64_t g_done = 0;

void SetState(State state) {
  pthread_mutex_lock(&g_mutex);
  g_state = state;
  g_running.store(state == State::kRunning, std::memory_order_release);
  pthread_cond_broadcast(&g_changed);
  pthread_mutex_unlock(&g_mutex);
}

// Callers wait for the locks at most kLockWaitNs: a caller may be a signal handler that interrupted a thread
// holding one of them (a handler that calls _exit reads /proc/self/stat on the way out); it then does its work
// itself rather than wait forever. Bounded by time, not by tries: 1000 tries with sched_yield passed in less than
// the holder's job took on a loaded machine, and the snapshot then went into the program's table (CI saw it).
constexpr int64_t kLockWaitNs = 250 * 1000 * 1000;
bool LockWithinDeadline(pthread_mutex_t* mutex) {
  if (pthread_mutex_trylock(mutex) == 0) return true;  // uncontended: no clock read
  timespec deadline{};
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  const int64_t ns = deadline.tv_nsec + kLockWaitNs;
  deadline.tv_sec += static_cast<time_t>(ns / 1000000000);
  deadline.tv_nsec = static_cast<long>(ns % 1000000000);
  return pthread_mutex_clocklock(mutex, CLOCK_MONOTONIC, &deadline) == 0;
}

void* DescriptorThreadMain(void*) {
  tls_state.guard_depth = 1;  // nothing this thread does is the program's memory
  if (unshare(CLONE_FILES) != 0) {
    const int error = errno;
    SetState(State::kGaveUp);  // nothing was copied: the shared table is still this thread's, untouched
    LogVerbose("unshare(CLONE_FILES) refused ({}): memtide's file reads use the program's descriptor table",
               strerror(error));
    return nullptr;
  }
  if (close_range(0, ~0U, 0) != 0) {
    // Cannot drop the copied descriptors in one call: end the thread, which releases its table.
    SetState(State::kGaveUp);
    return nullptr;
  }
  // 0, 1 and 2 of the copy are /dev/null, so memtide's files never get those numbers: a stray write to
  // standard output or error on this thread (a library's warning) then goes nowhere instead of into one.
  const int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd == 0) {
    dup2(0, 1);
    dup2(0, 2);
  }
  g_thread = pthread_self();  // published by SetState's release, before any caller can see kRunning
  SetState(State::kRunning);
  pthread_mutex_lock(&g_mutex);
  for (;;) {
    while (g_done == g_posted) pthread_cond_wait(&g_changed, &g_mutex);
    void (*work)(void*) = g_work;
    void* argument = g_argument;
    pthread_mutex_unlock(&g_mutex);
    if (work == nullptr) return nullptr;  // StopPrivateDescriptorThread joins
    work(argument);
    pthread_mutex_lock(&g_mutex);
    g_done = g_posted;
    pthread_cond_broadcast(&g_changed);
  }
}

}  // namespace

void StartPrivateDescriptorThread() {
  pthread_mutex_lock(&g_mutex);
  if (g_state != State::kNotStarted) {
    pthread_mutex_unlock(&g_mutex);
    return;
  }
  g_state = State::kStarting;
  pthread_mutex_unlock(&g_mutex);
  // A stack of memtide's own, not one from glibc's cache of thread stacks: the thread starts while the
  // program runs, and taking a cached stack would make the program's next pthread_create allocate a new one
  // (with its TLS block, in the program's counts). Mapped once, reused by every restart and by fork children.
  if (g_stack == nullptr) {
    void* stack = mmap(nullptr, kStackBytes + kGuardBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (stack == MAP_FAILED) {
      SetState(State::kGaveUp);
      return;
    }
    mprotect(stack, kGuardBytes, PROT_NONE);  // below the stack: an overflow faults instead of corrupting
    g_stack = static_cast<char*>(stack) + kGuardBytes;
  }
  pthread_t thread;  // joined by StopPrivateDescriptorThread
  const int status = StartOwnThread(DescriptorThreadMain, g_stack, kStackBytes, &thread);
  if (status != 0) {
    SetState(State::kGaveUp);
    return;
  }
  pthread_mutex_lock(&g_mutex);
  while (g_state == State::kStarting) pthread_cond_wait(&g_changed, &g_mutex);
  const bool gave_up = g_state == State::kGaveUp;
  pthread_mutex_unlock(&g_mutex);
  if (gave_up) pthread_join(thread, nullptr);
}

void StopPrivateDescriptorThread() {
  // glibc frees a joined thread's TLS block (allocated uncounted, by the monitor) in the joining thread,
  // which may be the program's own (a credential change): memtide's work, not the program's free.
  ScopedGuard guard;
  pthread_mutex_lock(&g_mutex);
  const bool running = g_state == State::kRunning;
  pthread_mutex_unlock(&g_mutex);
  if (running) {
    pthread_mutex_lock(&g_callers);
    pthread_mutex_lock(&g_mutex);
    g_running.store(false, std::memory_order_release);  // new callers do their work themselves from now on
    g_work = nullptr;
    ++g_posted;
    pthread_cond_broadcast(&g_changed);
    pthread_mutex_unlock(&g_mutex);
    pthread_join(g_thread, nullptr);
    pthread_mutex_unlock(&g_callers);
  }
  pthread_mutex_lock(&g_mutex);
  g_state = State::kNotStarted;
  g_posted = g_done = 0;
  pthread_mutex_unlock(&g_mutex);
}

bool RunWithPrivateDescriptors(void (*work)(void*), void* argument) {
  if (!g_running.load(std::memory_order_acquire)) return false;
  if (pthread_equal(pthread_self(), g_thread)) {  // work that logs: already here, and waiting would never end
    work(argument);
    return true;
  }
  if (!LockWithinDeadline(&g_callers)) return false;
  if (!g_running.load(std::memory_order_acquire) || !LockWithinDeadline(&g_mutex)) {  // stopped, or a busy lock
    pthread_mutex_unlock(&g_callers);
    return false;
  }
  g_work = work;
  g_argument = argument;
  const uint64_t ticket = ++g_posted;
  pthread_cond_broadcast(&g_changed);
  while (g_done < ticket) pthread_cond_wait(&g_changed, &g_mutex);
  pthread_mutex_unlock(&g_mutex);
  pthread_mutex_unlock(&g_callers);
  return true;
}

bool PrivateDescriptorThreadRunning() { return g_running.load(std::memory_order_acquire); }

void ResetPrivateDescriptorsInChild() {
  pthread_mutex_init(&g_mutex, nullptr);
  pthread_cond_init(&g_changed, nullptr);
  pthread_mutex_init(&g_callers, nullptr);
  g_state = State::kNotStarted;
  g_running.store(false, std::memory_order_relaxed);
  g_posted = 0;
  g_done = 0;
}

}  // namespace memtide::internal
