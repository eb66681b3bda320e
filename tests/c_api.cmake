# The C API (include/kiln/c_api.h, docs/c-api.md). Its unit test (tests/unit/test_c_api.cpp) runs inside
# kiln_tests; the first two here run it the way outside callers do, through libkiln.so:
#   c_api_smoke      a pure C program (C99) linked against libkiln.so: the header is C, the symbols are exported
#   python_ctypes    python/kiln_ctypes.py on a CPU engine with the project's Python (numpy, onnxruntime)
#   torchbench_table bench/gpu_vs_torch.py's markdown table and --merge from synthetic results
add_executable(kiln_c_api_smoke ${CMAKE_CURRENT_SOURCE_DIR}/c_api/smoke.c)
set_target_properties(kiln_c_api_smoke PROPERTIES C_STANDARD 99 C_STANDARD_REQUIRED ON C_EXTENSIONS OFF)
target_link_libraries(kiln_c_api_smoke PRIVATE kiln m)
target_compile_options(kiln_c_api_smoke PRIVATE -Wall -Wextra -pedantic $<$<BOOL:${KILN_WERROR}>:-Werror>)
add_test(NAME c_api_smoke COMMAND kiln_c_api_smoke ${CMAKE_SOURCE_DIR}/models/kiln_demo_cnn.onnx)
set_tests_properties(c_api_smoke PROPERTIES PASS_REGULAR_EXPRESSION "c api OK" TIMEOUT 300)

add_test(NAME python_ctypes
         COMMAND ${KILN_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/python/test_kiln_ctypes.py -v)
set_tests_properties(python_ctypes PROPERTIES TIMEOUT 300
  ENVIRONMENT "KILN_LIB=$<TARGET_FILE:kiln>;PYTHONPATH=${CMAKE_SOURCE_DIR}/python;KILN_SOURCE_DIR=${CMAKE_SOURCE_DIR}")

# bench/gpu_vs_torch.py's table and --merge from synthetic results (no torch, no GPU).
add_test(NAME torchbench_table
         COMMAND ${KILN_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/python/test_torchbench_table.py -v)
set_tests_properties(torchbench_table PROPERTIES TIMEOUT 120)
