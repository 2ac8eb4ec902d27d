// See preload_reach.h.
#include "preload_reach.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_split.h"
#include "fmt/format.h"

namespace memtide {
namespace {

std::string FindInPath(const std::string& program) {
  if (program.find('/') != std::string::npos) return program;
  const char* path = getenv("PATH");
  for (absl::string_view folder : absl::StrSplit(path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin", ':')) {
    std::string candidate = fmt::format("{}/{}", folder.empty() ? std::string(".") : std::string(folder), program);
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

// True for an ELF executable without a PT_INTERP header: the kernel starts it directly.
bool StaticallyLinked(int fd) {
  if (elf_version(EV_CURRENT) == EV_NONE) return false;
  Elf* elf = elf_begin(fd, ELF_C_READ, nullptr);
  if (elf == nullptr) return false;
  bool is_static = false;
  GElf_Ehdr header;
  size_t count = 0;
  if (elf_kind(elf) == ELF_K_ELF && gelf_getehdr(elf, &header) != nullptr &&
      (header.e_type == ET_EXEC || header.e_type == ET_DYN) && elf_getphdrnum(elf, &count) == 0) {
    bool loadable = false;
    bool interpreter = false;
    for (size_t i = 0; i < count; ++i) {
      GElf_Phdr program_header;
      if (gelf_getphdr(elf, static_cast<int>(i), &program_header) == nullptr) continue;
      loadable = loadable || program_header.p_type == PT_LOAD;
      interpreter = interpreter || program_header.p_type == PT_INTERP;
    }
    // A shared library has no PT_INTERP either, but is not started by exec; static-pie is ET_DYN.
    is_static = loadable && !interpreter && header.e_entry != 0;
  }
  elf_end(elf);
  return is_static;
}

}  // namespace

std::string WhyPreloadCannotReach(const std::string& program) {
  const std::string path = FindInPath(program);
  if (path.empty()) return "";
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  struct stat status {};
  std::string why;
  // The dynamic loader run as a program (ld-linux-x86-64.so.2 ./prog) has no PT_INTERP either, and it is the
  // one applying LD_PRELOAD to the program it loads.
  const std::string name = path.substr(path.rfind('/') + 1);
  const bool loader = name.rfind("ld-linux", 0) == 0 || name.rfind("ld.so", 0) == 0 || name.rfind("ld64.so", 0) == 0;
  if (fstat(fd, &status) == 0 && S_ISREG(status.st_mode)) {
    if (!loader && StaticallyLinked(fd)) {
      why = fmt::format("{} is statically linked: no dynamic loader runs for it, and the loader is what applies "
                        "LD_PRELOAD",
                        path);
    } else if (((status.st_mode & S_ISUID) != 0 && status.st_uid != getuid()) ||
               ((status.st_mode & S_ISGID) != 0 && status.st_gid != getgid())) {
      why = fmt::format("{} is set-user-ID or set-group-ID: the loader ignores LD_PRELOAD for it", path);
    }
  }
  close(fd);
  return why;
}

}  // namespace memtide
