// Parses the MEMTIDE_* environment into Options (table: options.def).
// Runs in the preload's constructor and in the CLI. Allocation-free, no stdio, no locale: the preload may
// call it before libc has finished starting, and it must never touch the traced heap.
#include "options.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fmt/format.h"

extern char** environ;

namespace memtide {
namespace {

constexpr OptionInfo kTable[] = {
#define MEMTIDE_OPTION(field, env, kind, def, min, max, doc) \
  {#field, env, OptionKind::kind, #def, min, max, doc},
#include "options.def"
#undef MEMTIDE_OPTION
};

bool EqualsIgnoreCase(const char* a, const char* b) { return strcasecmp(a, b) == 0; }

// Parses "<number>[.<fraction>]" and returns the rest in *rest. Up to 9 fractional digits.
bool ParseDecimal(const char* text, int64_t* whole, int64_t* fraction_nano, const char** rest) {
  const char* p = text;
  if (*p < '0' || *p > '9') return false;
  int64_t w = 0;
  for (; *p >= '0' && *p <= '9'; ++p) {
    if (w > (INT64_MAX - 9) / 10) return false;
    w = w * 10 + (*p - '0');
  }
  int64_t f = 0;
  if (*p == '.') {
    ++p;
    if (*p < '0' || *p > '9') return false;
    int64_t scale = 100000000;
    for (; *p >= '0' && *p <= '9'; ++p) {
      f += (*p - '0') * scale;
      scale /= 10;
    }
  }
  *whole = w;
  *fraction_nano = f;
  *rest = p;
  return true;
}

bool Scale(int64_t whole, int64_t fraction_nano, int64_t unit, int64_t* out) {
  if (unit != 0 && whole > INT64_MAX / unit) return false;
  __int128 total = static_cast<__int128>(whole) * unit + static_cast<__int128>(fraction_nano) * unit / 1000000000;
  if (total > INT64_MAX) return false;
  *out = static_cast<int64_t>(total);
  return true;
}

void SetDefault(PathValue& value, const char* text) {
  // `text` is the stringized default: "\"/dev/shm\"" -> /dev/shm.
  size_t n = strlen(text);
  if (n >= 2 && text[0] == '"') {
    text += 1;
    n -= 2;
  }
  if (n >= sizeof(value.text)) n = sizeof(value.text) - 1;
  memcpy(value.text, text, n);
  value.text[n] = '\0';
}
// Numeric defaults are written in options.def the way a user would write them (8MiB, 0.8, 1000).
void SetDefault(int64_t& value, const char* text) {
  if (ParseTraceMode(text, &value)) return;
  if (ParseSize(text, &value) || ParseRatioPermille(text, &value)) return;
  value = strtoll(text, nullptr, 10);
}

const char* GetEnvironment(const char* name) {
  // getenv() is allocation-free in glibc; kept behind one function so tests can see the one read.
  return getenv(name);
}

template <typename... Args>
void Report(OptionProblemFn problem, void* context, fmt::format_string<Args...> format, Args&&... args) {
  if (problem == nullptr) return;
  char line[768];
  auto result = fmt::format_to_n(line, sizeof(line) - 1, format, std::forward<Args>(args)...);
  *result.out = '\0';
  // The value is quoted as the environment had it: a newline or an escape sequence in it must not break the
  // one-line promise or reach the terminal (regression: tests/fuzz/regressions/options/newline_in_value).
  for (char* c = line; *c != '\0'; ++c) {
    if (static_cast<unsigned char>(*c) < 0x20 || *c == 0x7f) *c = '?';
  }
  problem(line, context);
}

bool ParseInt(const char* text, int64_t* value) {
  int64_t whole, fraction;
  const char* rest;
  if (!ParseDecimal(text, &whole, &fraction, &rest) || fraction != 0 || *rest != '\0') return false;
  *value = whole;
  return true;
}

bool ParseValue(const OptionInfo& info, const char* text, int64_t* value) {
  switch (info.kind) {
    case OptionKind::kDuration: return ParseDurationMs(text, value);
    case OptionKind::kBool: return ParseBool(text, value);
    case OptionKind::kInt: return ParseInt(text, value);
    case OptionKind::kSize: return ParseSize(text, value);
    case OptionKind::kRatio: return ParseRatioPermille(text, value);
    case OptionKind::kTraceMode: return ParseTraceMode(text, value);
    case OptionKind::kPath: return false;
  }
  return false;
}

const char* KindExample(OptionKind kind) {
  switch (kind) {
    case OptionKind::kDuration: return "a duration such as 100ms, 2s or 1m";
    case OptionKind::kBool: return "0 or 1";
    case OptionKind::kInt: return "a whole number";
    case OptionKind::kSize: return "a size such as 10000, 64KiB or 2G";
    case OptionKind::kRatio: return "a ratio such as 0.8 or 80%";
    case OptionKind::kTraceMode: return "off, sample or full";
    case OptionKind::kPath: return "a path";
  }
  return "";
}

// Returns 1 when the variable is set but unusable (reported), else 0.
int LoadOne(const OptionInfo& info, PathValue* target, OptionProblemFn problem, void* context) {
  const char* text = GetEnvironment(info.env);
  if (text == nullptr) return 0;
  // A relative path names a place in the directory the process started in: the program may change directory
  // before memtide writes there (the trace at exit, a snapshot).
  char absolute[sizeof(target->text)];
  if (text[0] != '\0' && text[0] != '/') {
    if (!MakeAbsolutePath(text, absolute, sizeof(absolute))) {
      if (errno == ERANGE) {
        Report(problem, context, "{}='{:.64}' is longer than {} bytes once made absolute; using the default",
               info.env, text, sizeof(target->text) - 1);
      } else {
        Report(problem, context, "{}='{:.128}' is relative and the current directory cannot be read ({}); using "
               "the default", info.env, text, strerror(errno));
      }
      return 1;
    }
    text = absolute;
  }
  if (strlen(text) >= sizeof(target->text)) {
    Report(problem, context, "{}='{:.64}...' is longer than {} bytes; using the default", info.env, text,
           sizeof(target->text) - 1);
    return 1;
  }
  SetDefault(*target, text);
  return 0;
}

int LoadOne(const OptionInfo& info, int64_t* target, OptionProblemFn problem, void* context) {
  const char* text = GetEnvironment(info.env);
  if (text == nullptr) return 0;
  int64_t value = 0;
  if (!ParseValue(info, text, &value)) {
    Report(problem, context, "{}='{:.128}' is not {}; using the default {}", info.env, text, KindExample(info.kind),
           info.default_text);
    return 1;
  }
  if (value < info.min || value > info.max) {
    Report(problem, context, "{}='{:.128}' is outside [{}, {}]; using the default {}", info.env, text, info.min,
           info.max, info.default_text);
    return 1;
  }
  *target = value;
  return 0;
}

}  // namespace

bool MakeAbsolutePath(const char* path, char* out, size_t size) {
  size_t folder = 0;  // the current directory and its '/'
  if (path[0] != '/') {
    if (getcwd(out, size) == nullptr) return false;
    folder = strlen(out) + 1;
  }
  const size_t length = strlen(path);
  if (folder + length + 1 > size) {
    errno = ERANGE;
    return false;
  }
  if (folder > 0) out[folder - 1] = '/';
  memcpy(out + folder, path, length + 1);
  return true;
}

const OptionInfo* OptionTable(size_t* count) {
  *count = sizeof(kTable) / sizeof(kTable[0]);
  return kTable;
}

bool ParseTraceMode(const char* text, int64_t* mode) {
  if (text == nullptr) return false;
  static constexpr const char* kNames[] = {"off", "sample", "full"};
  for (int64_t i = 0; i < 3; ++i) {
    if (EqualsIgnoreCase(text, kNames[i])) {
      *mode = i;
      return true;
    }
  }
  return false;
}

bool ParseSize(const char* text, int64_t* bytes) {
  if (text == nullptr) return false;
  int64_t whole, fraction;
  const char* rest;
  if (!ParseDecimal(text, &whole, &fraction, &rest)) return false;
  while (*rest == ' ') ++rest;
  struct Unit {
    const char* name;
    int64_t bytes;
  };
  static constexpr Unit kUnits[] = {
      {"", 1},           {"b", 1},           {"k", 1LL << 10},    {"kib", 1LL << 10}, {"kb", 1000},
      {"m", 1LL << 20},  {"mib", 1LL << 20}, {"mb", 1000000},     {"g", 1LL << 30},   {"gib", 1LL << 30},
      {"gb", 1000000000}, {"t", 1LL << 40},  {"tib", 1LL << 40},  {"tb", 1000000000000LL},
  };
  for (const Unit& unit : kUnits) {
    if (EqualsIgnoreCase(rest, unit.name)) {
      if (unit.bytes == 1 && fraction != 0) return false;
      return Scale(whole, fraction, unit.bytes, bytes);
    }
  }
  return false;
}

bool ParseDurationMs(const char* text, int64_t* milliseconds) {
  if (text == nullptr) return false;
  int64_t whole, fraction;
  const char* rest;
  if (!ParseDecimal(text, &whole, &fraction, &rest)) return false;
  int64_t micros;
  if (*rest == '\0' || strcmp(rest, "ms") == 0) {
    if (!Scale(whole, fraction, 1000, &micros)) return false;
  } else if (strcmp(rest, "us") == 0) {
    micros = whole;
  } else if (strcmp(rest, "s") == 0) {
    if (!Scale(whole, fraction, 1000000, &micros)) return false;
  } else if (strcmp(rest, "m") == 0 || strcmp(rest, "min") == 0) {
    if (!Scale(whole, fraction, 60000000, &micros)) return false;
  } else if (strcmp(rest, "h") == 0) {
    if (!Scale(whole, fraction, 3600000000LL, &micros)) return false;
  } else {
    return false;
  }
  *milliseconds = micros / 1000;
  return true;
}

bool ParseRatioPermille(const char* text, int64_t* permille) {
  if (text == nullptr) return false;
  int64_t whole, fraction;
  const char* rest;
  if (!ParseDecimal(text, &whole, &fraction, &rest)) return false;
  if (strcmp(rest, "%") == 0) return Scale(whole, fraction, 10, permille);
  if (*rest != '\0' || whole > 1000) return false;
  return Scale(whole, fraction, 1000, permille);
}

bool ParseBool(const char* text, int64_t* value) {
  if (text == nullptr) return false;
  static constexpr const char* kTrue[] = {"1", "true", "yes", "on"};
  static constexpr const char* kFalse[] = {"0", "false", "no", "off", ""};
  for (const char* t : kTrue) {
    if (EqualsIgnoreCase(text, t)) return *value = 1, true;
  }
  for (const char* f : kFalse) {
    if (EqualsIgnoreCase(text, f)) return *value = 0, true;
  }
  return false;
}

int LoadOptions(Options* out, OptionProblemFn problem, void* context) {
  int problems = 0;
  size_t index = 0;
#define MEMTIDE_OPTION(field, env, kind, def, min, max, doc) \
  SetDefault(out->field, #def);                              \
  problems += LoadOne(kTable[index++], &out->field, problem, context);
#include "options.def"
#undef MEMTIDE_OPTION

  // Unknown MEMTIDE_* names are most often typos of known ones.
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const char* name = *entry;
    if (strncmp(name, "MEMTIDE_", 8) != 0) continue;
    const char* equals = strchr(name, '=');
    if (equals == nullptr) continue;
    size_t length = static_cast<size_t>(equals - name);
    bool known = false;
    for (const OptionInfo& info : kTable) {
      if (strlen(info.env) == length && strncmp(info.env, name, length) == 0) known = true;
    }
    if (!known) {
      Report(problem, context, "unknown variable {:.{}} is ignored (see `memtide run --help`)", name,
             static_cast<int>(length));
      ++problems;
    }
  }
  return problems;
}

}  // namespace memtide
