# kiln CLI tests: the models and test data they use (tests/unit/test_cli.cpp runs inside kiln_tests).
add_test(NAME gen_cli_models
         COMMAND ${KILN_PYTHON} ${CMAKE_SOURCE_DIR}/tests/models/gen_cli_models.py ${KILN_TEST_MODELS})
set_tests_properties(gen_cli_models PROPERTIES FIXTURES_SETUP test_models)
