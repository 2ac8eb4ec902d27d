// See byte_format.h.
#include "byte_format.h"

#include "fmt/format.h"

namespace memtide {

std::string HumanBytes(int64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = bytes < 0 ? -static_cast<double>(bytes) : static_cast<double>(bytes);  // INT64_MIN too
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  const char* sign = bytes < 0 ? "-" : "";
  if (unit == 0) return fmt::format("{}{} B", sign, static_cast<int64_t>(value));
  return fmt::format("{}{:.1f} {}", sign, value, kUnits[unit]);
}

std::string GroupedCount(int64_t count) {
  std::string digits = std::to_string(count < 0 ? -(count + 1) + 1ULL : static_cast<uint64_t>(count));  // INT64_MIN too
  std::string grouped;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) grouped += ',';
    grouped += digits[i];
  }
  return count < 0 ? "-" + grouped : grouped;
}

}  // namespace memtide
