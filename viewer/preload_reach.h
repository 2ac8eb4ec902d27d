// Why LD_PRELOAD cannot have reached a program, for `memtide run` when the program left no segment: a
// statically linked executable has no dynamic loader to apply it, and the loader ignores it for a set-user-ID
// or set-group-ID executable run by another user (secure-execution mode). heaptrack, memray and LeakSanitizer
// share the limit; saying so beats "cannot open the segment".
#ifndef MEMTIDE_VIEWER_PRELOAD_REACH_H_
#define MEMTIDE_VIEWER_PRELOAD_REACH_H_

#include <string>

namespace memtide {

// `program` as execvp finds it (a name without '/' is looked up in PATH). "" when nothing stops the preload
// that this can tell (a script, an unreadable file, a dynamically linked executable).
std::string WhyPreloadCannotReach(const std::string& program);

}  // namespace memtide

#endif  // MEMTIDE_VIEWER_PRELOAD_REACH_H_
