/* Loaded only as a dependency of local_a, which the program opens RTLD_LOCAL: its symbols are in
 * local_a's scope and nowhere else. */
int local_b_value(void) { return 42; }
