// Human-readable numbers for the CLI's text output: 12.3 MiB, 1,234,567, 1.23 s.
#ifndef MEMTIDE_VIEWER_BYTE_FORMAT_H_
#define MEMTIDE_VIEWER_BYTE_FORMAT_H_

#include <stdint.h>

#include <string>

namespace memtide {

std::string HumanBytes(int64_t bytes);
std::string GroupedCount(int64_t count);

}  // namespace memtide

#endif  // MEMTIDE_VIEWER_BYTE_FORMAT_H_
