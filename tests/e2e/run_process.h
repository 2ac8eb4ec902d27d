// Runs a program for the end-to-end tests and captures what it did: exit code, signal, stdout, stderr.
// Runs in the test driver (tests/e2e/e2e_test.cc), never inside a traced process.
#ifndef MEMTIDE_TESTS_E2E_RUN_PROCESS_H_
#define MEMTIDE_TESTS_E2E_RUN_PROCESS_H_

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace memtide::e2e {

struct ProcessOptions {
  std::vector<std::string> argv;  // argv[0] is the executable's path (no PATH search)
  // Added to the environment. The driver's own LD_PRELOAD and MEMTIDE_* variables are always removed
  // first, so a test sees only what it sets.
  std::map<std::string, std::string> env;
  std::chrono::milliseconds timeout{20000};  // then the process group gets SIGKILL
};

struct ProcessResult {
  int exit_code = -1;  // the exit status, or 128 + signal when killed by one (like a shell)
  int signal = 0;      // the terminating signal, 0 when it exited
  bool timed_out = false;
  std::string out;
  std::string err;
};

// Runs the program to completion in its own process group, with core dumps off (abort and SIGKILL
// tests must not leave cores behind or spend time writing them). Never throws for a failing program;
// a program that cannot be started exits 127 with the reason on `err`.
ProcessResult RunProcess(const ProcessOptions& options);

// One line per field, for a failing check's context.
std::string Describe(const ProcessOptions& options, const ProcessResult& result);

}  // namespace memtide::e2e

#endif  // MEMTIDE_TESTS_E2E_RUN_PROCESS_H_
