// A traced process for the outside view's end-to-end tests (tests/outside/outside_e2e.py): it does what
// its standard input says, one command per line, and answers each with one line on standard output, so
// the driver knows the state the viewer should see. Commands:
//   mark LABEL      memtide_mark(LABEL) (publishes the segment at once)
//   alloc BYTES     malloc(BYTES) and keep it (sentinel sizes)
//   grow MIB        allocate MIB MiB in 1 MiB blocks and touch every page (RSS and cgroup usage grow)
//   shrink          free what grow allocated
//   fragment MIB    allocate MIB MiB in 4 KiB blocks, touch them, free all but the last: the heap keeps the
//                   pages (free but resident) until a trim gives them back
//   rss             print the current RSS in bytes
//   exit CODE       exit(CODE)
//   _exit CODE      _exit(CODE) (the segment records the code only for _exit: exit's is not visible to memtide)
// At start it prints "ready <pid>" after a first mark, so its segment exists. EOF on stdin exits 0.
#include <memtide/memtide.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void* grown[4096];
static int grown_count;

static long ResidentBytes(void) {
  FILE* statm = fopen("/proc/self/statm", "r");
  long size = 0, resident = 0;
  if (statm != NULL) {
    if (fscanf(statm, "%ld %ld", &size, &resident) != 2) resident = 0;
    fclose(statm);
  }
  return resident * sysconf(_SC_PAGESIZE);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (memtide_mark) memtide_mark("start");
  printf("ready %d\n", (int)getpid());
  char line[256];
  while (fgets(line, sizeof(line), stdin) != NULL) {
    line[strcspn(line, "\n")] = '\0';
    char* argument = strchr(line, ' ');
    if (argument != NULL) *argument++ = '\0';
    if (strcmp(line, "mark") == 0 && argument != NULL) {
      if (memtide_mark) memtide_mark(argument);
      printf("ok mark\n");
    } else if (strcmp(line, "alloc") == 0 && argument != NULL) {
      void* block = malloc(strtoul(argument, NULL, 10));
      memset(block, 1, strtoul(argument, NULL, 10));
      printf("ok alloc %p\n", block);
    } else if (strcmp(line, "grow") == 0 && argument != NULL) {
      long mib = strtol(argument, NULL, 10);
      for (long i = 0; i < mib && grown_count < 4096; ++i) {
        grown[grown_count] = malloc(1 << 20);
        memset(grown[grown_count], 7, 1 << 20);
        ++grown_count;
      }
      printf("ok grow %d\n", grown_count);
    } else if (strcmp(line, "shrink") == 0) {
      while (grown_count > 0) free(grown[--grown_count]);
      printf("ok shrink\n");
    } else if (strcmp(line, "fragment") == 0 && argument != NULL) {
      long blocks = strtol(argument, NULL, 10) * 256;
      void** all = malloc(sizeof(void*) * (size_t)blocks);
      for (long i = 0; i < blocks; ++i) {
        all[i] = malloc(4000);
        memset(all[i], 3, 4000);
      }
      for (long i = 0; i + 1 < blocks; ++i) free(all[i]);  // the last one pins the top of the heap
      free(all);
      printf("ok fragment %ld\n", ResidentBytes());
    } else if (strcmp(line, "rss") == 0) {
      printf("ok rss %ld\n", ResidentBytes());
    } else if (strcmp(line, "exit") == 0) {
      exit(argument != NULL ? atoi(argument) : 0);
    } else if (strcmp(line, "_exit") == 0) {
      _exit(argument != NULL ? atoi(argument) : 0);
    } else {
      printf("error unknown command '%s'\n", line);
    }
  }
  return 0;
}
