// fork/exec/pipe runner for the end-to-end tests (see run_process.h).
#include "run_process.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sstream>

extern char** environ;

namespace memtide::e2e {
namespace {

bool DroppedFromEnvironment(const std::string& entry) {
  return entry.rfind("LD_PRELOAD=", 0) == 0 || entry.rfind("MEMTIDE_", 0) == 0;
}

// Everything the child needs is built before fork: between fork and exec the child only makes
// async-signal-safe calls.
std::vector<std::string> BuildEnvironment(const std::map<std::string, std::string>& extra) {
  std::vector<std::string> env;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    std::string text = *entry;
    std::string name = text.substr(0, text.find('='));
    if (DroppedFromEnvironment(text) || extra.count(name) != 0) continue;
    env.push_back(std::move(text));
  }
  for (const auto& [name, value] : extra) env.push_back(name + "=" + value);
  return env;
}

std::vector<char*> Pointers(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (std::string& s : strings) pointers.push_back(s.data());
  pointers.push_back(nullptr);
  return pointers;
}

[[noreturn]] void ExecChild(int out_fd, int err_fd, char* const* argv, char* const* envp) {
  setpgid(0, 0);
  struct rlimit no_core = {0, 0};
  setrlimit(RLIMIT_CORE, &no_core);
  int null_fd = open("/dev/null", O_RDONLY);
  if (null_fd >= 0) dup2(null_fd, 0);
  dup2(out_fd, 1);
  dup2(err_fd, 2);
  execve(argv[0], argv, envp);
  const char* reason = strerror(errno);
  const char prefix[] = "run_process: cannot exec ";
  (void)!write(2, prefix, sizeof(prefix) - 1);
  (void)!write(2, argv[0], strlen(argv[0]));
  (void)!write(2, ": ", 2);
  (void)!write(2, reason, strlen(reason));
  (void)!write(2, "\n", 1);
  _exit(127);
}

}  // namespace

ProcessResult RunProcess(const ProcessOptions& options) {
  ProcessResult result;
  std::vector<std::string> argv_strings = options.argv;
  std::vector<std::string> env_strings = BuildEnvironment(options.env);
  std::vector<char*> argv = Pointers(argv_strings);
  std::vector<char*> envp = Pointers(env_strings);
  if (argv_strings.empty()) {
    result.exit_code = 127;
    result.err = "run_process: empty argv\n";
    return result;
  }

  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
    result.exit_code = 127;
    result.err = std::string("run_process: pipe: ") + strerror(errno) + "\n";
    return result;
  }
  pid_t pid = fork();
  if (pid == 0) ExecChild(out_pipe[1], err_pipe[1], argv.data(), envp.data());
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (pid < 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    result.exit_code = 127;
    result.err = std::string("run_process: fork: ") + strerror(errno) + "\n";
    return result;
  }
  setpgid(pid, pid);  // also here, so a kill on timeout cannot race the child's own setpgid

  // Read both pipes until both close (a grandchild that inherited them keeps them open) or time runs
  // out.
  auto deadline = std::chrono::steady_clock::now() + options.timeout;
  struct pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  while (open_fds > 0) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      kill(-pid, SIGKILL);
      break;
    }
    int ready = poll(fds, 2, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buffer[4096];
      ssize_t n = read(fds[i].fd, buffer, sizeof(buffer));
      if (n > 0) {
        sinks[i]->append(buffer, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& fd : fds)
    if (fd.fd >= 0) close(fd.fd);

  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
    result.exit_code = 128 + result.signal;
  } else {
    result.exit_code = WEXITSTATUS(status);
  }
  return result;
}

std::string Describe(const ProcessOptions& options, const ProcessResult& result) {
  std::ostringstream text;
  text << "command:";
  for (const std::string& arg : options.argv) text << " '" << arg << "'";
  text << "\nenvironment:";
  for (const auto& [name, value] : options.env) text << " " << name << "=" << value;
  text << "\nexit code: " << result.exit_code << " (signal " << result.signal << ")"
       << (result.timed_out ? " TIMED OUT" : "") << "\nstdout:\n"
       << result.out << "\nstderr:\n"
       << result.err;
  return text.str();
}

}  // namespace memtide::e2e
