// Started with standard error closed, opens argv[1] for writing (it gets number 2), writes "DATA\n" and leaves
// it open, as many programs do; leaks 4242 bytes. memtide's leak text must not end up in that file.
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void* volatile g_lost;

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  g_lost = malloc(4242);
  memset(g_lost, 1, 4242);
  g_lost = NULL;
  int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd != 2) return 3;  // standard error was not closed: the test's setup is wrong
  return write(fd, "DATA\n", 5) == 5 ? 0 : 4;
}
