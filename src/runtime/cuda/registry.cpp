// Registry of CUDA tactics (kernel.h).
#include <map>
#include <mutex>
#include <utility>

#include "runtime/cuda/kernel.h"
#include "runtime/cuda/kernels/families.h"
#include "runtime/cuda/tactic_variant.h"

namespace kiln::runtime::cuda {
namespace {
std::map<std::pair<std::string, std::string>, std::vector<CudaTactic>>& table() {
  static std::map<std::pair<std::string, std::string>, std::vector<CudaTactic>> t;
  return t;
}
}  // namespace

void register_cuda_tactic(const std::string& domain, const std::string& op_type, CudaTactic tactic) {
  table()[{domain, op_type}].push_back(std::move(tactic));
}

std::vector<const CudaTactic*> cuda_tactics(const std::string& domain, const std::string& op_type) {
  std::vector<const CudaTactic*> out;
  auto it = table().find({domain, op_type});
  if (it != table().end())
    for (const auto& t : it->second) out.push_back(&t);
  return out;
}

std::vector<const CudaTactic*> cuda_tactics_for(const ir::Node& node, const std::vector<ir::ValueType>& in) {
  std::vector<const CudaTactic*> out;
  for (const CudaTactic* t : cuda_tactics(node.domain, node.op_type))
    if (t->name != "host" && (!t->supports || t->supports(node, in))) out.push_back(t);
  return out;
}

const CudaTactic* find_cuda_tactic(const ir::Node& node, const std::string& name) {
  const std::string_view base = tactic_base(name);  // "cublaslt#<variant>" is tactic "cublaslt"
  for (const CudaTactic* t : cuda_tactics(node.domain, node.op_type))
    if (t->name == base) return t;
  return nullptr;
}

void register_all_cuda_kernels() {
  static std::once_flag once;
  std::call_once(once, [] {
    register_elementwise_kernels();
    register_gemm_kernels();
    register_conv_kernels();
    register_nhwc_kernels();
    register_reduce_kernels();
    register_norm_kernels();
    register_pool_kernels();
    register_movement_kernels();
    register_control_kernels();
  });
}

}  // namespace kiln::runtime::cuda
