// For the commands that run until interrupted (top, monitor, export): SIGINT, SIGTERM and SIGHUP end the
// loop at the next wake-up instead of killing the process mid-write (a half-written CSV line or textfile).
// Runs in the CLI.
#ifndef MEMTIDE_VIEWER_STOP_SIGNAL_H_
#define MEMTIDE_VIEWER_STOP_SIGNAL_H_

#include <stdint.h>

namespace memtide {

// Installs the handlers (once).
void CatchStopSignals();
bool StopRequested();
// Sleeps up to `milliseconds`, returning early (true) when a stop signal arrived.
bool SleepUnlessStopped(int64_t milliseconds);

}  // namespace memtide

#endif  // MEMTIDE_VIEWER_STOP_SIGNAL_H_
