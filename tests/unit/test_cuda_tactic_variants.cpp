// Parameterized CUDA tactics (src/runtime/cuda/tactic_variant.h: "cublaslt#<algo>", "cudnn#algo=...,math=...") and
// the builder's CUDA tactic timing (src/builder/cuda_tactics.h over runtime/cuda/tactic_bench.h): names and variants
// round-trip, the registry matches the base name, every variant a library lists runs and matches the reference, a
// variant the library refuses falls back to the heuristic with one warning, a timed build records its winners and a
// warm timing cache times nothing. The GPU tests skip without a device; the rest run everywhere.
#if KILN_WITH_CUDA
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "temp_dir_util.h"
#include "builder/cuda_tactics.h"
#include "builder/timing_cache.h"
#include "cuda_op_test_util.h"
#include "kiln/kiln.h"
#include "runtime/cuda/tactic_variant.h"
#include "util/fs.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;
using runtime::cuda::DnnVariant;
using test_cuda::rand_tensor;
using test_ops::In;

// Collects warnings while alive.
struct Warnings {
  std::vector<std::string> lines;
  Warnings() {
    set_log_sink([this](LogLevel l, const std::string& m) {
      if (l >= LogLevel::Warning) lines.push_back(m);
    });
  }
  ~Warnings() { set_log_sink(nullptr); }
  size_t count(const std::string& part) const {
    size_t n = 0;
    for (const auto& l : lines) n += l.find(part) != std::string::npos;
    return n;
  }
};

using test_util::TempDir;

TEST(CudaTacticVariant, NamesSplitAtTheFirstHash) {
  using namespace runtime::cuda;
  EXPECT_EQ(tactic_base("cublaslt"), "cublaslt");
  EXPECT_EQ(tactic_variant("cublaslt"), "");
  EXPECT_EQ(tactic_base("cublaslt#00ff"), "cublaslt");
  EXPECT_EQ(tactic_variant("cublaslt#00ff"), "00ff");
  EXPECT_EQ(tactic_variant("cudnn#algo=GEMM,math=fma#x"), "algo=GEMM,math=fma#x");
  EXPECT_EQ(with_variant("cudnn", ""), "cudnn");
  EXPECT_EQ(with_variant("cudnn", "algo=GEMM,math=fma"), "cudnn#algo=GEMM,math=fma");
}

TEST(CudaTacticVariant, CublasLtAlgorithmRoundTrips) {
  using namespace runtime::cuda;
  std::mt19937_64 rng(7);
  for (int rep = 0; rep < 20; ++rep) {
    cublasLtMatmulAlgo_t a{};
    for (auto& w : a.data) w = rng();
    const std::string hex = encode_lt_algo(a);
    ASSERT_EQ(hex.size(), 128u);
    EXPECT_EQ(hex.find_first_not_of("0123456789abcdef"), std::string::npos) << hex;
    cublasLtMatmulAlgo_t b{};
    ASSERT_TRUE(decode_lt_algo(hex, &b));
    for (size_t i = 0; i < 8; ++i) EXPECT_EQ(a.data[i], b.data[i]);
    std::string upper = hex;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    cublasLtMatmulAlgo_t u{};
    ASSERT_TRUE(decode_lt_algo(upper, &u));
    EXPECT_EQ(std::memcmp(a.data, u.data, sizeof(a.data)), 0);
  }
  cublasLtMatmulAlgo_t keep{};
  keep.data[0] = 42;
  const std::string good(128, 'a');
  for (const std::string& bad : {std::string(), std::string(127, 'a'), good + "a", std::string(126, 'a') + "zz",
                                 std::string(64, '0') + std::string(63, '1') + "-"}) {
    EXPECT_FALSE(decode_lt_algo(bad, &keep)) << bad;
    EXPECT_EQ(keep.data[0], 42u);  // left alone
  }
}

TEST(CudaTacticVariant, CudnnVariantRoundTrips) {
  using namespace runtime::cuda;
  for (bool bwd : {false, true}) {
    const int algos = bwd ? static_cast<int>(CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT)
                          : static_cast<int>(CUDNN_CONVOLUTION_FWD_ALGO_COUNT);
    for (int a = 0; a < algos; ++a)
      for (int m : {CUDNN_DEFAULT_MATH, CUDNN_TENSOR_OP_MATH, CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION, CUDNN_FMA_MATH}) {
        const std::string s = encode_dnn_variant(bwd, DnnVariant{a, m});
        DnnVariant v;
        ASSERT_TRUE(decode_dnn_variant(s, bwd, &v)) << s;
        EXPECT_EQ(v, (DnnVariant{a, m})) << s;
      }
  }
  EXPECT_EQ(encode_dnn_variant(false, DnnVariant{CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, CUDNN_TENSOR_OP_MATH}),
            "algo=IMPLICIT_PRECOMP_GEMM,math=tensor");
  EXPECT_EQ(encode_dnn_variant(true, DnnVariant{CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, CUDNN_FMA_MATH}), "algo=ALGO_1,math=fma");
  DnnVariant v{5, 1};
  EXPECT_TRUE(decode_dnn_variant("math=fma,algo=WINOGRAD", false, &v));  // field order is free
  EXPECT_EQ(v, (DnnVariant{CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD, CUDNN_FMA_MATH}));
  for (const char* bad : {"", "algo=GEMM", "math=fma", "algo=GEMM,math=fast", "algo=BOGUS,math=fma",
                          "algo=GEMM,math=fma,extra=1", "algo=GEMM,algo=GEMM,math=fma", "algo=GEMM;math=fma",
                          "algo=ALGO_0,math=fma"}) {
    DnnVariant w{3, 3};
    EXPECT_FALSE(decode_dnn_variant(bad, false, &w)) << bad;
    EXPECT_EQ(w, (DnnVariant{3, 3})) << bad;
  }
  DnnVariant w;
  EXPECT_FALSE(decode_dnn_variant("algo=IMPLICIT_GEMM,math=tensor", true, &w));  // a forward name for backward data
}

TEST(CudaTacticVariant, RegistryMatchesTheBaseName) {
  runtime::cuda::register_all_cuda_kernels();
  ir::Graph g = test_ops::make_graph("MatMul", 13, {rand_tensor(DType::Float16, {4, 8}, 1), rand_tensor(DType::Float16, {8, 3}, 2)},
                                     {}, 1);
  const ir::Node& n = g.nodes[0];
  const runtime::cuda::CudaTactic* plain = runtime::cuda::find_cuda_tactic(n, "cublaslt");
  ASSERT_NE(plain, nullptr);
  EXPECT_EQ(runtime::cuda::find_cuda_tactic(n, "cublaslt#" + std::string(128, '0')), plain);
  EXPECT_EQ(runtime::cuda::find_cuda_tactic(n, "cublaslt#anything"), plain);
  EXPECT_EQ(runtime::cuda::find_cuda_tactic(n, "nope#cublaslt"), nullptr);
  EXPECT_EQ(runtime::cuda::find_cuda_tactic(n, "cublas"), nullptr);
}

TEST(CudaTacticVariant, TimingTargetNamesTheLibraryVersions) {
  const std::string t = builder::timing_target(Target::Cuda, 0);
  EXPECT_EQ(t.rfind("cuda:", 0), 0u) << t;
  EXPECT_NE(t.find("cuBLASLt " + std::to_string(cublasLtGetVersion())), std::string::npos) << t;
  EXPECT_NE(t.find("cuDNN " + std::to_string(cudnnGetVersion())), std::string::npos) << t;
  EXPECT_EQ(builder::cuda_signature_suffix(false, 0), " | cuda");
  EXPECT_EQ(builder::cuda_signature_suffix(true, 1024), " | cuda tf32 ws<=1024");
  EXPECT_EQ(builder::cuda_variant_breadth(1), 4u);
  EXPECT_EQ(builder::cuda_variant_breadth(3), 8u);
  EXPECT_EQ(builder::cuda_variant_breadth(5), 32u);
}

Model demo() { return Model::load(std::string(KILN_SOURCE_DIR) + "/models/kiln_demo_cnn.onnx"); }
BuildConfig demo_cuda(int level, const std::string& cache = "") {
  BuildConfig cfg;
  cfg.target = Target::Cuda;
  cfg.precision = Precision::FP16;
  cfg.optimization_level = level;
  cfg.profiles.push_back(Profile().add_input_shape("input", {1, 3, 64, 64}, {2, 3, 64, 64}, {4, 3, 64, 64}));
  cfg.timing_cache_path = cache;
  return cfg;
}

bool timing_disabled();

// Without timing (no GPU on the build host, optimization_level 0, or KILN_CUDA_TACTIC_TIMING=0) every node keeps the
// heuristic's plain choice.
TEST(CudaTacticTiming, WithoutTimingTheHeuristicChoiceStays) {
  for (int level : {0, 3}) {
    if (level > 0 && cuda_device_count() > 0 && !timing_disabled()) continue;  // with a GPU, level 3 times (below)
    TempDir dir;
    BuildStats stats;
    BuildConfig cfg = demo_cuda(level, (dir.p / "timing.cache").string());
    cfg.stats = &stats;
    Engine e = build_engine(demo(), cfg);
    EXPECT_EQ(stats.tactics_timed, 0u) << "level " << level;
    EXPECT_EQ(stats.tactic_candidates_timed, 0u);
    for (const NodeInfo& n : e.nodes()) {
      EXPECT_EQ(n.tactic.find('#'), std::string::npos) << n.name << ": " << n.tactic;
      if (n.op == "Conv") {
        EXPECT_EQ(n.tactic, "cudnn") << n.name;
      }
      if (n.op == "Gemm") {
        EXPECT_EQ(n.tactic, "cublaslt") << n.name;
      }
    }
    EXPECT_GE(stats.total_s, stats.tactics_s);
    EXPECT_GT(stats.total_s, 0.0);
    // Untimed entries only: a later timed build must not take them as measured.
    const builder::TimingCache c = builder::TimingCache::load((dir.p / "timing.cache").string());
    EXPECT_GT(c.size(), 0u);
  }
}

// ---- GPU ---------------------------------------------------------------------------------------------------------

struct NodeCase {
  std::string what, op;
  int64_t opset;
  std::vector<In> in;
  test_ops::Attrs attrs;
  std::string tactic, precision;
};

std::vector<NodeCase> variant_cases() {
  using ir::Attr;
  auto c = [](Tensor t) { return test_ops::Const(std::move(t)); };
  return {
      {"MatMul fp16", "MatMul", 13, {rand_tensor(DType::Float16, {2, 64, 96}, 1), c(rand_tensor(DType::Float16, {96, 80}, 2))}, {}, "cublaslt", "fp16"},
      {"MatMul fp32 batched", "MatMul", 13, {rand_tensor(DType::Float32, {3, 40, 24}, 3), rand_tensor(DType::Float32, {3, 24, 56}, 4)}, {}, "cublaslt", "fp32"},
      {"Gemm fp32 bias transB", "Gemm", 13, {rand_tensor(DType::Float32, {48, 32}, 5), c(rand_tensor(DType::Float32, {72, 32}, 6)), c(rand_tensor(DType::Float32, {72}, 7))},
       {{"transB", Attr{int64_t(1)}}}, "cublaslt", "fp32"},
      {"Conv fp16", "Conv", 11, {rand_tensor(DType::Float16, {2, 16, 14, 14}, 8), c(rand_tensor(DType::Float16, {32, 16, 3, 3}, 9)), c(rand_tensor(DType::Float16, {32}, 10))},
       {{"pads", Attr{std::vector<int64_t>{1, 1, 1, 1}}}}, "cudnn", "fp16"},
      {"Conv fp16 channels-last", "Conv", 11, {rand_tensor(DType::Float16, {2, 16, 14, 14}, 11), c(rand_tensor(DType::Float16, {32, 16, 3, 3}, 12))},
       {{"pads", Attr{std::vector<int64_t>{1, 1, 1, 1}}}}, "cudnn_nhwc", "fp16"},
      {"Conv fp32", "Conv", 11, {rand_tensor(DType::Float32, {1, 8, 17, 15}, 13), c(rand_tensor(DType::Float32, {12, 8, 5, 5}, 14))},
       {{"strides", Attr{std::vector<int64_t>{2, 2}}}}, "cudnn", "fp32"},
      {"ConvTranspose fp32", "ConvTranspose", 11, {rand_tensor(DType::Float32, {1, 6, 7, 7}, 15), c(rand_tensor(DType::Float32, {6, 4, 3, 3}, 16))},
       {{"strides", Attr{std::vector<int64_t>{2, 2}}}}, "cudnn", "fp32"},
  };
}

// Runs case `c` with tactic name `tactic` (recorded in the node, as a plan would) and compares with the reference
// (relative L2: the listed variants include FFT / Winograd algorithms, correct but not element-wise exact in float32;
// the builder's timing refuses those for float32 engines).
void check_with_tactic(const NodeCase& c, const std::string& tactic) {
  ir::Graph g = test_ops::make_graph(c.op, c.opset, c.in, c.attrs, 1);
  TensorMap feeds;
  for (size_t i = 0; i < c.in.size(); ++i)
    if (!c.in[i].t.empty() && !c.in[i].constant) feeds[test_ops::vname('x', i)] = c.in[i].t;
  ir::Graph ref_g = g;
  ir::infer_types(ref_g);
  const TensorMap ref = runtime::cpu::run_graph_reference(ref_g, feeds);
  g.nodes[0].tactic = tactic;
  std::vector<Tensor> got = test_cuda::run_cuda_node(g, feeds, tactic);
  ASSERT_EQ(got.size(), 1u) << c.what << " " << tactic;
  Tolerance tol;
  tol.metric = Metric::RelativeL2;
  tol.bound = c.precision == "fp16" ? 1e-2 : 1e-4;
  const Comparison cmp = compare(got[0], ref.at(test_ops::vname('y', 0)), tol);
  EXPECT_TRUE(cmp.passed) << c.what << " [" << tactic << "]: " << cmp.reason << "; rel_l2 " << cmp.rel_l2;
}

// The variants the heuristic run of `c` lists (VariantProbe), the first being the plain name's own choice.
std::vector<std::string> listed_variants(const NodeCase& c, size_t max) {
  ir::Graph g = test_ops::make_graph(c.op, c.opset, c.in, c.attrs, 1);
  TensorMap feeds;
  for (size_t i = 0; i < c.in.size(); ++i)
    if (!c.in[i].t.empty() && !c.in[i].constant) feeds[test_ops::vname('x', i)] = c.in[i].t;
  g.nodes[0].tactic = c.tactic;
  runtime::cuda::VariantProbe probe(max);
  test_cuda::run_cuda_node(g, feeds, c.tactic);
  EXPECT_TRUE(probe.recorded()) << c.what;
  return probe.variants();
}

TEST(CudaTacticVariant, EveryListedVariantRunsAndMatchesTheReference) {
  KILN_SKIP_WITHOUT_CUDA();
  for (const NodeCase& c : variant_cases()) {
    const std::vector<std::string> vs = listed_variants(c, 8);
    ASSERT_FALSE(vs.empty()) << c.what << ": no variant listed";
    EXPECT_LE(vs.size(), 8u);
    if (c.op == "MatMul" || c.op == "Gemm") {
      EXPECT_GE(vs.size(), 2u) << c.what << ": cuBLASLt lists one algorithm";
    }
    Warnings w;
    for (const std::string& v : vs) check_with_tactic(c, runtime::cuda::with_variant(c.tactic, v));
    EXPECT_TRUE(w.lines.empty()) << c.what << ": a listed variant fell back: " << w.lines.front();
  }
}

TEST(CudaTacticVariant, InvalidVariantFallsBackToTheHeuristicWithOneWarning) {
  KILN_SKIP_WITHOUT_CUDA();
  const std::vector<NodeCase> cases = variant_cases();
  // cuBLASLt: malformed hex, and an algorithm of another problem (float64) on a float16 GEMM.
  {
    const NodeCase& mm = cases[0];
    NodeCase f64 = {"MatMul fp64", "MatMul", 13, {rand_tensor(DType::Float64, {2, 64, 96}, 1),
                                                   test_ops::Const(rand_tensor(DType::Float64, {96, 80}, 2))},
                    {}, "cublaslt", "fp32"};
    const std::vector<std::string> other = listed_variants(f64, 1);
    ASSERT_EQ(other.size(), 1u);
    Warnings w;
    for (int rep = 0; rep < 2; ++rep) check_with_tactic(mm, "cublaslt#zz" + std::string(126, '0'));
    EXPECT_EQ(w.count("does not run"), 1u) << "malformed cuBLASLt variant";
    for (int rep = 0; rep < 2; ++rep) check_with_tactic(mm, "cublaslt#" + other[0]);
    EXPECT_LE(w.count("does not run"), 2u);
  }
  // cuDNN: an unknown algorithm name, and FFT on a strided, dilated conv (cuDNN's FFT takes neither).
  {
    NodeCase conv = cases[5];
    conv.attrs["dilations"] = ir::Attr{std::vector<int64_t>{2, 2}};
    Warnings w;
    for (int rep = 0; rep < 2; ++rep) check_with_tactic(conv, "cudnn#algo=BOGUS,math=fma");
    EXPECT_EQ(w.count("does not run the algorithm of tactic variant 'algo=BOGUS,math=fma'"), 1u);
    for (int rep = 0; rep < 2; ++rep) check_with_tactic(conv, "cudnn#algo=FFT,math=fma");
    EXPECT_EQ(w.count("algo=FFT,math=fma"), 1u);
    const NodeCase& convt = cases[6];
    for (int rep = 0; rep < 2; ++rep) check_with_tactic(convt, "cudnn#algo=IMPLICIT_GEMM,math=fma");  // a forward name
    EXPECT_EQ(w.count("'algo=IMPLICIT_GEMM,math=fma'"), 1u);
  }
}

bool timing_disabled() {
  const char* e = std::getenv("KILN_CUDA_TACTIC_TIMING");
  return e && std::string(e) == "0";
}

TEST(CudaTacticTiming, ColdBuildTimesAndRecordsWinnersAWarmCacheTimesNothing) {
  KILN_SKIP_WITHOUT_CUDA();
  if (timing_disabled()) GTEST_SKIP() << "KILN_CUDA_TACTIC_TIMING=0";
  TempDir dir;
  const std::string cache = (dir.p / "timing.cache").string();
  BuildStats cold;
  BuildConfig cfg = demo_cuda(3, cache);
  cfg.stats = &cold;
  Engine e = build_engine(demo(), cfg);
  size_t gemm_like = 0;
  for (const NodeInfo& n : e.nodes()) gemm_like += n.op == "Conv" || n.op == "Gemm";
  ASSERT_GT(gemm_like, 5u);
  EXPECT_GT(cold.tactics_timed, 0u);
  EXPECT_LE(cold.tactics_timed, gemm_like);  // same-signature nodes are timed once
  EXPECT_GE(cold.tactic_candidates_timed, 2 * cold.tactics_timed);
  EXPECT_GT(cold.tactics_s, 0.0);
  // Every timed entry (target: this GPU and its libraries) names a registered tactic, has a time and counts its
  // candidates; every Conv / Gemm of the engine runs a tactic some timed entry chose.
  const nlohmann::json j = nlohmann::json::parse(util::read_file(cache));
  const std::string target = builder::timing_target(Target::Cuda, 0);
  std::set<std::string> chosen;
  size_t timed_entries = 0;
  for (const auto& en : j["entries"]) {
    if (en["target"] != target || en["time_us"].get<double>() < 0) continue;
    ++timed_entries;
    const std::string sig = en["signature"], tactic = en["tactic"];
    // kiln.Conv: the channels-last conv of fp16 engines (layout_nhwc pass).
    EXPECT_TRUE(sig.rfind("Conv ", 0) == 0 || sig.rfind("Conv@kiln ", 0) == 0 || sig.rfind("Gemm ", 0) == 0) << sig;
    EXPECT_NE(sig.find(" | cuda tf32"), std::string::npos) << sig;
    EXPECT_GE(en["candidates"].get<int>(), 2) << sig;
    const std::string base(runtime::cuda::tactic_base(tactic));
    EXPECT_TRUE(base == "cudnn" || base == "cudnn_nhwc" || base == "cudnn_epilogue" || base == "cudnn_graph" ||
                base == "cuda" || base == "cublaslt")
        << tactic;
    chosen.insert(tactic);
  }
  for (const NodeInfo& n : e.nodes())
    if (n.op == "Conv" || n.op == "Gemm") {
      EXPECT_TRUE(chosen.count(n.tactic)) << n.name << ": " << n.tactic;
    }
  EXPECT_GT(timed_entries, 0u);
  const TensorMap in = {{"input", rand_tensor(DType::Float32, {2, 3, 64, 64}, 99)}};
  BuildConfig cpu_cfg;
  cpu_cfg.profiles = cfg.profiles;
  const TensorMap want = build_engine(demo(), cpu_cfg).create_context().run(in);
  const TensorMap got = e.create_context().run(in);
  for (const auto& [name, t] : want) {
    const Comparison cmp = compare(got.at(name), t, tolerance_for("fp16"));
    EXPECT_TRUE(cmp.passed) << name << ": " << cmp.reason;
  }

  BuildStats warm;
  cfg.stats = &warm;
  Engine again = build_engine(demo(), cfg);
  EXPECT_EQ(warm.tactics_timed, 0u);  // a warm cache times nothing
  EXPECT_EQ(warm.tactic_candidates_timed, 0u);
  EXPECT_EQ(warm.timing_cache_hits, again.nodes().size());
  EXPECT_EQ(warm.timing_cache_misses, 0u);
  ASSERT_EQ(again.nodes().size(), e.nodes().size());
  for (size_t i = 0; i < e.nodes().size(); ++i) EXPECT_EQ(again.nodes()[i].tactic, e.nodes()[i].tactic) << i;
}

}  // namespace
}  // namespace kiln
#endif  // KILN_WITH_CUDA
