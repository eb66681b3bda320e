# Builds the library and the backend tests with ThreadSanitizer in WORK (a separate build folder, kept between runs
# so a rebuild is incremental) and runs them. Also usable by hand:
#   cmake -DSRC=. -DWORK=build/tsan -DMODELS=build/test_models -DPYTHON=.venv/bin/python -P tests/scripts/run_backend_tsan.cmake
if(NOT GENERATOR)
  set(GENERATOR Ninja)
endif()
if(NOT DEFINED ENV{KILN_TSAN_JOBS})
  set(jobs 2)
else()
  set(jobs $ENV{KILN_TSAN_JOBS})
endif()
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}")
  endif()
endfunction()
run(${CMAKE_COMMAND} -S ${SRC} -B ${WORK} -G ${GENERATOR}
    -DCMAKE_BUILD_TYPE=RelWithDebInfo
    "-DCMAKE_CXX_FLAGS=-fsanitize=thread -fno-omit-frame-pointer"
    -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread -DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=thread
    -DKILN_WITH_CUDA=OFF -DKILN_TSAN_TEST=OFF -DKILN_BACKEND_TEST_MODELS=${MODELS} -DKILN_PYTHON=${PYTHON})
run(${CMAKE_COMMAND} --build ${WORK} --target kiln_backend_tests --parallel ${jobs})
set(ENV{TSAN_OPTIONS} "halt_on_error=1 second_deadlock_stack=1 history_size=4")
execute_process(COMMAND ${WORK}/tests/kiln_backend_tests RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "backend tests under ThreadSanitizer failed (${rc})")
endif()
message("backend tests under ThreadSanitizer: PASSED")
