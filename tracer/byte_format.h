// Human-readable numbers for text output (the CLI, the leak report at exit): 12.3 MiB, 1,234,567.
#ifndef MEMTIDE_TRACER_BYTE_FORMAT_H_
#define MEMTIDE_TRACER_BYTE_FORMAT_H_

#include <stdint.h>

#include <string>

namespace memtide {

std::string HumanBytes(int64_t bytes);
std::string GroupedCount(int64_t count);

}  // namespace memtide

#endif  // MEMTIDE_TRACER_BYTE_FORMAT_H_
