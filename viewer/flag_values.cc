// See flag_values.h. Runs in the CLI.
#include "flag_values.h"

#include <string.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "options.h"

namespace memtide {
namespace {

// Quoted for an error message: bounded and printable, whatever the user typed.
std::string Quote(absl::string_view text) {
  std::string quoted = "'";
  for (char c : text.substr(0, 64)) quoted += absl::ascii_isprint(static_cast<unsigned char>(c)) ? c : '?';
  if (text.size() > 64) quoted += "...";
  return quoted + "'";
}

bool AllDigitsOrDot(absl::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c)) && c != '.') return false;
  }
  return true;
}

absl::StatusOr<int64_t> ParseBoundedMs(absl::string_view flag, absl::string_view text, int64_t min_ms, int64_t max_ms,
                                       absl::string_view range) {
  std::string owned(text);
  if (owned.size() != strlen(owned.c_str())) {
    return absl::InvalidArgumentError(absl::StrCat(Quote(text), " contains a NUL byte"));
  }
  if (AllDigitsOrDot(owned)) owned += "s";
  int64_t milliseconds = 0;
  if (!ParseDurationMs(owned.c_str(), &milliseconds)) {
    return absl::InvalidArgumentError(
        absl::StrCat(Quote(text), " is not a duration such as 60 (seconds), 500ms, 2s or 1m"));
  }
  if (milliseconds < min_ms || milliseconds > max_ms) {
    return absl::InvalidArgumentError(absl::StrCat(Quote(text), " is out of range for ", flag, " (", range, ")"));
  }
  return milliseconds;
}

}  // namespace

absl::StatusOr<int64_t> ParseIntervalMs(absl::string_view text) {
  return ParseBoundedMs("--interval", text, 10, 24 * 3600 * 1000, "10ms to 24h");
}

absl::StatusOr<int64_t> ParseTimeoutMs(absl::string_view text) {
  return ParseBoundedMs("--timeout", text, 1, 3600 * 1000, "1ms to 1h");
}

absl::StatusOr<int64_t> ParseGraceMs(absl::string_view text) {
  return ParseBoundedMs("--grace", text, 0, 24 * 3600 * 1000, "0 to 24h");
}

absl::StatusOr<SortKey> ParseSortKey(absl::string_view text) {
  for (SortKey key : {SortKey::kRss, SortKey::kHeap, SortKey::kPeak, SortKey::kGpu, SortKey::kPid}) {
    if (text == SortKeyName(key)) return key;
  }
  return absl::InvalidArgumentError(absl::StrCat(Quote(text), " is not one of rss, heap, peak, gpu, pid"));
}

const char* SortKeyName(SortKey key) {
  switch (key) {
    case SortKey::kRss:
      return "rss";
    case SortKey::kHeap:
      return "heap";
    case SortKey::kPeak:
      return "peak";
    case SortKey::kGpu:
      return "gpu";
    case SortKey::kPid:
      return "pid";
  }
  return "rss";
}

absl::StatusOr<ListenAddress> ParseListenAddress(absl::string_view text) {
  auto invalid = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat(Quote(text), " ", why, " (expected HOST:PORT, e.g. 127.0.0.1:9464 or [::1]:9464)"));
  };
  ListenAddress address;
  absl::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == absl::string_view::npos) return invalid("has no closing ']'");
    address.host = std::string(text.substr(1, close - 1));
    if (close + 1 >= text.size() || text[close + 1] != ':') return invalid("has no :PORT after the address");
    port_text = text.substr(close + 2);
    if (address.host.find_first_not_of("0123456789abcdefABCDEF:.") != std::string::npos) {
      return invalid("has an IPv6 address with characters other than hex digits, ':' and '.'");
    }
  } else {
    size_t colon = text.rfind(':');
    if (colon == absl::string_view::npos) return invalid("has no :PORT");
    address.host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
    if (address.host.find(':') != std::string::npos) return invalid("is an IPv6 address without [brackets]");
    for (char c : address.host) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') {
        return invalid("has a host name with characters other than letters, digits, '.', '-' and '_'");
      }
    }
  }
  if (address.host.empty()) return invalid("has no host (use 0.0.0.0 for every interface)");
  if (address.host.size() > 253) return invalid("has a host name longer than 253 characters");
  if (port_text.empty() || port_text.size() > 5) return invalid("has no port number from 0 to 65535");
  for (char c : port_text) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return invalid("has a port that is not a number");
  }
  int port = 0;
  if (!absl::SimpleAtoi(port_text, &port) || port > 65535) return invalid("has a port above 65535");
  address.port = port;
  return address;
}

}  // namespace memtide
