/* A library module_map_test dlopens and dlcloses: C, so nothing (like a C++ unique symbol) pins it loaded. */
int memtide_module_map_test_function(int x) { return x * 3 + 1; }
