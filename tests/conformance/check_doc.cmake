# Fails when the committed docs/operators.md differs from the one the conformance run just generated.
if(NOT EXISTS "${GENERATED}")
  message(FATAL_ERROR "${GENERATED} is missing: the conformance test did not run")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files "${GENERATED}" "${COMMITTED}" RESULT_VARIABLE differ)
if(differ)
  message(FATAL_ERROR "docs/operators.md is out of date with the op registry / node-test results.\n"
                      "Regenerate it: cp ${GENERATED} ${COMMITTED}  (see tests/conformance/README.md)")
endif()
message(STATUS "docs/operators.md is up to date")
