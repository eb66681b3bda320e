// libFuzzer target: kiln::plan::deserialize on arbitrary bytes.
#include "fuzz_entries.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kiln::fuzz_entries::plan_loader(data, size);
  return 0;
}
