#include "kiln/io.h"
#include "util/error.h"

namespace kiln {
Tensor load_npy(const std::string& path) { KILN_THROW(Unsupported, "npy: not yet implemented: " << path); }
void save_npy(const std::string& path, const Tensor&) { KILN_THROW(Unsupported, "npy: not yet implemented: " << path); }
Tensor load_tensor_pb(const std::string& path, std::string*) { KILN_THROW(Unsupported, "pb: not yet implemented: " << path); }
void save_tensor_pb(const std::string& path, const Tensor&, const std::string&) { KILN_THROW(Unsupported, "pb: not yet implemented: " << path); }
}  // namespace kiln
