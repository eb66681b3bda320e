#include "backend/device_spec.h"

#include <charconv>

#include "kiln/device.h"
#include "kiln/version.h"
#include "util/error.h"

namespace kiln::backend {

std::string DeviceSpec::str() const { return target == Target::Cpu ? "cpu" : "cuda:" + std::to_string(ordinal); }

DeviceSpec parse_device(const std::string& device) {
  DeviceSpec d;
  if (device == "cpu") return d;
  if (device == "cuda") {
    d.target = Target::Cuda;
    return d;
  }
  if (device.rfind("cuda:", 0) == 0 && device.size() > 5) {
    int v = -1;
    const char* b = device.data() + 5;
    const char* e = device.data() + device.size();
    auto [p, ec] = std::from_chars(b, e, v);
    if (ec == std::errc() && p == e && v >= 0) {
      d.target = Target::Cuda;
      d.ordinal = v;
      return d;
    }
  }
  KILN_THROW(InvalidArgument, "Device " << (device.empty() ? "''" : device)
                                        << " is not supported by the backend EngineBackend (expected cpu, cuda or cuda:N)");
}

void assert_device(const DeviceSpec& d) {
  if (d.target == Target::Cpu) return;
  if (!built_with_cuda())
    KILN_THROW(Unsupported, "device " << d.str() << ": this kiln build has no CUDA support (built without the CUDA "
                                                    "toolkit); use device cpu");
  const int n = cuda_device_count();
  if (n == 0) KILN_THROW(InvalidArgument, "device " << d.str() << ": no CUDA device is visible on this machine; use device cpu");
  if (d.ordinal >= n) KILN_THROW(InvalidArgument, "device " << d.str() << " does not exist (" << n << " CUDA devices)");
}

std::string target_identity(const DeviceSpec& d) {
  if (d.target == Target::Cpu) return "cpu";
  return "cuda:" + cuda_device_name(d.ordinal);
}

}  // namespace kiln::backend
