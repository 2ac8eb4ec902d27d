// memtide's options (MEMTIDE_* environment variables), generated from options.def.
// Runs in the preload at start-up (before main, possibly before libc is fully up: no allocation, no stdio)
// and in the CLI (help text, validation before launching a program).
#ifndef MEMTIDE_PRELOAD_OPTIONS_H_
#define MEMTIDE_PRELOAD_OPTIONS_H_

#include <stddef.h>
#include <stdint.h>

namespace memtide {

// kTraceMode: off, sample or full (kMemtideTraceOff/Sample/Full of tracer/tracer_module.h: 0, 1, 2).
enum class OptionKind { kPath, kDuration, kBool, kInt, kSize, kRatio, kTraceMode };

struct PathValue {
  char text[512];
};

struct Options {
#define MEMTIDE_OPTION_FIELD_kPath PathValue
#define MEMTIDE_OPTION_FIELD_kDuration int64_t
#define MEMTIDE_OPTION_FIELD_kBool int64_t
#define MEMTIDE_OPTION_FIELD_kInt int64_t
#define MEMTIDE_OPTION_FIELD_kSize int64_t
#define MEMTIDE_OPTION_FIELD_kRatio int64_t
#define MEMTIDE_OPTION_FIELD_kTraceMode int64_t
#define MEMTIDE_OPTION(field, env, kind, def, min, max, doc) MEMTIDE_OPTION_FIELD_##kind field;
#include "options.def"
#undef MEMTIDE_OPTION
};

struct OptionInfo {
  const char* field;
  const char* env;
  OptionKind kind;
  const char* default_text;  // as written in options.def
  int64_t min;
  int64_t max;
  const char* doc;
};

// The table, in options.def order.
const OptionInfo* OptionTable(size_t* count);

// Called once per problem with one complete line (no trailing newline). Must not allocate in the preload.
using OptionProblemFn = void (*)(const char* line, void* context);

// Fills `out` with defaults, then with every valid MEMTIDE_* value from the environment. A bad value (or an
// unknown MEMTIDE_* name) is reported and leaves the default. Returns the number of problems.
// Allocation-free; reads environ through getenv-like scanning only.
int LoadOptions(Options* out, OptionProblemFn problem, void* context);

// `path` made absolute into out[size]: as it is when it starts with '/', else after the current directory and a
// '/'. False, with errno set, when the current directory cannot be read or the result does not fit (ERANGE).
// Allocation-free. MEMTIDE_LOG and the path options are resolved this way when the process starts.
bool MakeAbsolutePath(const char* path, char* out, size_t size);

// Parsers shared with the CLI. Return false on malformed or out-of-range text.
// Sizes: 10000, 64KiB, 64K, 64KB (=64000), 2G, 1.5GiB; durations: 100ms, 2s, 1m, 1h, 500us; bare = ms.
bool ParseSize(const char* text, int64_t* bytes);
bool ParseDurationMs(const char* text, int64_t* milliseconds);
bool ParseBool(const char* text, int64_t* value);
// Ratios: 0.8, 80%; in permille (800).
bool ParseRatioPermille(const char* text, int64_t* permille);
// off, sample, full (any case) -> 0, 1, 2.
bool ParseTraceMode(const char* text, int64_t* mode);

}  // namespace memtide

#endif  // MEMTIDE_PRELOAD_OPTIONS_H_
