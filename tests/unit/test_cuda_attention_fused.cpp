// CUDA kernels of kiln.Attention (src/runtime/cuda/kernels/attention_fused.cu) against the reference kernel (float64):
// both tactics ("cuda": tensor cores for float16 / bfloat16 where they apply; "cuda_simple") across sequence lengths
// (1, 7, 128, 200, 512, cross attention), head sizes (32, 64, 80, 128, and 20 / 8 off the tensor-core path), dtypes,
// layouts, masks (float / bool, full and broadcast, with fully masked rows, with and without the NaN guard) and
// causal; then whole fused graphs through the CUDA executor; then the BERT-base shape timed. Skips without a GPU.
#include <gtest/gtest.h>

#if KILN_WITH_CUDA
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>

#include "attention_test_util.h"
#include "cuda_op_test_util.h"
#include "runtime/cuda/executor.h"

namespace kiln::test_attn {
namespace {

namespace ka = ops::kattn;

const char* row(DType dt) { return dt == DType::Float32 ? "fp32" : dt == DType::Float16 ? "fp16" : "bf16"; }

struct Case {
  DType dt = DType::Float16;
  int64_t B = 2, H = 2, Sq = 7, Sk = 7, D = 64;
  ka::Layout q = ka::Layout::BSD, k = ka::Layout::BSD, v = ka::Layout::BSD, out = ka::Layout::BSD;
  MaskKind mask = MaskKind::None;
  DType mask_dt = DType::Float32;
  bool mask_full = true, guard = true, causal = false;
  std::string str() const {
    std::string s = std::string(dtype_name(dt)) + " B" + std::to_string(B) + " H" + std::to_string(H) + " Sq" +
                    std::to_string(Sq) + " Sk" + std::to_string(Sk) + " D" + std::to_string(D) + " " +
                    ka::layout_name(q) + "/" + ka::layout_name(k) + "/" + ka::layout_name(v) + "->" +
                    ka::layout_name(out);
    if (mask != MaskKind::None)
      s += std::string(" mask ") + (mask == MaskKind::Bool ? "bool" : dtype_name(mask_dt)) + (mask_full ? " full" : " [B,1,1,Sk]");
    return s + (guard ? " guard" : "") + (causal ? " causal" : "");
  }
};

Shape layout_shape(ka::Layout l, int64_t B, int64_t H, int64_t S, int64_t D) {
  if (l == ka::Layout::BHSD) return {B, H, S, D};
  if (l == ka::Layout::BSHD) return {B, S, H, D};
  return {B, S, H * D};
}

// A one-node kiln.Attention graph and its inputs. Masks: fully masked query row 1 (batch 0) in the full form, fully
// masked batch 1 in the broadcast form; float masks use -inf.
ir::Graph one_node(const Case& c, TensorMap& feeds) {
  GraphBuilder gb;
  const Shape qs = layout_shape(c.q, c.B, c.H, c.Sq, c.D), ks = layout_shape(c.k, c.B, c.H, c.Sk, c.D);
  const Shape vs = layout_shape(c.v, c.B, c.H, c.Sk, c.D);
  feeds["q"] = random_tensor(c.dt, qs, 1, -2, 2);
  feeds["k"] = random_tensor(c.dt, ks, 2, -2, 2);
  feeds["v"] = random_tensor(c.dt, vs, 3, -2, 2);
  std::vector<std::string> ins = {gb.input("q", c.dt, qs), gb.input("k", c.dt, ks), gb.input("v", c.dt, vs)};
  ka::Params p;
  p.scale = 1.0f / std::sqrt(static_cast<float>(c.D));
  p.num_heads = c.H, p.q = c.q, p.k = c.k, p.v = c.v, p.out = c.out;
  p.nan_to_zero = c.guard, p.causal = c.causal;
  if (c.mask != MaskKind::None) {
    const Shape ms = c.mask_full ? Shape{c.B, 1, c.Sq, c.Sk} : Shape{c.B, 1, 1, c.Sk};
    Tensor b(DType::Bool, ms);
    auto* bp = b.mutable_as<uint8_t>();
    for (int64_t i = 0; i < b.numel(); ++i) bp[i] = (i * 7919 % 5) != 0;
    const int64_t rows = ms[2], cols = ms[3];
    for (int64_t j = 0; j < cols; ++j) {
      if (c.mask_full && rows > 1) bp[cols + j] = 0;
      if (!c.mask_full && c.B > 1) bp[rows * cols + j] = 0;
    }
    if (c.mask == MaskKind::Bool) {
      p.mask = ka::MaskMode::Bool;
      p.mask_true = 0.0f, p.mask_false = -std::numeric_limits<float>::infinity();
      feeds["m"] = b;
      ins.push_back(gb.input("m", DType::Bool, ms));
    } else {
      p.mask = ka::MaskMode::Add;
      Tensor f(c.mask_dt, ms);
      for (int64_t i = 0; i < f.numel(); ++i) {
        const float v = bp[i] ? 0.25f * static_cast<float>(i % 4) : -std::numeric_limits<float>::infinity();
        if (c.mask_dt == DType::Float32) f.mutable_as<float>()[i] = v;
        else if (c.mask_dt == DType::Float16) f.mutable_as<uint16_t>()[i] = util::float_to_half(v);
        else f.mutable_as<uint16_t>()[i] = util::float_to_bf16(v);
      }
      feeds["m"] = f;
      ins.push_back(gb.input("m", c.mask_dt, ms));
    }
  }
  ir::Node n;
  n.name = "attn", n.op_type = ka::kOpType, n.domain = ka::kDomain, n.opset = 1;
  n.inputs = ins;
  n.outputs = {"o"};
  ka::encode(p, n);
  gb.g.nodes.push_back(n);
  gb.output("o");
  return gb.typed();
}

// The tactic's output against the reference: NaN in the same places (unguarded fully masked rows), the rest
// within the dtype's tolerance row.
void check_case(const Case& c, const std::string& tactic) {
  SCOPED_TRACE(c.str() + " tactic " + tactic);
  TensorMap feeds;
  ir::Graph g = one_node(c, feeds);
  g.nodes[0].tactic = tactic;  // "cuda#rows=16" / "cuda#rows=64": the tensor-core kernel's block shape
  const Tensor want = runtime::cpu::run_graph_reference(g, feeds).at("o");
  const std::vector<Tensor> got = test_cuda::run_cuda_node(g, feeds, tactic);
  ASSERT_EQ(got.size(), 1u);
  ASSERT_EQ(got[0].shape(), want.shape());
  Tensor a(DType::Float32, want.shape()), b(DType::Float32, want.shape());
  int64_t nan_mismatch = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    const double x = got[0].at_double(i), y = want.at_double(i);
    nan_mismatch += std::isnan(x) != std::isnan(y);
    a.mutable_as<float>()[i] = std::isnan(x) ? 0.0f : static_cast<float>(x);
    b.mutable_as<float>()[i] = std::isnan(y) ? 0.0f : static_cast<float>(y);
  }
  EXPECT_EQ(nan_mismatch, 0);
  // float32 I/O: the kernels compute in float32 (exp2f, fused products), the reference in float64.
  const Comparison cmp = compare(a, b, c.dt == DType::Float32 ? Tolerance{Metric::ElementWise, 1e-4, 1e-4, 0}
                                                             : tolerance_for(row(c.dt)));
  EXPECT_TRUE(cmp.passed) << cmp.reason << " (max abs " << cmp.max_abs << ", rel L2 " << cmp.rel_l2 << ")";
}

TEST(CudaAttentionFused, SequenceLengthsAndHeadSizes) {
  KILN_SKIP_WITHOUT_CUDA();
  for (DType dt : {DType::Float16, DType::BFloat16, DType::Float32})
    for (int64_t S : {1, 7, 128, 200, 512})
      for (int64_t D : {32, 64, 80, 128}) {
        if (dt == DType::Float32 && D != 64 && S > 128) continue;  // the simple kernel is the same code for every D
        Case c;
        c.dt = dt, c.Sq = c.Sk = S, c.D = D, c.B = S >= 200 ? 1 : 2, c.H = S >= 200 ? 2 : 3;
        c.mask = S % 2 ? MaskKind::Float : MaskKind::Bool;
        c.mask_dt = dt;
        check_case(c, "cuda");
        if (dt != DType::Float32) check_case(c, "cuda#rows=64");  // "cuda" picks rows=16 for these small grids
        if (S <= 200) check_case(c, "cuda_simple");
      }
}

TEST(CudaAttentionFused, LayoutsMasksGuardAndCausal) {
  KILN_SKIP_WITHOUT_CUDA();
  const ka::Layout L[] = {ka::Layout::BHSD, ka::Layout::BSHD, ka::Layout::BSD};
  int k = 0;
  for (DType dt : {DType::Float16, DType::BFloat16})
    for (ka::Layout lq : L)
      for (ka::Layout lo : L) {
        Case c;
        c.dt = dt, c.Sq = 70, c.Sk = 130, c.D = 64, c.H = 2;
        c.q = lq, c.k = L[(k + 1) % 3], c.v = L[(k + 2) % 3], c.out = lo;
        c.mask = k % 3 == 0 ? MaskKind::None : k % 3 == 1 ? MaskKind::Float : MaskKind::Bool;
        c.mask_dt = k % 2 ? DType::Float32 : dt;
        c.mask_full = k % 4 < 2;
        c.guard = k % 5 != 0;
        c.causal = k % 7 == 3;
        ++k;
        check_case(c, "cuda#rows=16");
        check_case(c, "cuda#rows=64");
        check_case(c, "cuda_simple");
      }
  // Fully masked rows without the guard: NaN rows, like the graph's Softmax gives.
  for (MaskKind m : {MaskKind::Float, MaskKind::Bool})
    for (bool full : {true, false}) {
      Case c;
      c.Sq = c.Sk = 96, c.mask = m, c.mask_full = full, c.guard = false;
      check_case(c, "cuda#rows=16");
      check_case(c, "cuda#rows=64");
      check_case(c, "cuda_simple");
    }
  // Causal with more queries than one tile.
  Case c;
  c.Sq = c.Sk = 300, c.causal = true, c.B = 1;
  check_case(c, "cuda#rows=16");
  check_case(c, "cuda#rows=64");
  // Cross attention with more keys than queries (several key tiles, the last one partial), causal and not.
  for (bool causal : {false, true}) {
    Case x;
    x.Sq = 50, x.Sk = 333, x.D = 128, x.causal = causal, x.mask = MaskKind::Float, x.mask_dt = DType::Float32;
    check_case(x, "cuda#rows=16");
    check_case(x, "cuda#rows=64");
  }
}

TEST(CudaAttentionFused, HeadSizesOffTheTensorCorePath) {
  KILN_SKIP_WITHOUT_CUDA();
  for (int64_t D : {8, 20, 160}) {  // 20: not a multiple of 8; 160: > 128
    Case c;
    c.D = D, c.Sq = 33, c.Sk = 65, c.mask = MaskKind::Float;
    check_case(c, "cuda");
  }
}

// Whole graphs (the exporters' forms), fused and run by the CUDA executor, against the unfused graph's reference.
TEST(CudaAttentionFused, FusedGraphsOnTheExecutor) {
  KILN_SKIP_WITHOUT_CUDA();
  for (DType dt : {DType::Float16, DType::BFloat16})
    for (Form form : {Form::Dynamo, Form::TorchScript}) {
      Spec s;
      s.dt = dt, s.form = form, s.B = 2, s.H = 4, s.Sq = s.Sk = 77, s.D = 32;
      s.mask = form == Form::Dynamo ? MaskKind::Bool : MaskKind::Float;
      s.guard = true;
      Built b = build_sdpa(s);
      ir::Graph f = b.b.typed();
      ASSERT_TRUE(passes::fuse_attention(f));
      passes::eliminate_dead_code(f);
      ir::infer_types(f);
      ASSERT_EQ(count_attention(f), 1u);
      const Tensor want = runtime::cpu::run_graph_reference(b.b.typed(), b.feeds).at(b.out);
      const TensorMap got = runtime::cuda::run_graph_cuda(f, b.feeds);
      const Comparison c = compare(got.at(b.out), want, tolerance_for(row(dt)));
      EXPECT_TRUE(c.passed) << dtype_name(dt) << ": " << c.reason << " (rel L2 " << c.rel_l2 << ")";
    }
}

// Median time (ms) of 12 back-to-back calls (BERT's 12 layers) of `tactic` on the case's node, in a CUDA graph.
double time_12_layers(const Case& c, const std::string& tactic) {
  TensorMap feeds;
  ir::Graph g = one_node(c, feeds);
  g.nodes[0].tactic = tactic;
  using namespace runtime::cuda;
  register_all_cuda_kernels();
  const ir::Node& n = g.nodes[0];
  const CudaTactic* t = find_cuda_tactic(n, tactic);
  EXPECT_TRUE(t) << tactic;
  if (!t) return 0.0;
  test_cuda::CudaEnv& env = test_cuda::cuda_env();
  std::vector<test_cuda::DevicePtr> keep;
  std::vector<DTensor> din;
  din.reserve(4);
  std::vector<const DTensor*> in;
  for (const std::string& name : n.inputs) {
    const Tensor& h = feeds.at(name);
    keep.push_back(test_cuda::device_alloc(h.nbytes()));
    din.push_back(DTensor{h.dtype(), h.shape(), keep.back().get()});
    EXPECT_EQ(cudaMemcpy(din.back().data, h.data(), h.nbytes(), cudaMemcpyHostToDevice), cudaSuccess);
    in.push_back(&din.back());
  }
  const Shape os = g.type_of("o")->static_shape();
  keep.push_back(test_cuda::device_alloc(static_cast<size_t>(shape_numel(os)) * 2));
  KernelContext ctx;
  ctx.stream = env.stream;
  ctx.props = &env.props;
  KernelArgs args{n, in, std::vector<const Tensor*>(in.size(), nullptr), {DTensor{c.dt, os, keep.back().get()}}};
  // 12 calls (BERT's 12 layers) captured in a CUDA graph, as the engine runs them: device time, no launch cost.
  t->run(ctx, args);  // first call outside the capture (one-time attribute setup)
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  EXPECT_EQ(cudaStreamBeginCapture(env.stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  for (int rep = 0; rep < 12; ++rep) t->run(ctx, args);
  EXPECT_EQ(cudaStreamEndCapture(env.stream, &graph), cudaSuccess);
  EXPECT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  cudaEvent_t e0, e1;
  EXPECT_EQ(cudaEventCreate(&e0), cudaSuccess);
  EXPECT_EQ(cudaEventCreate(&e1), cudaSuccess);
  std::vector<float> ms;
  for (int it = 0; it < 60; ++it) {
    cudaEventRecord(e0, env.stream);
    cudaGraphLaunch(exec, env.stream);
    cudaEventRecord(e1, env.stream);
    EXPECT_EQ(cudaEventSynchronize(e1), cudaSuccess);
    float x = 0;
    cudaEventElapsedTime(&x, e0, e1);
    if (it >= 10) ms.push_back(x);
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

// BERT-base attention at batch 1, 8 and 64, sequence 128 (12 heads of 64, token-major Q / K / V / O, bool mask
// [B, 1, S, S] and the guard, as the fused BERT engine runs it): time per call and per 12 layers, for the heuristic's
// block shape and each forced one. Prints; asserts only that the results are right.
TEST(CudaAttentionFused, BertBaseShapeTimed) {
  KILN_SKIP_WITHOUT_CUDA();
  const char* only = std::getenv("KILN_ATTN_BENCH_BATCH");  // one batch size only (for a profiler run)
  for (int64_t B : {1, 8, 64}) {
    if (only && std::atoll(only) != B) continue;
    Case c;
    c.B = B, c.H = 12, c.Sq = c.Sk = 128, c.D = 64, c.mask = MaskKind::Bool, c.guard = true;
    check_case(c, "cuda");
    for (const char* tactic : {"cuda", "cuda#rows=16", "cuda#rows=64"}) {
      const double med = time_12_layers(c, tactic);
      EXPECT_GT(med, 0.0) << tactic;
      const double flops = 4.0 * c.B * c.H * c.Sq * c.Sk * c.D * 12;
      const double bytes = (4.0 * c.B * c.Sq * c.H * c.D * 2 + c.B * c.Sq * c.Sk) * 12;
      std::cout << "[attn-bench] BERT-base b" << B << " s128 fp16 " << tactic << ", 12 layers: " << med << " ms ("
                << med / 12 * 1000 << " us per layer), " << flops / med / 1e9 << " TFLOP/s, " << bytes / med / 1e6
                << " GB/s\n";
    }
  }
}

}  // namespace
}  // namespace kiln::test_attn
#endif  // KILN_WITH_CUDA
