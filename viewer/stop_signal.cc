// See stop_signal.h. Runs in the CLI.
#include "stop_signal.h"

#include <signal.h>
#include <time.h>

#include <atomic>
#include <initializer_list>

namespace memtide {
namespace {

std::atomic<bool> g_stop{false};

void OnStopSignal(int) { g_stop.store(true, std::memory_order_relaxed); }

int64_t MonotonicMs() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

}  // namespace

void CatchStopSignals() {
  struct sigaction action {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  for (int signal_number : {SIGINT, SIGTERM, SIGHUP}) sigaction(signal_number, &action, nullptr);
}

bool StopRequested() { return g_stop.load(std::memory_order_relaxed); }

bool SleepUnlessStopped(int64_t milliseconds) {
  int64_t deadline = MonotonicMs() + milliseconds;
  // Short naps: a signal that lands between the check and the sleep costs at most one nap.
  while (!StopRequested()) {
    int64_t left = deadline - MonotonicMs();
    if (left <= 0) return false;
    int64_t nap = left < 50 ? left : 50;
    timespec pause{static_cast<time_t>(nap / 1000), static_cast<long>(nap % 1000) * 1000000};
    nanosleep(&pause, nullptr);
  }
  return true;
}

}  // namespace memtide
