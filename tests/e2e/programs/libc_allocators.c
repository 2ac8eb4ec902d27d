/* End-to-end program: memory that libc allocates for the program (strdup, strndup, getline, asprintf)
 * goes through the interposed malloc/realloc and is counted exactly. Output: "ok". */
#define _GNU_SOURCE
#include <stdio.h>

#include "e2e_check.h"

int main(void) {
  E2eRequireApi();
  static char text[11001];
  memset(text, 'a', sizeof(text) - 1);

  struct memtide_heap_stats before = E2eStats();
  char *copy = strdup(text);
  struct memtide_heap_stats after = E2eStats();
  E2E_CHECK(copy != NULL, "strdup failed");
  size_t usable = malloc_usable_size(copy);
  E2E_CHECK_HEAP_DELTA(before, after, usable, 1, 0, usable);
  free(copy);

  before = E2eStats();
  copy = strndup(text, 10000);
  after = E2eStats();
  E2E_CHECK(copy != NULL && strlen(copy) == 10000, "strndup failed");
  usable = malloc_usable_size(copy);
  E2E_CHECK_HEAP_DELTA(before, after, usable, 1, 0, usable);
  free(copy);

  /* getline: the stream gets a caller-provided buffer first, so the line is its only allocation. It
   * may grow the line with realloc several times: the net effect is one live block. */
  char path[] = "/tmp/memtide_e2e_getline_XXXXXX";
  int fd = mkstemp(path);
  E2E_CHECK(fd >= 0, "mkstemp failed");
  unlink(path);
  for (int i = 0; i < 13; ++i) E2E_CHECK(write(fd, text, 1000) == 1000, "write failed");
  E2E_CHECK(write(fd, "\n", 1) == 1, "write failed");
  lseek(fd, 0, SEEK_SET);
  FILE *file = fdopen(fd, "r");
  E2E_CHECK(file != NULL, "fdopen failed");
  static char stream_buffer[4096];
  setvbuf(file, stream_buffer, _IOFBF, sizeof(stream_buffer));
  char *line = NULL;
  size_t capacity = 0;
  before = E2eStats();
  ssize_t length = getline(&line, &capacity, file);
  after = E2eStats();
  E2E_CHECK_EQ("getline length", length, 13001);
  usable = malloc_usable_size(line);
  E2E_CHECK_EQ("getline: current_bytes delta", after.current_bytes - before.current_bytes, usable);
  E2E_CHECK_EQ("getline: live blocks delta",
               (after.allocations - after.frees) - (before.allocations - before.frees), 1);
  before = after;
  free(line);
  after = E2eStats();
  E2E_CHECK_HEAP_DELTA(before, after, 0 - (uint64_t)usable, 0, 1, 0);

  before = E2eStats();
  char *formatted = NULL;
  int n = asprintf(&formatted, "%s-%d", text, 14001);
  after = E2eStats();
  E2E_CHECK(n > 0 && formatted != NULL, "asprintf failed");
  usable = malloc_usable_size(formatted);
  E2E_CHECK_EQ("asprintf: current_bytes delta", after.current_bytes - before.current_bytes, usable);
  E2E_CHECK_EQ("asprintf: live blocks delta",
               (after.allocations - after.frees) - (before.allocations - before.frees), 1);
  free(formatted);
  fclose(file);
  E2eWriteLine(1, "ok");
  return 0;
}
