// Unit tests for tracer/demangle.cc: C++, Rust's two manglings (symbols taken from a rustc 1.8x binary's
// symbol table), glibc's aliases and names that are not mangled.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "demangle.h"

#include <doctest/doctest.h>

namespace memtide {
namespace {

TEST_CASE("C++") {
  CHECK(Demangle("_ZNSt6vectorIiSaIiEE9push_backERKi") == "std::vector<int, std::allocator<int> >::push_back(int const&)");
  CHECK(Demangle("_Znwm") == "operator new(unsigned long)");
}

TEST_CASE("Rust, legacy mangling: the hash goes, the escapes are read") {
  CHECK(Demangle("_ZN5alloc7raw_vec20RawVecInner$LT$A$GT$11finish_grow17hd4cfbc7089650085E") ==
        "alloc::raw_vec::RawVecInner<A>::finish_grow");
  // LLVM's suffix for a local symbol it renamed.
  CHECK(Demangle("_ZN3std2rt10lang_start28_$u7b$$u7b$closure$u7d$$u7d$17h71acb6ed29efb28bE.llvm.3002946692891321626") ==
        "std::rt::lang_start::{{closure}}");
}

TEST_CASE("Rust, v0 mangling") {
  CHECK(Demangle("_RNvNtCslNYArtu3iFV_5alloc5alloc7realloc") == "alloc::alloc::realloc");
  CHECK(Demangle("_RNvMs0_NtNtNtCsjrHSEGnQ3l9_3std3sys6thread4unixNtB5_6Thread3new") ==
        "<std::sys::thread::unix::Thread>::new");
}

TEST_CASE("names that are not mangled, glibc's aliases, nothing") {
  CHECK(Demangle("main") == "main");
  CHECK(Demangle("__GI__IO_file_doallocate") == "_IO_file_doallocate");
  CHECK(Demangle("_Z_not_really") == "_Z_not_really");
  CHECK(Demangle("_RNotRust") == "_RNotRust");
  CHECK(Demangle("") == "??");
  CHECK(Demangle(nullptr) == "??");
}

}  // namespace
}  // namespace memtide
