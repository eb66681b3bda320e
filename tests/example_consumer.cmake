# Installs kiln into a scratch prefix, builds examples/consumer against it with find_package(kiln),
# and runs it on the bundled model.
add_test(NAME example_consumer
  COMMAND ${CMAKE_COMMAND}
    -DSRC=${CMAKE_SOURCE_DIR} -DBUILD=${CMAKE_BINARY_DIR} -DWORK=${CMAKE_BINARY_DIR}/example_consumer
    -P ${CMAKE_SOURCE_DIR}/tests/scripts/run_example_consumer.cmake)
set_tests_properties(example_consumer PROPERTIES TIMEOUT 600 PASS_REGULAR_EXPRESSION "consumer OK")
