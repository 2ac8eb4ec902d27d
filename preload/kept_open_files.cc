// See kept_open_files.h. Runs on the monitor thread (and whoever else reads memtide's statistics).
#include "kept_open_files.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>

namespace memtide {
namespace {

// A /proc and cgroup v1 monitor tick reads 7 files; cgroup v2's walk up to the root reads one per level.
constexpr int kKeptFiles = 24;
constexpr size_t kPathBytes = 256;
// The numbers memtide moves to: below the usual soft limit of 1024 (and below FD_SETSIZE, so that a program
// that select()s never meets them), above what programs normally reach.
constexpr int kHighestFloor = 1024 - 64;

struct KeptFile {
  char path[kPathBytes];
  pid_t thread;  // for /proc/thread-self paths: the thread that opened it (they name the opener); else 0
  int fd;        // -1: unused entry
  dev_t device;
  ino_t inode;
};

std::atomic<bool> g_enabled{false};
pthread_mutex_t g_mutex = PTHREAD_MUTEX_INITIALIZER;
KeptFile g_files[kKeptFiles];
int g_count = 0;

int HighFloor() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return kHighestFloor;
  const rlim_t soft = limit.rlim_cur;
  if (soft <= 128) return -1;  // too few numbers to set any apart
  return soft - 64 < static_cast<rlim_t>(kHighestFloor) ? static_cast<int>(soft - 64) : kHighestFloor;
}

ssize_t ReadAllAt(int fd, char* buffer, size_t size) {
  size_t total = 0;
  while (total + 1 < size) {
    const ssize_t got = pread(fd, buffer + total, size - 1 - total, static_cast<off_t>(total));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return -1;
    if (got == 0) break;
    total += static_cast<size_t>(got);
  }
  buffer[total] = '\0';
  return static_cast<ssize_t>(total);
}

bool StillOurs(const KeptFile& file) {
  struct stat now;
  return fstat(file.fd, &now) == 0 && now.st_dev == file.device && now.st_ino == file.inode;
}

pid_t ThreadKey(const char* path) {
  return strncmp(path, "/proc/thread-self/", strlen("/proc/thread-self/")) == 0 ? gettid() : 0;
}

// Under g_mutex.
KeptFile* Find(const char* path) {
  const pid_t thread = ThreadKey(path);
  for (int i = 0; i < g_count; ++i) {
    if (g_files[i].fd >= 0 && g_files[i].thread == thread && strcmp(g_files[i].path, path) == 0) return &g_files[i];
  }
  return nullptr;
}

// Under g_mutex. A new entry for `path`, or null when the table is full.
KeptFile* Open(const char* path, int* open_errno) {
  KeptFile* slot = nullptr;
  for (int i = 0; i < g_count && slot == nullptr; ++i) {
    if (g_files[i].fd < 0) slot = &g_files[i];
  }
  if (slot == nullptr && g_count < kKeptFiles) slot = &g_files[g_count++];
  if (slot == nullptr) return nullptr;
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *open_errno = errno;
    return nullptr;
  }
  struct stat opened;
  if (fstat(fd, &opened) != 0) {
    *open_errno = errno;
    close(fd);
    return nullptr;
  }
  slot->fd = MoveAboveProgramDescriptors(fd);
  slot->device = opened.st_dev;
  slot->inode = opened.st_ino;
  slot->thread = ThreadKey(path);
  strcpy(slot->path, path);
  return slot;
}

}  // namespace

void KeepReadFilesOpen() { g_enabled.store(true, std::memory_order_release); }
bool ReadFilesKeptOpen() { return g_enabled.load(std::memory_order_acquire); }

ssize_t ReadThroughKeptFile(const char* path, char* buffer, size_t size) {
  if (strlen(path) >= kPathBytes || size == 0) return kNotKept;
  if (pthread_mutex_trylock(&g_mutex) != 0) return kNotKept;
  KeptFile* file = Find(path);
  if (file != nullptr && !StillOurs(*file)) {
    file->fd = -1;  // closed or reused by the program: its number is not ours to close any more
    file = nullptr;
  }
  ssize_t result = kNotKept;
  if (file == nullptr) {
    int open_errno = 0;
    file = Open(path, &open_errno);
    if (file == nullptr && open_errno != 0) result = -1;
  }
  if (file != nullptr) result = ReadAllAt(file->fd, buffer, size);
  pthread_mutex_unlock(&g_mutex);
  return result;
}

int MoveAboveProgramDescriptors(int fd) {
  const int floor = HighFloor();
  if (fd < 0 || floor < 0 || fd >= floor) return fd;
  const int moved = fcntl(fd, F_DUPFD_CLOEXEC, floor);
  if (moved < 0) return fd;
  close(fd);
  return moved;
}

void CloseKeptFilesInChild() {
  pthread_mutex_init(&g_mutex, nullptr);
  for (int i = 0; i < g_count; ++i) {
    if (g_files[i].fd >= 0 && StillOurs(g_files[i])) close(g_files[i].fd);
    g_files[i].fd = -1;
  }
  g_count = 0;
}

}  // namespace memtide
