// libFuzzer target: the parsers of the MEMTIDE_* environment (preload/options.cc: sizes, durations, bools,
// ratios) and LoadOptions itself, which the preload runs before main on whatever the environment holds. A
// parsed value must be in range; a bad one must be reported in one line and leave the default.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <string>

#include "options.h"

namespace {

int g_problems;

// One line, and nothing a terminal would act on: the value is echoed to the traced program's stderr.
void CountProblem(const char* line, void*) {
  for (const char* c = line; *c != '\0'; ++c) {
    if (static_cast<unsigned char>(*c) < 0x20 || *c == 0x7f) abort();
  }
  if (strlen(line) > 1024) abort();
  ++g_problems;
}

void CheckRange(int64_t value, int64_t min, int64_t max) {
  if (min < max && (value < min || value > max)) abort();
}
void CheckRange(const memtide::PathValue& value, int64_t, int64_t) {
  if (memchr(value.text, '\0', sizeof(value.text)) == nullptr) abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  text = text.c_str();  // the environment has no NUL inside a value
  int64_t value = 0;
  if (memtide::ParseSize(text.c_str(), &value) && value < 0) abort();
  if (memtide::ParseDurationMs(text.c_str(), &value) && value < 0) abort();
  if (memtide::ParseBool(text.c_str(), &value) && value != 0 && value != 1) abort();
  // Ratios above 1 ("81" is 8100%) parse; the option table's range refuses them (LoadOptions below).
  if (memtide::ParseRatioPermille(text.c_str(), &value) && value < 0) abort();

  size_t count = 0;
  const memtide::OptionInfo* table = memtide::OptionTable(&count);
  const memtide::OptionInfo& option = table[data[0] % count];
  setenv(option.env, text.c_str(), 1);
  memtide::Options options;
  g_problems = 0;
  memtide::LoadOptions(&options, CountProblem, nullptr);
  unsetenv(option.env);
  if (g_problems > 1) abort();  // one variable set, at most one line about it
    // Whatever was set, every numeric option ends within its table range (a bad value keeps the default).
#define MEMTIDE_OPTION(field, env, kind, def, min, max, doc) CheckRange(options.field, min, max);
#include "options.def"
#undef MEMTIDE_OPTION
  return 0;
}
