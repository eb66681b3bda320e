// QKV projection fusion (fuse_qkv.cpp, docs/passes.md): in CUDA engines the three projections feeding a
// kiln.Attention become one GEMM read with packed_qkv = 1. Checked on the committed real-architecture transformers
// (no GPU needed: the engine graphs run on the reference kernels): every attention block of the dynamo BERT export
// packs (GPT-2 and ViT already project with one GEMM), the engine equals the unpacked one, the switch and CPU engines
// leave it alone, the attribute survives a plan round trip, and a packed kiln.Attention node equals the unpacked
// node on the sliced tensors.
// (On a GPU host the RealArch* tests run these engines on the device.)
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "attention_test_util.h"
#include "kiln/compare.h"
#include "kiln/io.h"
#include "kiln/kiln.h"
#include "ops/fused_ops.h"
#include "runtime/engine_impl.h"

namespace kiln::test_attn {
namespace {

namespace ka = ops::kattn;
const std::string kModels = std::string(KILN_SOURCE_DIR) + "/tests/models/real_arch";
const std::string kRefs = std::string(KILN_TEST_MODELS) + "/real_arch";

size_t packed(const ir::Graph& g) {
  size_t c = 0;
  for (const auto& n : g.nodes)
    if (n.domain == ka::kDomain && n.op_type == ka::kOpType && ka::decode(n).packed_qkv) ++c;
  return c;
}
size_t fused_matmuls(const ir::Graph& g) { return test_fuse::count_op(g, ops::fused_ops::kFusedMatMul); }

#if KILN_WITH_CUDA
Engine build(const Model& m, Target t, Precision p, bool qkv) {
  BuildConfig cfg;
  cfg.target = t;
  cfg.precision = p;
  Profile pr;
  for (const auto& ti : m.inputs()) {
    Shape mn{1}, opt{2}, mx{4};
    for (size_t d = 1; d < ti.dims.size(); ++d)
      mn.push_back(ti.dims[d].value), opt.push_back(ti.dims[d].value), mx.push_back(ti.dims[d].value);
    pr.add_input_shape(ti.name, mn, opt, mx);
  }
  cfg.profiles.push_back(pr);
  if (!qkv) {
    EXPECT_EQ(setenv("KILN_FUSE_QKV", "0", 1), 0);
  }
  EXPECT_EQ(setenv("KILN_CUDA_TACTIC_TIMING", "0", 1), 0);
  Engine e = build_engine(m, cfg);
  unsetenv("KILN_CUDA_TACTIC_TIMING");
  if (!qkv) unsetenv("KILN_FUSE_QKV");
  return e;
}

TensorMap load_case(const std::string& dir, const std::vector<TensorInfo>& infos, const char* prefix) {
  TensorMap m;
  for (const auto& ti : infos) m[ti.name] = load_npy(dir + "/" + prefix + ti.name + ".npy");
  return m;
}

// GPT-2 and ViT project Q, K and V with one GEMM already (a Split / Slice of it feeds the attention): nothing packs.
struct Case {
  std::string tag;
  bool packs;
};
class QkvRealArch : public testing::TestWithParam<Case> {};

TEST_P(QkvRealArch, EveryBlockPacksAndTheEngineIsUnchanged) {
  const std::string tag = GetParam().tag;
  const Model m = Model::load(kModels + "/" + tag + ".onnx");
  for (Precision p : {Precision::FP32, Precision::FP16}) {
    const char* prec = p == Precision::FP32 ? "fp32" : "fp16";
    SCOPED_TRACE(prec);
    const Engine on = build(m, Target::Cuda, p, true), off = build(m, Target::Cuda, p, false);
    const ir::Graph &g = on.impl()->graph, &g0 = off.impl()->graph;
    const size_t blocks = count_attention(g0);
    ASSERT_GT(blocks, 0u) << tag;
    const size_t want_packed = GetParam().packs ? blocks : 0;
    EXPECT_EQ(packed(g), want_packed) << tag;
    EXPECT_EQ(packed(g0), 0u);
    EXPECT_EQ(fused_matmuls(g) + 2 * want_packed, fused_matmuls(g0)) << "three projections -> one per block";
    EXPECT_EQ(g.nodes.size() + 2 * want_packed, g0.nodes.size());
    // The unused per-projection weights are gone (DCE): the packed engine carries no more weight bytes.
    size_t w = 0, w0 = 0;
    for (const auto& kv : g.initializers) w += kv.second.nbytes();
    for (const auto& kv : g0.initializers) w0 += kv.second.nbytes();
    EXPECT_EQ(w, w0);
    for (const char* c : {"b1", "b3"}) {
      const std::string dir = kRefs + "/" + tag + "/" + c;
      const TensorMap in = load_case(dir, m.inputs(), "in_");
      const TensorMap got = runtime::cpu::run_graph_reference(g, in);
      const TensorMap unpacked = runtime::cpu::run_graph_reference(g0, in);
      const TensorMap want = load_case(dir, m.outputs(), "out_");
      for (const auto& o : m.outputs()) {
        EXPECT_TRUE(test_fuse::bit_equal(got.at(o.name), unpacked.at(o.name))) << tag << " " << c << " " << o.name;
        const Comparison cmp = compare(got.at(o.name), want.at(o.name), tolerance_for(prec));
        EXPECT_TRUE(cmp.passed) << tag << " " << prec << " " << c << " " << o.name << ": " << cmp.reason;
      }
    }
  }
}
INSTANTIATE_TEST_SUITE_P(FuseQkv, QkvRealArch,
                         testing::Values(Case{"bert_dynamo", true}, Case{"gpt2_dynamo", false},
                                         Case{"vit_dynamo", false}),
                         [](const testing::TestParamInfo<Case>& i) { return i.param.tag; });

TEST(FuseQkvBuild, CpuEnginesAndPlanRoundTrip) {
  const Model m = Model::load(kModels + "/bert_dynamo.onnx");
  EXPECT_EQ(packed(build(m, Target::Cpu, Precision::FP16, true).impl()->graph), 0u) << "CPU engines are not fused";
  const Engine e = build(m, Target::Cuda, Precision::FP16, true);
  ASSERT_GT(packed(e.impl()->graph), 0u);
  const std::string path =
      (std::filesystem::temp_directory_path() / ("kiln_qkv_" + std::to_string(::getpid()) + ".plan")).string();
  e.save(path);
  const Engine l = Engine::load(path);
  std::filesystem::remove(path);
  EXPECT_EQ(packed(l.impl()->graph), packed(e.impl()->graph));
}
#endif

// One packed node against the same node unpacked on the three thirds of the packed value (reference kernels).
TEST(FuseQkvOp, PackedNodeEqualsUnpackedOnTheThirds) {
  const int64_t B = 2, S = 5, H = 3, D = 4, C = H * D;
  const Tensor qkv = random_tensor(DType::Float32, {B, S, 3 * C}, 7);
  Tensor part[3];
  for (int j = 0; j < 3; ++j) {
    part[j] = Tensor(DType::Float32, {B, S, C});
    for (int64_t r = 0; r < B * S; ++r)
      std::memcpy(part[j].mutable_as<float>() + r * C, qkv.as<float>() + r * 3 * C + j * C, C * sizeof(float));
  }
  const Tensor mask = random_tensor(DType::Float32, {B, 1, 1, S}, 8);
  auto node = [&](bool pk) {
    ir::Node n;
    n.name = pk ? "packed" : "plain";
    n.domain = ka::kDomain;
    n.op_type = ka::kOpType;
    n.opset = 1;
    ka::Params p;
    p.scale = 0.5f;
    p.num_heads = H;
    p.q = p.k = p.v = p.out = ka::Layout::BSD;
    p.mask = ka::MaskMode::Add;
    p.packed_qkv = pk;
    ka::encode(p, n);
    n.inputs = pk ? std::vector<std::string>{"qkv", "qkv", "qkv", "m"} : std::vector<std::string>{"q", "k", "v", "m"};
    n.outputs = {"o"};
    return n;
  };
  auto run = [&](const ir::Node& n, const TensorMap& feeds) {
    GraphBuilder b;
    for (const auto& kv : feeds) b.input(kv.first, kv.second.dtype(), kv.second.shape());
    ir::Graph g = b.g;
    g.nodes.push_back(n);
    g.outputs = {"o"};
    ir::infer_types(g);
    const ir::ValueType* t = g.type_of("o");
    EXPECT_TRUE(t && t->is_static() && t->static_shape() == Shape({B, S, C}));
    return runtime::cpu::run_graph_reference(g, feeds).at("o");
  };
  const Tensor a = run(node(true), {{"qkv", qkv}, {"m", mask}});
  const Tensor b = run(node(false), {{"q", part[0]}, {"k", part[1]}, {"v", part[2]}, {"m", mask}});
  EXPECT_TRUE(test_fuse::bit_equal(a, b));
  // A packed value whose last axis is not 3 x heads x D is an InvalidModel naming the node.
  GraphBuilder bad;
  bad.input("qkv", DType::Float32, {B, S, 3 * C + 1});
  bad.input("m", DType::Float32, {B, 1, 1, S});
  ir::Graph g = bad.g;
  g.nodes.push_back(node(true));
  g.outputs = {"o"};
  try {
    ir::infer_types(g);
    ADD_FAILURE() << "expected InvalidModel";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::InvalidModel);
    EXPECT_NE(std::string(e.what()).find("packed"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kiln::test_attn
