// Function names as a reader knows them: C++ (Itanium ABI) through libstdc++'s demangler, Rust (legacy and
// v0 mangling) through libiberty's, the same code binutils and gdb use. Rust's legacy symbols look like C++
// ones and demangle as C++ to names a reader cannot use ("RawVecInner$LT$A$GT$::finish_grow::h0d4c..."), so
// Rust is tried first; a symbol of neither kind is returned as it is.
#ifndef MEMTIDE_TRACER_DEMANGLE_H_
#define MEMTIDE_TRACER_DEMANGLE_H_

#include <string>

namespace memtide {

// `name` demangled; "??" (kUnknownFunction) for null or empty. glibc's internal aliases (__GI_malloc) get
// their public name, the one a reader and a suppression know.
std::string Demangle(const char* name);

}  // namespace memtide

#endif  // MEMTIDE_TRACER_DEMANGLE_H_
