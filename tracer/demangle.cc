// See demangle.h.
// libiberty.h declares basename itself unless told the system has one, and that declaration conflicts with
// glibc's in C++.
#define HAVE_DECL_BASENAME 1
#include <libiberty/demangle.h>

#include "demangle.h"

#include <cxxabi.h>
#include <stdlib.h>
#include <string.h>

#include "symbolizer.h"

namespace memtide {
namespace {

// Owns a string the demanglers return from malloc.
std::string Take(char* demangled) {
  std::string result(demangled);
  free(demangled);
  return result;
}

}  // namespace

std::string Demangle(const char* name) {
  if (name == nullptr || name[0] == '\0') return kUnknownFunction;
  if (strncmp(name, "__GI_", 5) == 0 && name[5] != '\0') name += 5;
  if (name[0] != '_') return name;
  // rust_demangle allocates with malloc and returns null for anything but a Rust symbol (never exits, unlike
  // libiberty's xmalloc-based entry points).
  if (name[1] == 'R' || name[1] == 'Z') {
    if (char* rust = rust_demangle(name, DMGL_PARAMS | DMGL_ANSI)) return Take(rust);
  }
  if (name[1] == 'Z') {
    int status = 0;
    char* demangled = abi::__cxa_demangle(name, nullptr, nullptr, &status);
    if (status == 0 && demangled != nullptr) return Take(demangled);
    free(demangled);
  }
  return name;
}

}  // namespace memtide
