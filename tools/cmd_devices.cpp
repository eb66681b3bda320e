// kiln devices [--json]: the targets this kiln can build for and run on (the CPU, and each visible CUDA device).
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "common.h"
#include "kiln/device.h"

namespace kiln_cli {

void require_device(kiln::Target target, int device) {
  if (target != kiln::Target::Cuda) return;
  const std::string name = "cuda:" + std::to_string(device);
  if (!kiln::built_with_cuda())
    throw kiln::Error(kiln::ErrorCode::Unsupported, "--target " + name +
                                                        ": this kiln was built without CUDA (CPU only); use --target "
                                                        "cpu, or a kiln built with the CUDA toolkit");
  const int n = kiln::cuda_device_count();
  if (n == 0)
    throw kiln::Error(kiln::ErrorCode::InvalidArgument,
                      "--target " + name +
                          ": no CUDA device is visible on this machine (no GPU, no driver, or "
                          "CUDA_VISIBLE_DEVICES hides them); use --target cpu");
  if (device < 0 || device >= n)
    throw kiln::Error(kiln::ErrorCode::InvalidArgument,
                      "--target " + name + ": no such CUDA device; this machine has " + std::to_string(n) +
                          (n == 1 ? " (cuda:0)" : " (cuda:0 .. cuda:" + std::to_string(n - 1) + ")") +
                          "; see `kiln devices`");
}

namespace {

struct DevicesArgs {
  bool json = false;
};

int run_devices(const DevicesArgs& a) {
  const bool with_cuda = kiln::built_with_cuda();
  const int n = with_cuda ? kiln::cuda_device_count() : 0;
  if (a.json) {
    nlohmann::json j;
    j["built_with_cuda"] = with_cuda;
    j["targets"] = nlohmann::json::array({nlohmann::json{{"target", "cpu"}, {"name", "host CPU (reference kernels)"}}});
    for (int i = 0; i < n; ++i)
      j["targets"].push_back({{"target", "cuda:" + std::to_string(i)}, {"name", kiln::cuda_device_name(i)}});
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << "cpu      host CPU (reference kernels)\n";
  for (int i = 0; i < n; ++i) std::cout << "cuda:" << i << "   " << kiln::cuda_device_name(i) << "\n";
  if (!with_cuda)
    std::cout << "no CUDA devices: this kiln was built without CUDA (CPU only)\n";
  else if (n == 0)
    std::cout << "no CUDA devices: none is visible on this machine (no GPU, no driver, or CUDA_VISIBLE_DEVICES "
                 "hides them)\n";
  return 0;
}

}  // namespace

Command register_devices(CLI::App& parent) {
  auto args = std::make_shared<DevicesArgs>();
  CLI::App* sub = parent.add_subcommand("devices", "List the targets --target accepts: cpu and each CUDA device");
  sub->add_flag("--json", args->json, "Print JSON instead of a table");
  return {sub, [args] { return run_devices(*args); }};
}

}  // namespace kiln_cli
