// See gpu_probe.h. Runs in the CLI.
#include "gpu_probe.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "printable.h"

namespace memtide {
namespace {

constexpr int kNvidiaSmiTimeoutMs = 10000;
constexpr size_t kNvidiaSmiOutputLimit = 1 << 20;

// The few NVML declarations used (nvml.h is not on a machine without CUDA); their ABI has been stable since
// the _v2 entry points (CUDA 5).
using NvmlReturn = int;
using NvmlDevice = struct NvmlDeviceOpaque*;
struct NvmlMemory {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};
constexpr NvmlReturn kNvmlSuccess = 0;

struct Nvml {
  void* handle = nullptr;
  NvmlReturn (*init)() = nullptr;
  NvmlReturn (*shutdown)() = nullptr;
  NvmlReturn (*device_count)(unsigned int*) = nullptr;
  NvmlReturn (*device_by_index)(unsigned int, NvmlDevice*) = nullptr;
  NvmlReturn (*memory_info)(NvmlDevice, NvmlMemory*) = nullptr;
  NvmlReturn (*device_name)(NvmlDevice, char*, unsigned int) = nullptr;
  NvmlReturn (*driver_version)(char*, unsigned int) = nullptr;
  const char* (*error_string)(NvmlReturn) = nullptr;
};

template <typename F>
void Resolve(void* handle, const char* name, F* function) {
  *function = reinterpret_cast<F>(dlsym(handle, name));
}

std::string NvmlError(const Nvml& nvml, NvmlReturn code) {
  const char* text = nvml.error_string != nullptr ? nvml.error_string(code) : nullptr;
  return text != nullptr ? Printable(text) : absl::StrCat("NVML error ", code);
}

// True when NVML answered (even with zero devices); `note` says why not otherwise.
bool ProbeNvml(GpuReport* report, std::string* note) {
  Nvml nvml;
  nvml.handle = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (nvml.handle == nullptr) {
    *note = "no libnvidia-ml.so.1";
    return false;
  }
  Resolve(nvml.handle, "nvmlInit_v2", &nvml.init);
  Resolve(nvml.handle, "nvmlShutdown", &nvml.shutdown);
  Resolve(nvml.handle, "nvmlDeviceGetCount_v2", &nvml.device_count);
  Resolve(nvml.handle, "nvmlDeviceGetHandleByIndex_v2", &nvml.device_by_index);
  Resolve(nvml.handle, "nvmlDeviceGetMemoryInfo", &nvml.memory_info);
  Resolve(nvml.handle, "nvmlDeviceGetName", &nvml.device_name);
  Resolve(nvml.handle, "nvmlSystemGetDriverVersion", &nvml.driver_version);
  Resolve(nvml.handle, "nvmlErrorString", &nvml.error_string);
  if (nvml.init == nullptr || nvml.shutdown == nullptr || nvml.device_count == nullptr ||
      nvml.device_by_index == nullptr || nvml.memory_info == nullptr) {
    *note = "libnvidia-ml.so.1 lacks the NVML entry points";
    dlclose(nvml.handle);
    return false;
  }
  NvmlReturn status = nvml.init();
  if (status != kNvmlSuccess) {
    *note = absl::StrCat("NVML did not start: ", NvmlError(nvml, status));
    dlclose(nvml.handle);
    return false;
  }
  unsigned int count = 0;
  status = nvml.device_count(&count);
  if (status != kNvmlSuccess) {
    *note = absl::StrCat("NVML cannot count devices: ", NvmlError(nvml, status));
  }
  char text[96] = {};
  if (nvml.driver_version != nullptr && nvml.driver_version(text, sizeof(text) - 1) == kNvmlSuccess) {
    report->driver_version = Printable(absl::string_view(text, strnlen(text, sizeof(text))));
  }
  for (unsigned int i = 0; i < count && i < 64; ++i) {
    NvmlDevice device = nullptr;
    NvmlMemory memory{};
    if (nvml.device_by_index(i, &device) != kNvmlSuccess || nvml.memory_info(device, &memory) != kNvmlSuccess) {
      continue;
    }
    GpuDevice gpu;
    gpu.index = static_cast<int>(i);
    char name[128] = {};
    if (nvml.device_name != nullptr && nvml.device_name(device, name, sizeof(name) - 1) == kNvmlSuccess) {
      gpu.name = Printable(absl::string_view(name, strnlen(name, sizeof(name))));
    }
    gpu.used_bytes = static_cast<int64_t>(memory.used);
    gpu.total_bytes = static_cast<int64_t>(memory.total);
    report->devices.push_back(gpu);
  }
  nvml.shutdown();
  dlclose(nvml.handle);
  report->source = "nvml";
  return true;
}

int64_t MonotonicMs() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

// Runs `argv` (PATH search) with standard output captured, standard error discarded, killing it after the
// timeout. False when it cannot run, fails, or times out; `note` says which.
bool RunCapture(const std::vector<std::string>& argv, int timeout_ms, std::string* out, std::string* note) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    *note = "cannot create a pipe";
    return false;
  }
  std::vector<char*> args;
  for (const std::string& argument : argv) args.push_back(const_cast<char*>(argument.c_str()));
  args.push_back(nullptr);
  pid_t child = fork();
  if (child < 0) {
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    *note = "cannot fork";
    return false;
  }
  if (child == 0) {
    dup2(pipe_fds[1], STDOUT_FILENO);
    int null_fd = open("/dev/null", O_WRONLY);
    if (null_fd >= 0) dup2(null_fd, STDERR_FILENO);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(pipe_fds[1]);
  int64_t deadline = MonotonicMs() + timeout_ms;
  bool timed_out = false;
  char buffer[4096];
  for (;;) {
    int64_t left = deadline - MonotonicMs();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd poll_fd{pipe_fds[0], POLLIN, 0};
    int ready = poll(&poll_fd, 1, static_cast<int>(left));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    ssize_t got = read(pipe_fds[0], buffer, sizeof(buffer));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    if (out->size() < kNvidiaSmiOutputLimit) out->append(buffer, static_cast<size_t>(got));
  }
  close(pipe_fds[0]);
  if (timed_out) kill(child, SIGKILL);
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    *note = absl::StrCat(argv[0], " did not finish within ", timeout_ms / 1000, " s (driver hung?)");
    return false;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    *note = WIFEXITED(status) && WEXITSTATUS(status) == 127 ? absl::StrCat("no ", argv[0])
                                                            : absl::StrCat(argv[0], " failed");
    return false;
  }
  return true;
}

}  // namespace

std::vector<GpuDevice> ParseNvidiaSmiCsv(absl::string_view text) {
  std::vector<GpuDevice> devices;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    std::vector<absl::string_view> fields = absl::StrSplit(line, ',');
    if (fields.size() < 4) continue;
    GpuDevice device;
    int64_t used_mib = 0, total_mib = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(fields[0]), &device.index) ||
        !absl::SimpleAtoi(absl::StripAsciiWhitespace(fields[fields.size() - 2]), &used_mib) ||
        !absl::SimpleAtoi(absl::StripAsciiWhitespace(fields[fields.size() - 1]), &total_mib) || used_mib < 0 ||
        total_mib < 0 || used_mib > (INT64_MAX >> 20) || total_mib > (INT64_MAX >> 20)) {
      continue;
    }
    // A name may contain commas: it is everything between the index and the two numbers.
    std::string name;
    for (size_t i = 1; i + 2 < fields.size(); ++i) name += std::string(i > 1 ? "," : "") + std::string(fields[i]);
    device.name = Printable(absl::StripAsciiWhitespace(name));
    device.used_bytes = used_mib << 20;
    device.total_bytes = total_mib << 20;
    devices.push_back(std::move(device));
  }
  return devices;
}

GpuReport ProbeGpus() {
  GpuReport report;
  std::string nvml_note;
  if (ProbeNvml(&report, &nvml_note)) return report;
  std::string output, smi_note;
  if (RunCapture({"nvidia-smi", "--query-gpu=index,name,memory.used,memory.total", "--format=csv,noheader,nounits"},
                 kNvidiaSmiTimeoutMs, &output, &smi_note)) {
    report.source = "nvidia-smi";
    report.devices = ParseNvidiaSmiCsv(output);
    report.note = nvml_note;
    return report;
  }
  report.source = "none";
  report.note = absl::StrCat(nvml_note, "; ", smi_note);
  return report;
}

nlohmann::json GpuReportJson(const GpuReport& report) {
  nlohmann::json devices = nlohmann::json::array();
  for (const GpuDevice& device : report.devices) {
    devices.push_back({{"index", device.index},
                       {"name", device.name},
                       {"used_bytes", device.used_bytes},
                       {"total_bytes", device.total_bytes}});
  }
  nlohmann::json json = {{"source", report.source}, {"devices", devices}, {"note", report.note}};
  if (!report.driver_version.empty()) json["driver_version"] = report.driver_version;
  return json;
}

}  // namespace memtide
