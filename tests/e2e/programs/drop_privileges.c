/* End-to-end program: drops root privileges the way setpriv and container entrypoints do (keep capabilities
 * across setresuid, raise them again with capset, then setresgid and setgroups), which glibc applies to every
 * thread and aborts on if one thread's result differs (regression: a traced `setpriv --reuid` aborted because
 * memtide's monitor thread had not kept its capabilities). Then checks that counting goes on and that the
 * monitor thread came back: it creates the segment in MEMTIDE_DIR (writable by nobody) as the new user.
 * Output: "drop_privileges ok", or "drop_privileges skipped: ..." when not run as root. */
#define _GNU_SOURCE  // setresuid, setresgid
#include <dirent.h>
#include <grp.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "e2e_check.h"

enum { kNobody = 65534 };

static void RaiseEffectiveCapabilities(void) {
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  E2E_CHECK(syscall(SYS_capget, &header, data) == 0, "capget failed");
  data[0].effective = data[0].permitted;
  data[1].effective = data[1].permitted;
  E2E_CHECK(syscall(SYS_capset, &header, data) == 0, "capset failed");
}

static int SegmentExists(const char* dir) {
  char prefix[64];
  snprintf(prefix, sizeof(prefix), "memtide.%d.", (int)getpid());
  DIR* folder = opendir(dir);
  if (folder == NULL) return 0;
  int found = 0;
  for (struct dirent* entry; (entry = readdir(folder)) != NULL;) {
    if (strncmp(entry->d_name, prefix, strlen(prefix)) == 0) found = 1;
  }
  closedir(folder);
  return found;
}

int main(void) {
  E2eRequireApi();
  if (geteuid() != 0) {
    printf("drop_privileges skipped: needs root\n");
    return 0;
  }
  E2E_CHECK(prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) == 0, "PR_SET_KEEPCAPS failed");
  E2E_CHECK(setresuid(kNobody, kNobody, kNobody) == 0, "setresuid failed");
  RaiseEffectiveCapabilities();
  E2E_CHECK(setresgid(kNobody, kNobody, kNobody) == 0, "setresgid failed");
  E2E_CHECK(setgroups(0, NULL) == 0, "setgroups failed");
  E2E_CHECK(getuid() == kNobody && getgid() == kNobody, "credentials did not change");

  struct memtide_heap_stats before = E2eStats();
  void* block = malloc(13001);
  E2eEscape(block);
  struct memtide_heap_stats after = E2eStats();
  size_t usable = malloc_usable_size(block);
  E2E_CHECK_HEAP_DELTA(before, after, usable, 1, 0, usable);
  free(block);

  const char* dir = getenv("MEMTIDE_DIR");
  E2E_CHECK(dir != NULL, "MEMTIDE_DIR is not set");
  for (int i = 0; i < 50 && !SegmentExists(dir); ++i) {
    struct timespec nap = {0, 20 * 1000 * 1000};
    nanosleep(&nap, NULL);
  }
  E2E_CHECK(SegmentExists(dir), "no segment appeared after the credential change: the monitor did not come back");
  printf("drop_privileges ok\n");
  return 0;
}
