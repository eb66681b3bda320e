# The CUDA kernel tests (tests/unit/test_cuda_*.cpp) include src/runtime/cuda/kernel.h and call the CUDA runtime
# directly (device buffers for a one-node run): they need the toolkit's headers.
if(KILN_WITH_CUDA)
  target_include_directories(kiln_tests PRIVATE ${CUDAToolkit_INCLUDE_DIRS})
  target_link_libraries(kiln_tests PRIVATE CUDA::cudart_static)
endif()
