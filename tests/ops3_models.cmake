# ops3 (complex ops, If, data-dependent shapes): single-op models and end-to-end models with expected outputs
# (tests/models/gen_ops3_models.py), used by tests/unit/test_ops_*.cpp and test_ops3_e2e.cpp inside kiln_tests.
add_test(NAME gen_ops3_models
         COMMAND ${KILN_PYTHON} ${CMAKE_SOURCE_DIR}/tests/models/gen_ops3_models.py ${KILN_TEST_MODELS})
set_tests_properties(gen_ops3_models PROPERTIES FIXTURES_SETUP test_models)
