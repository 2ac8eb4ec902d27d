// Shared by the end-to-end drivers (tests/e2e, tests/gpu, tests/trace): a private scratch directory per test
// and a finished run bundled with how it was started. Header-only; needs doctest included first.
#ifndef MEMTIDE_TESTS_E2E_TEST_SCRATCH_H_
#define MEMTIDE_TESTS_E2E_TEST_SCRATCH_H_

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "run_process.h"

namespace memtide::e2e {

// A fresh directory for one test's segments, traces and reports, removed with everything in it, so ctest
// may run tests in parallel.
class TempDir {
 public:
  TempDir() {
    const char* base = getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/memtide_test_XXXXXX";
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    REQUIRE_MESSAGE(mkdtemp(buffer.data()) != nullptr, "mkdtemp failed for " << pattern);
    path_ = buffer.data();
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A finished run and how it was started, so every failing check can show both.
struct Run {
  ProcessOptions options;
  ProcessResult result;
  std::string Describe() const { return memtide::e2e::Describe(options, result); }
};

inline Run Execute(ProcessOptions options) {
  Run run;
  run.result = RunProcess(options);
  run.options = std::move(options);
  return run;
}

}  // namespace memtide::e2e

#endif  // MEMTIDE_TESTS_E2E_TEST_SCRATCH_H_
