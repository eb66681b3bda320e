# Autocast tests (tests/unit/test_autocast*.cpp): models whose float16 overflow only a float32 LayerNorm / Softmax
# avoids, with ONNX Runtime float32 outputs (tests/models/gen_autocast_models.py).
add_test(NAME gen_autocast_models
         COMMAND ${KILN_PYTHON} ${CMAKE_SOURCE_DIR}/tests/models/gen_autocast_models.py ${KILN_TEST_MODELS}/autocast)
set_tests_properties(gen_autocast_models PROPERTIES FIXTURES_SETUP test_models)
