/* End-to-end program: MEMTIDE_LOG is a file memtide writes to, never a descriptor of the program's.
 * argv[1] is MEMTIDE_LOG's path, argv[2] a data file of the program's own. Acts like a daemon: checks that
 * no descriptor it holds is the log file, closes every descriptor above 2, changes to /, opens its data file
 * (which gets number 3, the lowest free), writes one line to it, and waits until the monitor has created the
 * process's segment (with MEMTIDE_VERBOSE=1 memtide logs a line then, after the program's file is open).
 * The driver then checks the data file holds the program's line alone and the log file memtide's lines.
 * Output: "ok fd=<the data file's number>". */
#define _GNU_SOURCE
#include <fcntl.h>
#include <time.h>

#include "descriptor_checks.h"
#include "e2e_check.h"

int main(int argc, char** argv) {
  E2eRequireApi();
  E2E_CHECK(argc == 3, "usage: log_file LOG_PATH DATA_PATH");
  const char* directory = getenv("MEMTIDE_DIR");
  E2E_CHECK(directory != NULL, "MEMTIDE_DIR is not set");
  char log_target[4096];
  E2E_CHECK(realpath(argv[1], log_target) != NULL, "the log file %s does not exist at the start of main", argv[1]);
  for (int fd = 3; fd < 1024; ++fd) {
    char target[4096];
    DescriptorTarget(fd, target, sizeof(target));
    if (target[0] == '\0') continue;
    E2E_CHECK(strcmp(target, log_target) != 0, "descriptor %d is memtide's log file %s", fd, target);
  }
  close_range(3, ~0U, 0);
  E2E_CHECK(chdir("/") == 0, "chdir /");
  int data = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  E2E_CHECK(data >= 0, "cannot open %s", argv[2]);
  E2eWriteLine(data, "program data");
  for (int i = 0; i < 2000 && !SegmentFileExists(directory); ++i) usleep(5000);
  E2E_CHECK(SegmentFileExists(directory), "no segment in %s after 10 s", directory);
  usleep(20000); /* a few more monitor ticks */
  close(data);
  E2eWriteLine(1, "ok fd=%d", data);
  return 0;
}
