# GCC 12 at -O3 reports a false -Wrestrict inside libstdc++ when protobuf's generated add_x(const char*) setters
# (and "literal" + std::string) are inlined (GCC bug 105329). The importer tests build many protos that way.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  file(GLOB KILN_ONNX_TEST_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_onnx_import*.cpp
       ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_tensor_io.cpp)
  set_source_files_properties(${KILN_ONNX_TEST_SOURCES} PROPERTIES COMPILE_OPTIONS -Wno-restrict)
endif()
