// A linked list whose head pointer is lost: valgrind says 1 block definitely lost and 4 indirectly lost;
// every one of them was allocated by push_node (5 x 14008 bytes).
#include <stdlib.h>

struct Node {
  struct Node* next;
  char payload[14008 - sizeof(struct Node*)];
};

__attribute__((noinline)) struct Node* push_node(struct Node* head) {
  struct Node* node = malloc(sizeof(struct Node));
  node->next = head;
  return node;
}

__attribute__((noinline)) void build_and_lose(void) {
  struct Node* head = NULL;
  for (int i = 0; i < 5; ++i) head = push_node(head);
  head = NULL;  // lost
}

int main(void) {
  build_and_lose();
  return 0;
}
