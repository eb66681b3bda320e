// libFuzzer target: kiln::onnx_import::import_model_bytes on arbitrary bytes.
#include "fuzz_entries.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kiln::fuzz_entries::onnx_importer(data, size);
  return 0;
}
