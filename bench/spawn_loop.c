/* Process-spawn benchmark, run by scripts/bench (bench/run_bench.py): starts a program COUNT times with
 * posix_spawn and waits for each, to measure what libmemtide.so adds to a process's start-up and exit
 * (DESIGN.md decision 8: every process in a container pays it).
 *
 * A C loop rather than a shell loop, so the shell's own fork cost does not dilute the ratio. The preload is
 * given with --preload and placed in the children's environment only: this process itself never runs under
 * it, so its own loop costs the same in every configuration. Any LD_PRELOAD already in the environment is
 * dropped, so the plain configuration is really plain.
 *
 * usage: spawn_loop COUNT [--preload LIB] -- PROGRAM [ARGS...]
 * Prints "elapsed_s <seconds>" on stdout. Exits 1 if a child fails. */
#define _GNU_SOURCE
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

extern char** environ;

static void Usage(void) {
  fprintf(stderr, "usage: spawn_loop COUNT [--preload LIB] -- PROGRAM [ARGS...]\n");
  exit(2);
}

/* environ without LD_PRELOAD, plus LD_PRELOAD=preload when one is given. The strings are environ's own or
 * leaked: this process lives for one benchmark. */
static char** ChildEnvironment(const char* preload) {
  size_t count = 0;
  while (environ[count] != NULL) ++count;
  char** env = calloc(count + 2, sizeof(char*));
  if (env == NULL) {
    perror("spawn_loop: calloc");
    exit(1);
  }
  size_t used = 0;
  for (size_t i = 0; i < count; ++i) {
    if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0) env[used++] = environ[i];
  }
  if (preload != NULL) {
    const size_t bytes = strlen("LD_PRELOAD=") + strlen(preload) + 1;
    char* entry = malloc(bytes);
    if (entry == NULL) {
      perror("spawn_loop: malloc");
      exit(1);
    }
    snprintf(entry, bytes, "LD_PRELOAD=%s", preload);
    env[used++] = entry;
  }
  env[used] = NULL;
  return env;
}

int main(int argc, char** argv) {
  if (argc < 4) Usage();
  char* end = NULL;
  const long count = strtol(argv[1], &end, 10);
  if (end == argv[1] || *end != '\0' || count < 1) Usage();
  const char* preload = NULL;
  int i = 2;
  if (strcmp(argv[i], "--preload") == 0) {
    if (i + 1 >= argc) Usage();
    preload = argv[i + 1];
    i += 2;
  }
  if (i >= argc || strcmp(argv[i], "--") != 0 || i + 1 >= argc) Usage();
  char** child_argv = &argv[i + 1];
  char** child_env = ChildEnvironment(preload);

  struct timespec start, stop;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (long n = 0; n < count; ++n) {
    pid_t pid;
    const int error = posix_spawn(&pid, child_argv[0], NULL, NULL, child_argv, child_env);
    if (error != 0) {
      fprintf(stderr, "spawn_loop: cannot start %s: %s\n", child_argv[0], strerror(error));
      return 1;
    }
    int status = 0;
    if (waitpid(pid, &status, 0) < 0) {
      perror("spawn_loop: waitpid");
      return 1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "spawn_loop: %s failed (wait status 0x%x) on run %ld\n", child_argv[0], status, n);
      return 1;
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &stop);
  const double elapsed = (double)(stop.tv_sec - start.tv_sec) + (double)(stop.tv_nsec - start.tv_nsec) / 1e9;
  printf("elapsed_s %.6f\n", elapsed);
  return 0;
}
