#include "runtime/target.h"

#include <sstream>

#include "util/error.h"

namespace kiln::runtime {

bool is_cuda_target(const std::string& target) { return target.rfind("cuda:", 0) == 0; }

CudaTarget parse_cuda_target(const std::string& target) {
  if (!is_cuda_target(target)) KILN_THROW(InvalidArgument, "'" << target << "' is not a CUDA target");
  std::istringstream is(target.substr(5));
  CudaTarget t;
  is >> t.arch;
  std::string opt;
  while (is >> opt) {
    if (opt == "tf32") {
      t.tf32 = true;
    } else if (opt.rfind("workspace=", 0) == 0) {
      try {
        t.workspace_cap = static_cast<size_t>(std::stoull(opt.substr(10)));
      } catch (const std::exception&) {
        KILN_THROW(InvalidArgument, "CUDA target '" << target << "': bad option '" << opt << "'");
      }
    } else {
      KILN_THROW(InvalidArgument, "CUDA target '" << target << "': unknown option '" << opt << "'");
    }
  }
  return t;
}

std::string cuda_target_string(const CudaTarget& t) {
  std::string s = "cuda:" + t.arch;
  if (t.tf32) s += " tf32";
  if (t.workspace_cap) s += " workspace=" + std::to_string(t.workspace_cap);
  return s;
}

}  // namespace kiln::runtime
