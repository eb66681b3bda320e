// kiln.Conv through cuDNN's graph (backend) API (conv_graph.h).
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "runtime/cuda/kernels/common.cuh"
#include "runtime/cuda/kernels/conv_dnn.h"
#include "runtime/cuda/kernels/conv_graph.h"

namespace kiln::runtime::cuda {
namespace {

// Unique ids of the graph's tensors.
enum : int64_t { kX = 1, kW = 2, kB = 3, kZ = 4, kY = 5, kV0 = 10, kV1 = 11, kV2 = 12 };
constexpr int64_t kAlignment = 16;
constexpr int kMaxConfigs = 8;  // engine configurations of the heuristic tried, in its order

// Descriptors created while building a plan, destroyed with it (the plan may refer to them).
struct GraphPlan {
  std::vector<cudnnBackendDescriptor_t> owned;
  cudnnBackendDescriptor_t plan = nullptr;
  int64_t ws = 0;
  std::string why;  // when plan is nullptr
  GraphPlan() = default;
  GraphPlan(const GraphPlan&) = delete;
  GraphPlan& operator=(const GraphPlan&) = delete;
  ~GraphPlan() {
    for (auto it = owned.rbegin(); it != owned.rend(); ++it) cudnnBackendDestroyDescriptor(*it);
  }
};

// Builds descriptors, stopping at the first failing call (status and what failed kept for the message).
class Builder {
 public:
  explicit Builder(GraphPlan& p) : p_(p) {}
  bool ok() const { return st_ == CUDNN_STATUS_SUCCESS; }
  std::string error() const { return what_ + ": " + cudnnGetErrorString(st_); }
  cudnnBackendDescriptor_t make(cudnnBackendDescriptorType_t t, const char* what) {
    cudnnBackendDescriptor_t d = nullptr;
    if (!ok()) return nullptr;
    check(cudnnBackendCreateDescriptor(t, &d), what);
    if (ok()) p_.owned.push_back(d);
    return d;
  }
  void set(cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t a, cudnnBackendAttributeType_t t, int64_t n,
           const void* v, const char* what) {
    if (ok()) check(cudnnBackendSetAttribute(d, a, t, n, v), what);
  }
  void finalize(cudnnBackendDescriptor_t d, const char* what) {
    if (ok()) check(cudnnBackendFinalize(d), what);
  }

  // A tensor [N, C, H, W] (dims in that order) with the given strides.
  cudnnBackendDescriptor_t tensor(int64_t uid, cudnnDataType_t dt, const std::array<int64_t, 4>& dims,
                                  const std::array<int64_t, 4>& strides, bool is_virtual) {
    cudnnBackendDescriptor_t t = make(CUDNN_BACKEND_TENSOR_DESCRIPTOR, "tensor");
    set(t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &dt, "tensor dtype");
    set(t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims.data(), "tensor dims");
    set(t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides.data(), "tensor strides");
    set(t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid, "tensor uid");
    set(t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &kAlignment, "tensor alignment");
    set(t, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &is_virtual, "tensor virtual");
    finalize(t, "tensor");
    return t;
  }
  // NHWC strides of [N, C, H, W].
  static std::array<int64_t, 4> nhwc(const std::array<int64_t, 4>& d) {
    return {d[1] * d[2] * d[3], 1, d[3] * d[1], d[1]};
  }

  // y = x (op) b, or y = op(x) when b is nullptr.
  cudnnBackendDescriptor_t pointwise(cudnnPointwiseMode_t mode, cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t b,
                                     cudnnBackendDescriptor_t y) {
    cudnnBackendDescriptor_t pw = make(CUDNN_BACKEND_POINTWISE_DESCRIPTOR, "pointwise");
    const cudnnDataType_t prec = CUDNN_DATA_FLOAT;
    set(pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode, "pointwise mode");
    set(pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &prec, "pointwise precision");
    finalize(pw, "pointwise");
    cudnnBackendDescriptor_t op = make(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, "pointwise op");
    set(op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &pw, "pointwise op mode");
    set(op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x, "pointwise op x");
    if (b) set(op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &b, "pointwise op b");
    set(op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y, "pointwise op y");
    finalize(op, "pointwise op");
    return op;
  }

 private:
  void check(cudnnStatus_t st, const char* what) {
    st_ = st;
    if (!ok()) what_ = what;
  }
  GraphPlan& p_;
  cudnnStatus_t st_ = CUDNN_STATUS_SUCCESS;
  std::string what_;
};

std::shared_ptr<GraphPlan> make_graph_plan(const KernelContext& ctx, const ConvGraphArgs& a, size_t ws_cap) {
  auto gp = std::make_shared<GraphPlan>();
  Builder b(*gp);
  const ConvGeometry& G = a.G;
  const cudnnDataType_t dt = dnn_type(a.dt), f32 = CUDNN_DATA_FLOAT;
  const std::array<int64_t, 4> xd = {G.N, G.C, G.in[0], G.in[1]}, yd = {G.N, G.M, G.out[0], G.out[1]};
  const std::array<int64_t, 4> wd = {G.M, G.C / G.group, G.k[0], G.k[1]}, bd = {1, G.M, 1, 1};
  cudnnBackendDescriptor_t x = b.tensor(kX, dt, xd, Builder::nhwc(xd), false);
  cudnnBackendDescriptor_t w = b.tensor(kW, dt, wd, Builder::nhwc(wd), false);
  cudnnBackendDescriptor_t bias = b.tensor(kB, dt, bd, Builder::nhwc(bd), false);
  cudnnBackendDescriptor_t z = a.z ? b.tensor(kZ, dt, yd, Builder::nhwc(yd), false) : nullptr;
  cudnnBackendDescriptor_t y = b.tensor(kY, dt, yd, Builder::nhwc(yd), false);
  cudnnBackendDescriptor_t v0 = b.tensor(kV0, f32, yd, Builder::nhwc(yd), true);
  const bool more_after_bias = a.z || a.relu;
  cudnnBackendDescriptor_t v1 = more_after_bias ? b.tensor(kV1, f32, yd, Builder::nhwc(yd), true) : y;
  cudnnBackendDescriptor_t v2 = a.z && a.relu ? b.tensor(kV2, f32, yd, Builder::nhwc(yd), true) : y;

  cudnnBackendDescriptor_t conv = b.make(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR, "convolution");
  const cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  const int64_t sp = 2, dil[2] = {G.d[0], G.d[1]}, str[2] = {G.s[0], G.s[1]}, pad[2] = {G.pb[0], G.pb[1]};
  b.set(conv, CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &f32, "conv compute type");
  b.set(conv, CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode, "conv mode");
  b.set(conv, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, 1, &sp, "conv spatial dims");
  b.set(conv, CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, 2, dil, "conv dilations");
  b.set(conv, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, 2, str, "conv strides");
  b.set(conv, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, 2, pad, "conv pre paddings");
  b.set(conv, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, 2, pad, "conv post paddings");
  b.finalize(conv, "convolution");

  cudnnBackendDescriptor_t conv_op = b.make(CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR, "conv op");
  const float one = 1.f, zero = 0.f;
  b.set(conv_op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x, "conv op x");
  b.set(conv_op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &w, "conv op w");
  b.set(conv_op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &v0, "conv op y");
  b.set(conv_op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &conv,
        "conv op desc");
  b.set(conv_op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_TYPE_FLOAT, 1, &one, "conv op alpha");
  b.set(conv_op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, CUDNN_TYPE_FLOAT, 1, &zero, "conv op beta");
  b.finalize(conv_op, "conv op");

  std::vector<cudnnBackendDescriptor_t> ops = {conv_op, b.pointwise(CUDNN_POINTWISE_ADD, v0, bias, v1)};
  cudnnBackendDescriptor_t last = v1;
  if (a.z) ops.push_back(b.pointwise(CUDNN_POINTWISE_ADD, v1, z, v2)), last = v2;
  if (a.relu) ops.push_back(b.pointwise(CUDNN_POINTWISE_RELU_FWD, last, nullptr, y));

  cudnnBackendDescriptor_t graph = b.make(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, "operation graph");
  cudnnHandle_t handle = ctx.cudnn;
  b.set(graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, static_cast<int64_t>(ops.size()),
        ops.data(), "graph ops");
  b.set(graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle, "graph handle");
  b.finalize(graph, "operation graph");

  cudnnBackendDescriptor_t heur = b.make(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, "heuristics");
  const cudnnBackendHeurMode_t heur_mode = CUDNN_HEUR_MODE_A;
  b.set(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &graph, "heuristics graph");
  b.set(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &heur_mode, "heuristics mode");
  b.finalize(heur, "heuristics");
  if (!b.ok()) {
    gp->why = b.error();
    return gp;
  }
  int64_t count = 0;
  if (cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count,
                               nullptr) != CUDNN_STATUS_SUCCESS ||
      count <= 0) {
    gp->why = "the heuristic lists no engine configuration";
    return gp;
  }
  count = std::min<int64_t>(count, kMaxConfigs);
  std::vector<cudnnBackendDescriptor_t> cfgs;
  for (int64_t i = 0; i < count; ++i) cfgs.push_back(b.make(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, "engine config"));
  int64_t returned = 0;
  if (!b.ok() || cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, count,
                                          &returned, cfgs.data()) != CUDNN_STATUS_SUCCESS) {
    gp->why = "cannot read the heuristic's engine configurations";
    return gp;
  }
  gp->why = "no engine configuration finalizes within " + std::to_string(ws_cap) + " workspace bytes";
  for (int64_t i = 0; i < returned; ++i) {
    cudnnBackendDescriptor_t plan = nullptr;
    if (cudnnBackendCreateDescriptor(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, &plan) != CUDNN_STATUS_SUCCESS) break;
    int64_t ws = 0, n = 0;
    const bool ok =
        cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle) ==
            CUDNN_STATUS_SUCCESS &&
        cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                                 &cfgs[static_cast<size_t>(i)]) == CUDNN_STATUS_SUCCESS &&
        cudnnBackendFinalize(plan) == CUDNN_STATUS_SUCCESS &&
        cudnnBackendGetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &n, &ws) ==
            CUDNN_STATUS_SUCCESS &&
        ws >= 0 && static_cast<size_t>(ws) <= ws_cap;
    if (!ok) {
      cudnnBackendDestroyDescriptor(plan);
      continue;
    }
    gp->owned.push_back(plan);
    gp->plan = plan, gp->ws = ws;
    gp->why.clear();
    break;
  }
  return gp;
}

using GraphKey = std::array<int64_t, 24>;
std::mutex& graph_mutex() {
  static std::mutex m;
  return m;
}
std::map<GraphKey, std::shared_ptr<GraphPlan>>& graph_cache() {
  static std::map<GraphKey, std::shared_ptr<GraphPlan>> c;
  return c;
}

bool aligned(const void* p) { return p && reinterpret_cast<uintptr_t>(p) % kAlignment == 0; }

}  // namespace

bool run_conv_graph(const KernelContext& ctx, const ConvGraphArgs& a, std::string* why) {
  if (!aligned(a.x) || !aligned(a.w) || !aligned(a.b) || !aligned(a.y) || (a.z && !aligned(a.z))) {
    *why = "a tensor is not 16-byte aligned";
    return false;
  }
  const ConvGeometry& G = a.G;
  if (G.nsp != 2) {
    *why = "not a 2-D convolution";
    return false;
  }
  const size_t ws_cap = ctx.workspace ? ctx.workspace_size : 0;
  const GraphKey key = {ctx.device, static_cast<int64_t>(reinterpret_cast<uintptr_t>(ctx.cudnn)),
                        static_cast<int64_t>(a.dt), a.z != nullptr, a.relu, static_cast<int64_t>(ws_cap),
                        G.N, G.C, G.M, G.group, G.in[0], G.in[1], G.out[0], G.out[1], G.k[0], G.k[1], G.s[0], G.s[1],
                        G.d[0], G.d[1], G.pb[0], G.pb[1], 0, 0};
  std::shared_ptr<GraphPlan> plan;
  {
    std::lock_guard<std::mutex> lock(graph_mutex());
    auto it = graph_cache().find(key);
    if (it != graph_cache().end()) plan = it->second;
  }
  if (!plan) {
    plan = make_graph_plan(ctx, a, ws_cap);
    std::lock_guard<std::mutex> lock(graph_mutex());
    plan = graph_cache().emplace(key, plan).first->second;
  }
  if (!plan->plan) {
    *why = plan->why;
    return false;
  }
  std::vector<int64_t> uids = {kX, kW, kB, kY};
  std::vector<void*> ptrs = {const_cast<void*>(a.x), const_cast<void*>(a.w), const_cast<void*>(a.b), a.y};
  if (a.z) uids.push_back(kZ), ptrs.push_back(const_cast<void*>(a.z));
  void* ws = plan->ws > 0 ? ctx.workspace : nullptr;
  cudnnBackendDescriptor_t pack = nullptr;
  KILN_CUDNN_CHECK(cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &pack));
  std::unique_ptr<void, void (*)(void*)> guard(pack, [](void* d) { cudnnBackendDestroyDescriptor(d); });
  const int64_t n = static_cast<int64_t>(uids.size());
  KILN_CUDNN_CHECK(cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, n, uids.data()));
  KILN_CUDNN_CHECK(cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, n,
                                            ptrs.data()));
  KILN_CUDNN_CHECK(cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &ws));
  KILN_CUDNN_CHECK(cudnnBackendFinalize(pack));
  KILN_CUDNN_CHECK(cudnnSetStream(ctx.cudnn, ctx.stream));
  const cudnnStatus_t st = cudnnBackendExecute(ctx.cudnn, plan->plan, pack);
  if (st != CUDNN_STATUS_SUCCESS) {
    *why = std::string("cudnnBackendExecute: ") + cudnnGetErrorString(st);
    return false;
  }
  return true;
}

}  // namespace kiln::runtime::cuda
