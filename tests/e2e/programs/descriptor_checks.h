/* Shared by the programs that check memtide stays out of their descriptor table (fds_untouched, log_file,
 * tests/trace's snapshot_descriptors): whether this process's segment file exists yet (the monitor has
 * started, and with it memtide's descriptor thread), and whether unshare(CLONE_FILES) is allowed here
 * (container seccomp profiles refuse it, and memtide's descriptors are then shared: a skip, not a failure),
 * and which descriptors appeared. Each opens descriptors of its own, closed before it returns. */
#ifndef MEMTIDE_TESTS_E2E_PROGRAMS_DESCRIPTOR_CHECKS_H_
#define MEMTIDE_TESTS_E2E_PROGRAMS_DESCRIPTOR_CHECKS_H_

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static inline int SegmentFileExists(const char* directory) {
  char prefix[64];
  snprintf(prefix, sizeof(prefix), "memtide.%ld.", (long)getpid()); /* MEMTIDE_SEGMENT_PREFIX, segment.h */
  DIR* listing = opendir(directory);
  if (listing == NULL) return 0;
  int found = 0;
  for (struct dirent* entry; !found && (entry = readdir(listing)) != NULL;) {
    found = strncmp(entry->d_name, prefix, strlen(prefix)) == 0;
  }
  closedir(listing);
  return found;
}

static inline int UnshareAllowed(void) {
  pid_t child = fork();
  if (child == 0) _exit(unshare(CLONE_FILES) == 0 ? 0 : 1);
  int status = 0;
  return child > 0 && waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* What descriptor `fd` refers to (its /proc/self/fd link), "" when unreadable. */
static inline void DescriptorTarget(int fd, char* target, size_t size) {
  char link[64];
  snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  ssize_t length = readlink(link, target, size - 1);
  target[length > 0 ? length : 0] = '\0';
}

/* The lowest descriptor in [lowest, highest] that is open now and was not in `inherited` (indexed by number),
 * with its target; -1 when there is none. */
static inline int FirstNewDescriptor(const char* inherited, int lowest, int highest, char* target, size_t size) {
  for (int fd = lowest; fd <= highest; ++fd) {
    if (inherited[fd] || fcntl(fd, F_GETFD) < 0) continue;
    DescriptorTarget(fd, target, size);
    return fd;
  }
  return -1;
}

#endif /* MEMTIDE_TESTS_E2E_PROGRAMS_DESCRIPTOR_CHECKS_H_ */
