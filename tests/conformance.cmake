# ONNX backend node-test conformance (tests/conformance/README.md).
# conformance_data regenerates the node tests of the venv's onnx package into the build tree (its wheel ships
# their definitions but not their data); conformance runs them all through kiln's CPU engine, checks
# skips.txt and floor.txt, and writes build/conformance.json and build/operators.md; conformance_doc checks that
# the committed docs/operators.md equals the generated one.
set(KILN_NODE_TESTS ${CMAKE_BINARY_DIR}/onnx_node_tests)
set(KILN_CONF_DIR ${CMAKE_CURRENT_SOURCE_DIR}/conformance)

add_executable(kiln_conformance ${KILN_CONF_DIR}/conformance_main.cpp ${KILN_CONF_DIR}/node_test.cpp
                                ${KILN_CONF_DIR}/report.cpp)
target_link_libraries(kiln_conformance PRIVATE kiln_test_link protobuf::libprotobuf nlohmann_json::nlohmann_json)
target_include_directories(kiln_conformance PRIVATE ${CMAKE_SOURCE_DIR}/src ${KILN_PROTO_DIR} ${KILN_CONF_DIR})
kiln_set_warnings(kiln_conformance)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  target_compile_options(kiln_conformance PRIVATE -Wno-restrict)  # GCC bug 105329, as for kiln_tests
endif()

add_test(NAME conformance_data
         COMMAND ${KILN_PYTHON} ${KILN_CONF_DIR}/gen_node_tests.py ${KILN_NODE_TESTS})
set_tests_properties(conformance_data PROPERTIES FIXTURES_SETUP onnx_node_tests TIMEOUT 300)

add_test(NAME conformance
         COMMAND kiln_conformance --data ${KILN_NODE_TESTS}
                 --skips ${KILN_CONF_DIR}/skips.txt --floor ${KILN_CONF_DIR}/floor.txt
                 --tolerances ${KILN_CONF_DIR}/tolerances.txt
                 --json ${CMAKE_BINARY_DIR}/conformance.json --doc ${CMAKE_BINARY_DIR}/operators.md)
set_tests_properties(conformance PROPERTIES FIXTURES_REQUIRED onnx_node_tests FIXTURES_SETUP conformance_results
                                            TIMEOUT 300)

add_test(NAME conformance_doc
         COMMAND ${CMAKE_COMMAND} -DGENERATED=${CMAKE_BINARY_DIR}/operators.md
                 -DCOMMITTED=${CMAKE_SOURCE_DIR}/docs/operators.md -P ${KILN_CONF_DIR}/check_doc.cmake)
set_tests_properties(conformance_doc PROPERTIES FIXTURES_REQUIRED conformance_results)

# The same node tests on CUDA device 0 (TF32 off). Skipped (exit 77) where no CUDA device exists or kiln was built
# without CUDA. CUDA-only failures are listed in skips_cuda.txt; the pass count must stay at or above floor_cuda.txt.
add_test(NAME conformance_cuda
         COMMAND kiln_conformance --data ${KILN_NODE_TESTS} --target cuda:0 --jobs 4
                 --skips ${KILN_CONF_DIR}/skips.txt --skips ${KILN_CONF_DIR}/skips_cuda.txt
                 --floor ${KILN_CONF_DIR}/floor_cuda.txt
                 --tolerances ${KILN_CONF_DIR}/tolerances.txt --json ${CMAKE_BINARY_DIR}/conformance_cuda.json)
set_tests_properties(conformance_cuda PROPERTIES FIXTURES_REQUIRED onnx_node_tests SKIP_RETURN_CODE 77 TIMEOUT 1200)
