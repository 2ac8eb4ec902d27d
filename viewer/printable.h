// Text from a segment (command lines, mark labels) made safe to print: whoever wrote the file chose those
// bytes, and a terminal obeys escape sequences. Runs in the CLI.
#ifndef MEMTIDE_VIEWER_PRINTABLE_H_
#define MEMTIDE_VIEWER_PRINTABLE_H_

#include <string>

#include "absl/strings/string_view.h"

namespace memtide {

// Valid UTF-8 with C0/C1 controls and DEL replaced by '?', and every byte of an invalid sequence by '?'.
// The result is valid UTF-8, so it is also safe for JSON and Prometheus label values.
std::string Printable(absl::string_view text);

// At most `columns` code points, the last one '~' when something was cut (for fixed-width tables).
std::string Truncate(absl::string_view printable, size_t columns);

}  // namespace memtide

#endif  // MEMTIDE_VIEWER_PRINTABLE_H_
