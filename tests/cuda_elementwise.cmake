# Host-side check of the CUDA elementwise broadcast planner (tests/cuda/ew_plan_check.cu): needs the CUDA toolkit to
# build, no device to run.
if(KILN_WITH_CUDA)
  add_executable(kiln_cuda_ew_plan_check ${CMAKE_CURRENT_SOURCE_DIR}/cuda/ew_plan_check.cu)
  target_link_libraries(kiln_cuda_ew_plan_check PRIVATE kiln_core)
  target_include_directories(kiln_cuda_ew_plan_check PRIVATE ${CMAKE_SOURCE_DIR}/src ${KILN_PROTO_DIR})
  kiln_set_warnings(kiln_cuda_ew_plan_check)
  add_test(NAME cuda_ew_plan_check COMMAND kiln_cuda_ew_plan_check)
endif()
