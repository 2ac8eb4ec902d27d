// See printable.h. Runs in the CLI.
#include "printable.h"

#include <stdint.h>

namespace memtide {
namespace {

// Length of the valid UTF-8 sequence at text[i] and its code point, or 0 when invalid (overlong forms,
// surrogates and values above U+10FFFF are invalid).
size_t DecodeUtf8(absl::string_view text, size_t i, uint32_t* code_point) {
  auto byte = [&](size_t k) { return static_cast<uint8_t>(text[k]); };
  uint8_t lead = byte(i);
  size_t length;
  uint32_t value;
  if (lead < 0x80) {
    *code_point = lead;
    return 1;
  } else if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
    value = lead & 0x1F;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    value = lead & 0x0F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    value = lead & 0x07;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  for (size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    value = (value << 6) | (byte(i + k) & 0x3F);
  }
  if ((length == 3 && value < 0x800) || (length == 4 && (value < 0x10000 || value > 0x10FFFF)) ||
      (value >= 0xD800 && value <= 0xDFFF)) {
    return 0;
  }
  *code_point = value;
  return length;
}

}  // namespace

std::string Printable(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    uint32_t code_point = 0;
    size_t length = DecodeUtf8(text, i, &code_point);
    if (length == 0) {
      out += '?';
      ++i;
      continue;
    }
    bool control = code_point < 0x20 || code_point == 0x7F || (code_point >= 0x80 && code_point <= 0x9F);
    if (control) {
      out += '?';
    } else {
      out.append(text.data() + i, length);
    }
    i += length;
  }
  return out;
}

std::string Truncate(absl::string_view printable, size_t columns) {
  size_t count = 0;
  for (size_t i = 0; i < printable.size(); ++i) {
    if ((static_cast<uint8_t>(printable[i]) & 0xC0) == 0x80) continue;  // continuation byte
    if (count == columns) {
      if (columns == 0) return "";
      // Cut before the last kept code point and mark the cut.
      size_t end = i;
      do {
        --end;
      } while (end > 0 && (static_cast<uint8_t>(printable[end]) & 0xC0) == 0x80);
      return std::string(printable.substr(0, end)) + "~";
    }
    ++count;
  }
  return std::string(printable);
}

}  // namespace memtide
