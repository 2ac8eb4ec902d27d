// See export_command.h. Runs in the CLI.
#include "export_command.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "fmt/format.h"
#include "httplib.h"
#include "prometheus_format.h"
#include "segment_scan.h"
#include "stop_signal.h"

namespace memtide {
namespace {

constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

std::string CurrentMetrics(const std::vector<std::string>& directories) {
  SegmentScan scan = ScanSegments(directories);
  return PrometheusText(scan.segments, scan.problems.size());
}

}  // namespace

absl::Status WriteFileAtomically(const std::string& path, const std::string& contents) {
  // node_exporter reads only *.prom, so the temporary name never gets collected half-written.
  std::string temporary = fmt::format("{}.{}.tmp", path, getpid());
  int fd = open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return absl::InvalidArgumentError(absl::StrCat("cannot write ", temporary, ": ", strerror(errno)));
  size_t written = 0;
  while (written < contents.size()) {
    ssize_t got = write(fd, contents.data() + written, contents.size() - written);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    written += static_cast<size_t>(got);
  }
  bool ok = written == contents.size() && fsync(fd) == 0;
  int saved_errno = errno;
  ok = close(fd) == 0 && ok;
  if (!ok || rename(temporary.c_str(), path.c_str()) != 0) {
    if (ok) saved_errno = errno;
    unlink(temporary.c_str());
    return absl::InternalError(absl::StrCat("cannot write ", path, ": ", strerror(saved_errno)));
  }
  return absl::OkStatus();
}

absl::Status ExportCommand(const ExportOptions& options) {
  CatchStopSignals();
  std::optional<ListenAddress> listen = options.listen;
  if (!listen.has_value() && options.textfile.empty()) listen = ListenAddress{"127.0.0.1", 9464};
  if (!options.textfile.empty() && options.once && !listen.has_value()) {
    return WriteFileAtomically(options.textfile, CurrentMetrics(options.directories));
  }

  httplib::Server server;
  std::thread serving;
  if (listen.has_value()) {
    const std::vector<std::string> directories = options.directories;
    server.Get("/metrics", [directories](const httplib::Request&, httplib::Response& response) {
      response.set_content(CurrentMetrics(directories), kContentType);
    });
    server.Get("/", [](const httplib::Request&, httplib::Response& response) {
      response.set_content("memtide exporter: metrics are on /metrics\n", "text/plain; charset=utf-8");
    });
    int port = listen->port;
    if (port == 0) {
      port = server.bind_to_any_port(listen->host);
      if (port < 0) port = 0;
    } else if (!server.bind_to_port(listen->host, port)) {
      port = 0;
    }
    if (port == 0) {
      return absl::UnavailableError(absl::StrCat("cannot listen on ", listen->host, ":", listen->port, ": ",
                                                 strerror(errno), " (in use, or not an address of this machine?)"));
    }
    std::string host = listen->host.find(':') != std::string::npos ? "[" + listen->host + "]" : listen->host;
    fmt::print(stderr, "memtide: serving Prometheus metrics on http://{}:{}/metrics\n", host, port);
    fflush(stderr);
    serving = std::thread([&server] { server.listen_after_bind(); });
  }

  absl::Status status = absl::OkStatus();
  for (;;) {
    if (!options.textfile.empty()) {
      status = WriteFileAtomically(options.textfile, CurrentMetrics(options.directories));
      if (!status.ok()) break;
      if (options.once) break;
    }
    if (SleepUnlessStopped(options.textfile.empty() ? 3600 * 1000 : options.interval_ms)) break;
  }
  if (serving.joinable()) {
    if (options.once && status.ok()) {
      // --once with both: the file is written; serve until interrupted.
      while (!SleepUnlessStopped(3600 * 1000)) {
      }
    }
    server.stop();
    serving.join();
  }
  return status;
}

}  // namespace memtide
