# Real-architecture models (tests/models/real_arch/, committed; made by tests/models/gen_real_arch.py with torch):
# the fixture writes seeded inputs and ONNX Runtime reference outputs for each into the build tree
# (tests/models/gen_real_arch_refs.py), read by tests/unit/test_real_arch.cpp (gtest RealArch*).
add_test(NAME gen_real_arch_refs
         COMMAND ${KILN_PYTHON} ${CMAKE_SOURCE_DIR}/tests/models/gen_real_arch_refs.py
                 ${CMAKE_SOURCE_DIR}/tests/models/real_arch ${KILN_TEST_MODELS}/real_arch)
set_tests_properties(gen_real_arch_refs PROPERTIES FIXTURES_SETUP test_models)
