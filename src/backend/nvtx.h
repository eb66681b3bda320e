// NVTX ranges in the domain "kiln" (build steps, activate, deactivate, deploy, infer) when kiln is built with CUDA;
// nothing otherwise. nvtx3 is header-only and costs next to nothing without a profiler attached.
#pragma once
#include <cstdint>
#include <string>

#ifdef KILN_WITH_CUDA
#include <nvtx3/nvToolsExt.h>
#endif

namespace kiln::backend {

// AITune's colours: build orange, activate / deploy cyan, deactivate red, infer green, steps black.
enum class NvtxColor : uint32_t {
  Build = 0xFFFFA500u,
  Activate = 0xFF00FFFFu,
  Deactivate = 0xFFFF0000u,
  Infer = 0xFF00FF00u,
  Step = 0xFF000000u,
};

class NvtxRange {
 public:
#ifdef KILN_WITH_CUDA
  NvtxRange(const std::string& name, NvtxColor color) {
    static nvtxDomainHandle_t domain = nvtxDomainCreateA("kiln");
    domain_ = domain;
    nvtxEventAttributes_t a{};
    a.version = NVTX_VERSION;
    a.size = NVTX_EVENT_ATTRIB_STRUCT_SIZE;
    a.colorType = NVTX_COLOR_ARGB;
    a.color = static_cast<uint32_t>(color);
    a.messageType = NVTX_MESSAGE_TYPE_ASCII;
    a.message.ascii = name.c_str();
    nvtxDomainRangePushEx(domain_, &a);
  }
  ~NvtxRange() { nvtxDomainRangePop(domain_); }
#else
  NvtxRange(const std::string&, NvtxColor) {}
#endif
  NvtxRange(const NvtxRange&) = delete;
  NvtxRange& operator=(const NvtxRange&) = delete;

 private:
#ifdef KILN_WITH_CUDA
  nvtxDomainHandle_t domain_ = nullptr;
#endif
};

}  // namespace kiln::backend
