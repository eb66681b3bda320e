# Fuzzing: the regression test (tests/unit/test_fuzz_regressions.cpp) includes fuzz/fuzz_entries.h;
# the ctest `fuzz_60s` builds the libFuzzer targets with clang-14 into ${CMAKE_BINARY_DIR}/fuzz-build
# and runs each for 60 s (skipped, not failed, when clang++-14 is missing).
target_include_directories(kiln_tests PRIVATE ${CMAKE_SOURCE_DIR}/fuzz)

find_program(KILN_FUZZ_CLANGXX clang++-14)
if(KILN_FUZZ_CLANGXX)
  add_test(NAME fuzz_60s COMMAND ${CMAKE_SOURCE_DIR}/fuzz/run_fuzz.sh ${CMAKE_BINARY_DIR}/fuzz-build 60)
else()
  add_test(NAME fuzz_60s COMMAND sh -c "echo 'fuzz_60s skipped: clang++-14 not found'; exit 77")
endif()
set_tests_properties(fuzz_60s PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 3600 LABELS fuzz)
