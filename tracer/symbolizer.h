// Offline symbolization of trace frames (module file + file address) with elfutils libdw: function
// (demangled; the innermost inlined function first, then each function it was inlined into), source file
// and line, module basename. Reads the modules from disk, with separate debug info found the standard way
// (.gnu_debuglink, /usr/lib/debug/.build-id/xx/yyy.debug; debuginfod servers only as Servers says). Runs in
// the CLI, and in a traced program at exit (LeakSummaryText, with the program's reentrancy guard held); never
// throws, never fails: what cannot be named is "??" and shown as module+offset.
#ifndef MEMTIDE_TRACER_SYMBOLIZER_H_
#define MEMTIDE_TRACER_SYMBOLIZER_H_

#include <stdint.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace memtide {

inline constexpr const char* kUnknownFunction = "??";
// Appended to the function of a frame whose module on disk is not the one the trace was taken with (another
// build id): the name may be wrong, the offset is still the recorded one.
inline constexpr const char* kModuleChangedSuffix = " [module changed]";

struct Frame {
  std::string function = kUnknownFunction;  // demangled; kUnknownFunction when unknown
  std::string file;                         // source file as the debug info names it; empty when unknown
  int line = 0;                             // 0 when unknown
  std::string module;                       // basename of the module; empty when no module is known
  std::string module_path;                  // as recorded (suppressions match it); not serialized
  uint64_t address = 0;                     // the recorded return address: module file address, or absolute
                                            // when no module is known
};

// "module+0x1234" (or "0x7f…" without a module): how a frame without a name is shown and keyed.
std::string FrameModuleOffset(const Frame& frame);

class Symbolizer {
 public:
  enum class Detail {
    kFull,
    // The symbol table's function name alone: one frame per address, no inlined functions, no file or line.
    // Reads no DWARF, whose first use decompresses every debug section of the module (libc's separate debug
    // info: about 130 ms and 17 MB in a traced program's exit).
    kSymbolNames,
  };

  enum class Servers {
    kAskIfConfigured,  // debuginfod servers, where DEBUGINFOD_URLS names some (the CLI)
    kNever,            // this machine's files alone (in a traced program: no network, no libcurl)
  };

  explicit Symbolizer(Detail detail = Detail::kFull, Servers servers = Servers::kAskIfConfigured);
  ~Symbolizer();
  Symbolizer(const Symbolizer&) = delete;
  Symbolizer& operator=(const Symbolizer&) = delete;

  // The frames of one return address `file_address` in the module at `module_path` (looked up at address - 1,
  // the call instruction): the innermost inlined function first, then each function it was inlined into, the
  // last being the real function. Never empty. `build_id` is the hex build id the trace recorded ("" unknown);
  // a different one on disk marks every frame with kModuleChangedSuffix. Cached per module and address.
  // Allocates; not thread-safe.
  const std::vector<Frame>& Symbolize(const std::string& module_path, const std::string& build_id,
                                      uint64_t file_address);
  // A frame outside every recorded module (absolute address): nothing to read, shown as 0x….
  static Frame Unknown(uint64_t address);

 private:
  struct Module;
  Module* GetModule(const std::string& module_path, const std::string& build_id);

  const Detail detail_;
  const Servers servers_;
  std::map<std::string, std::unique_ptr<Module>> modules_;  // by path + '\n' + build id
};

}  // namespace memtide

#endif  // MEMTIDE_TRACER_SYMBOLIZER_H_
