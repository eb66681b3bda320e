// The plan's target string: "cpu", or "cuda:sm_XX" followed by space-separated build options the CUDA executor
// needs at run time ("tf32": BuildConfig::enable_tf32; "workspace=N": BuildConfig::workspace_size when non-zero).
#pragma once
#include <cstddef>
#include <string>

namespace kiln::runtime {

struct CudaTarget {
  std::string arch = "sm_90";
  bool tf32 = false;
  size_t workspace_cap = 0;  // 0: no cap
};

bool is_cuda_target(const std::string& target);
// InvalidArgument on a malformed option.
CudaTarget parse_cuda_target(const std::string& target);
std::string cuda_target_string(const CudaTarget& t);

}  // namespace kiln::runtime
