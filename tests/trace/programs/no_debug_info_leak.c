// Leaks one block of 7003 bytes through libno_debug_info.so, a library without debug info.
void LeakWithoutDebugInfo(void);

int main(void) {
  LeakWithoutDebugInfo();
  return 0;
}
