// CUDA runtime, the parts that need no GPU: the arena's liveness planner, shape instances with host-known
// values, the CUDA target string, and building CUDA engines (the builder needs no GPU; activation does).
// GPU tests: test_cuda_runtime_gpu.cpp.
#include <gtest/gtest.h>

#include <random>

#include "cuda_test_util.h"
#include "kiln/device.h"
#include "kiln/kiln.h"
#include "ir/op_registry.h"
#include "runtime/memory_plan.h"
#include "runtime/shape_instance.h"
#include "runtime/target.h"
#if KILN_WITH_CUDA
#include "runtime/cuda/instance.h"
#include "runtime/cuda/kernel.h"
#include "runtime/cuda/tactic_select.h"
#endif

using namespace kiln;
using namespace kiln::runtime;
using kiln::cuda_test::mk;

TEST(CudaMemoryPlan, ChainReusesMemoryAndAligns) {
  // a(0..1) -> b(1..2) -> c(2..3) -> d(3..4): at most two buffers are alive at a time.
  std::vector<BufferRequest> r = {{1000, 0, 1}, {1000, 1, 2}, {1000, 2, 3}, {1000, 3, 4}};
  MemoryPlan p = plan_memory(r);
  EXPECT_TRUE(plan_is_valid(r, p));
  EXPECT_EQ(p.sum, 4 * align_up(1000));
  EXPECT_EQ(p.total, 2 * align_up(1000));
  for (size_t o : p.offsets) EXPECT_EQ(o % kArenaAlignment, 0u);
  EXPECT_NE(p.offsets[0], p.offsets[1]);
  EXPECT_EQ(p.offsets[0], p.offsets[2]);  // a is dead when c is written
}

TEST(CudaMemoryPlan, AllAliveNeedsTheSumAndZeroSizedBuffersTakeNothing) {
  std::vector<BufferRequest> r = {{300, 0, 5}, {10, 0, 5}, {0, 0, 5}, {700, 0, 5}};
  MemoryPlan p = plan_memory(r);
  EXPECT_TRUE(plan_is_valid(r, p));
  EXPECT_EQ(p.total, align_up(300) + align_up(10) + align_up(700));
}

TEST(CudaMemoryPlan, BestFitPutsASmallBufferIntoTheGap) {
  // big1 [0,1], big2 [0,3]; after big1 dies a small one fits where big1 was instead of growing the arena.
  std::vector<BufferRequest> r = {{4096, 0, 1}, {4096, 0, 3}, {512, 2, 3}};
  MemoryPlan p = plan_memory(r);
  EXPECT_TRUE(plan_is_valid(r, p));
  EXPECT_EQ(p.total, 2 * 4096u);
}

TEST(CudaMemoryPlan, RandomPlansAreValidAndTheCheckerCatchesOverlap) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<BufferRequest> r;
    const int n = 1 + static_cast<int>(rng() % 40);
    for (int i = 0; i < n; ++i) {
      int64_t a = rng() % 30, b = a + rng() % 10;
      r.push_back({static_cast<size_t>(rng() % 5000), a, b});
    }
    MemoryPlan p = plan_memory(r);
    ASSERT_TRUE(plan_is_valid(r, p)) << "trial " << trial;
    EXPECT_LE(p.total, p.sum);
  }
  // The checker is not vacuous: two live buffers at the same offset are rejected.
  std::vector<BufferRequest> r = {{256, 0, 2}, {256, 1, 3}};
  MemoryPlan bad;
  bad.offsets = {0, 0};
  bad.total = 256;
  EXPECT_FALSE(plan_is_valid(r, bad));
}

TEST(CudaShapeInstance, ShapeArithmeticIsHostKnownAndShapesAreStatic) {
  ir::Graph g = cuda_test::shape_arith_graph();
  GraphIndex idx(g);
  InstanceShapes s = infer_instance(idx, {ir::ValueType::of(DType::Float32, {6, 4})});
  // Shape, Gather, Unsqueeze, Concat run on the host; Reshape and Relu do not.
  for (size_t i = 0; i < 4; ++i) EXPECT_TRUE(s.host_node[i]) << g.nodes[i].op_type;
  EXPECT_FALSE(s.host_node[4]);
  EXPECT_FALSE(s.host_node[5]);
  const Tensor& shape = s.host[static_cast<size_t>(idx.lookup("shape"))];
  ASSERT_FALSE(shape.empty());
  EXPECT_EQ(shape.at_int64(0), 6);
  EXPECT_EQ(shape.at_int64(1), 2);
  const ir::ValueType& y = s.type[static_cast<size_t>(idx.lookup("y"))];
  ASSERT_TRUE(y.is_static());
  EXPECT_EQ(y.static_shape(), (Shape{6, 2, 2}));
  // Another key, another answer.
  InstanceShapes s2 = infer_instance(idx, {ir::ValueType::of(DType::Float32, {3, 4})});
  EXPECT_EQ(s2.type[static_cast<size_t>(idx.lookup("y"))].static_shape(), (Shape{3, 2, 2}));
}

TEST(CudaShapeInstance, DataDependentShapesStayUnknownDownstream) {
  ir::register_all_ops();
  ir::Graph g;
  g.inputs = {"x"};
  g.types["x"] = ir::ValueType::of(DType::Float32, {5});
  g.nodes.push_back(mk("NonZero", {"x"}, {"nz"}));
  g.nodes.push_back(mk("Shape", {"nz"}, {"s"}));
  g.nodes.push_back(mk("Relu", {"x"}, {"r"}));
  g.outputs = {"s", "r"};
  ir::infer_types(g);
  GraphIndex idx(g);
  InstanceShapes s = infer_instance(idx, {ir::ValueType::of(DType::Float32, {5})});
  EXPECT_FALSE(s.static_node[0]);  // NonZero: [1, ?]
  EXPECT_FALSE(s.host_node[1]);    // Shape of an unknown shape is not host-known yet
  EXPECT_TRUE(s.static_node[2]);
  EXPECT_EQ(s.type[static_cast<size_t>(idx.lookup("r"))].static_shape(), (Shape{5}));
}

TEST(CudaShapeInstance, BadShapesAreErrorsNamingTheNode) {
  ir::Graph g = cuda_test::shape_arith_graph();
  GraphIndex idx(g);
  // 5 x 3 = 15 elements cannot be reshaped to [5, 2, 2].
  try {
    infer_instance(idx, {ir::ValueType::of(DType::Float32, {5, 3})});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Reshape"), std::string::npos) << e.what();
  }
}

TEST(CudaTarget, OptionsRoundTrip) {
  CudaTarget t;
  t.arch = "sm_90";
  t.tf32 = true;
  t.workspace_cap = 1 << 20;
  const std::string s = cuda_target_string(t);
  EXPECT_EQ(s, "cuda:sm_90 tf32 workspace=1048576");
  CudaTarget u = parse_cuda_target(s);
  EXPECT_EQ(u.arch, "sm_90");
  EXPECT_TRUE(u.tf32);
  EXPECT_EQ(u.workspace_cap, size_t{1} << 20);
  EXPECT_FALSE(parse_cuda_target("cuda:sm_90").tf32);
  EXPECT_THROW(parse_cuda_target("cuda:sm_90 bogus"), Error);
  EXPECT_FALSE(is_cuda_target("cpu"));
}

TEST(CudaBuild, CudaEnginesBuildWithoutAGpuAndActivationNeedsOne) {
  Model model = Model::load(std::string(KILN_SOURCE_DIR) + "/models/kiln_demo_cnn.onnx");
  BuildConfig cfg;
  cfg.target = Target::Cuda;
  cfg.enable_tf32 = false;
  cfg.profiles.push_back(Profile().add_input_shape("input", {1, 3, 64, 64}, {2, 3, 64, 64}, {4, 3, 64, 64}));
#if KILN_WITH_CUDA
  Engine e = build_engine(model, cfg);
  EXPECT_EQ(e.target().rfind("cuda:sm_", 0), 0u) << e.target();
  EXPECT_EQ(e.target().find("tf32"), std::string::npos);
  for (const auto& n : e.nodes()) EXPECT_FALSE(n.tactic.empty()) << n.name;
  // Save / load keeps the target and the tactics.
  Engine l = Engine::deserialize(e.serialize());
  EXPECT_EQ(l.target(), e.target());
  for (size_t i = 0; i < e.nodes().size(); ++i) EXPECT_EQ(l.nodes()[i].tactic, e.nodes()[i].tactic);
  cfg.enable_tf32 = true;
  EXPECT_NE(build_engine(model, cfg).target().find(" tf32"), std::string::npos);
  // The arena plan needs no GPU: liveness reuse makes it smaller than the sum, and it holds the max input.
  MemoryInfo mi = e.memory_info();
  EXPECT_GE(mi.planned_arena_bytes, size_t{4 * 3 * 64 * 64 * 4});
  EXPECT_LT(mi.planned_arena_bytes, mi.activation_bytes);
  if (cuda_device_count() == 0) {
    try {
      e.create_context();
      FAIL() << "activation without a GPU must fail";
    } catch (const Error& err) {
      EXPECT_EQ(err.code(), ErrorCode::Cuda) << err.what();
      EXPECT_NE(std::string(err.what()).find("cuda:0"), std::string::npos) << err.what();
    }
  }
#else
  try {
    build_engine(model, cfg);
    FAIL() << "a CPU-only build cannot build CUDA engines";
  } catch (const Error& err) {
    EXPECT_EQ(err.code(), ErrorCode::Unsupported);
  }
#endif
}

#if KILN_WITH_CUDA
TEST(CudaBuild, HostFallbackOnlyWhereNoCudaTacticSupportsTheNode) {
  Model model = Model::load(std::string(KILN_SOURCE_DIR) + "/models/kiln_demo_cnn.onnx");
  BuildConfig cfg;
  cfg.target = Target::Cuda;
  Engine e = build_engine(model, cfg);
  const ir::Graph& g = e.impl()->graph;
  for (const auto& n : g.nodes) {
    std::vector<ir::ValueType> in;
    for (const auto& i : n.inputs) {
      auto c = g.initializers.find(i);
      const ir::ValueType* t = g.type_of(i);
      in.push_back(c != g.initializers.end() ? ir::ValueType::of(c->second.dtype(), c->second.shape())
                                             : (t ? *t : ir::ValueType{}));
    }
    if (n.tactic == "host") {
      EXPECT_TRUE(runtime::cuda::cuda_tactics_for(n, in).empty()) << n.label() << " has a CUDA tactic";
    } else {
      EXPECT_NE(runtime::cuda::find_cuda_tactic(n, n.tactic), nullptr) << n.label() << ": " << n.tactic;
    }
  }
}

TEST(CudaPlan, ViewOpsShareTheirInputBufferAndExtendItsLifetime) {
  ir::register_all_ops();
  runtime::cuda::register_all_cuda_kernels();
  ir::Graph g;
  g.inputs = {"x"};
  g.types["x"] = ir::ValueType::of(DType::Float32, {4, 6});
  g.initializers["shape"] = Tensor::from_vector(DType::Int64, {3}, std::vector<int64_t>{4, 2, 3});
  g.nodes.push_back(mk("Relu", {"x"}, {"r"}));
  g.nodes.push_back(mk("Reshape", {"r", "shape"}, {"v"}));
  g.nodes.push_back(mk("Neg", {"x"}, {"n"}));  // alive while v is: must not take r's memory
  g.nodes.push_back(mk("Relu", {"v"}, {"w"}));
  g.nodes.push_back(mk("Reshape", {"n", "shape"}, {"n3"}));
  g.nodes.push_back(mk("Add", {"w", "n3"}, {"y"}, {}, 14));
  g.outputs = {"y"};
  GraphIndex idx(g);
  auto inst = runtime::cuda::build_instance(idx, {ir::ValueType::of(DType::Float32, {4, 6})}, {});
  EXPECT_EQ(inst->steps[1].kind, runtime::cuda::Step::Alias);
  EXPECT_EQ(inst->aliases, 2u);
  const auto r = static_cast<size_t>(idx.lookup("r")), v = static_cast<size_t>(idx.lookup("v"));
  EXPECT_EQ(inst->place[v], runtime::cuda::Place::Alias);
  EXPECT_EQ(inst->request[v], -1);
  // r is read (through v) by node 3: its buffer lives until then, so n and w cannot overlap it.
  const BufferRequest& rr = inst->requests[static_cast<size_t>(inst->request[r])];
  EXPECT_GE(rr.last, 4);
  EXPECT_TRUE(plan_is_valid(inst->requests, inst->plan));
  const auto n = static_cast<size_t>(idx.lookup("n"));
  const size_t ro = inst->plan.offsets[static_cast<size_t>(inst->request[r])];
  const size_t no = inst->plan.offsets[static_cast<size_t>(inst->request[n])];
  EXPECT_NE(ro, no);
}

TEST(CudaPlan, ShapeArithmeticFeedingOnlyAViewNeverReachesTheDevice) {
  runtime::cuda::register_all_cuda_kernels();
  ir::Graph g = cuda_test::shape_arith_graph();
  auto steps = [&](const ir::Graph& gr) {
    GraphIndex ix(gr);
    auto inst = runtime::cuda::build_instance(ix, {ir::ValueType::of(DType::Float32, {6, 4})}, {});
    std::vector<runtime::cuda::Step::Kind> k;
    for (const auto& s : inst->steps) k.push_back(s.kind);
    return k;
  };
  using K = runtime::cuda::Step::Kind;
  // "shape" is a graph output: the caller reads it, so it is written to the device once (Fill).
  EXPECT_EQ(steps(g), (std::vector<K>{K::Skip, K::Skip, K::Skip, K::Fill, K::Alias, K::Kernel}));
  // Read only by the Reshape (an alias here): nothing of the shape arithmetic runs on the device.
  g.outputs = {"y"};
  EXPECT_EQ(steps(g), (std::vector<K>{K::Skip, K::Skip, K::Skip, K::Skip, K::Alias, K::Kernel}));
}

TEST(CudaPlan, DynamicOutputTacticsGetTheirWorkspace) {
  // NonZero's tactic is dynamic_output and asks scratch for its per-block counts. With a static input it is a
  // planned kernel step whose workspace is in the arena; past a run-time shape (a dynamic step) the run-time choice
  // still asks its WorkspaceFn, although the output shape is unknown.
  ir::register_all_ops();
  runtime::cuda::register_all_cuda_kernels();
  using runtime::cuda::Step;
  ir::Graph g;
  g.inputs = {"x", "t"};
  g.types["x"] = ir::ValueType::of(DType::Float32, {6});
  g.types["t"] = ir::ValueType::of(DType::Int64, {2});
  g.nodes.push_back(mk("NonZero", {"x"}, {"nz"}));
  g.nodes.push_back(mk("Reshape", {"x", "t"}, {"r"}));  // shape from a device value: unknown at plan time
  g.nodes.push_back(mk("NonZero", {"r"}, {"nz2"}));
  g.outputs = {"nz", "nz2"};
  ir::infer_types(g);
  GraphIndex idx(g);
  auto inst = runtime::cuda::build_instance(
      idx, {ir::ValueType::of(DType::Float32, {6}), ir::ValueType::of(DType::Int64, {2})}, {});
  const Step& s0 = inst->steps[0];
  ASSERT_EQ(s0.kind, Step::Kernel);
  ASSERT_NE(s0.tactic, nullptr);
  EXPECT_EQ(s0.tactic->name, "cuda");
  EXPECT_FALSE(s0.presets_outputs);
  EXPECT_GT(s0.workspace_bytes, 0u);
  ASSERT_GE(s0.workspace, 0);
  EXPECT_EQ(inst->requests[static_cast<size_t>(s0.workspace)].bytes, s0.workspace_bytes);
  EXPECT_EQ(inst->place[static_cast<size_t>(idx.lookup("nz"))], runtime::cuda::Place::Dynamic);
  EXPECT_FALSE(inst->capturable);
  EXPECT_FALSE(inst->all_static);
  EXPECT_TRUE(plan_is_valid(inst->requests, inst->plan));
  EXPECT_EQ(inst->steps[1].kind, Step::Dynamic);
  EXPECT_EQ(inst->steps[2].kind, Step::Dynamic);
  // What run_dynamic_step decides for the second NonZero once r's shape is known: the same workspace.
  const ir::Node& nz2 = g.nodes[2];
  const std::vector<ir::ValueType> in{ir::ValueType::of(DType::Float32, {2, 3})};
  ir::InferContext ctx{nz2, {&in[0]}, {nullptr}};
  const std::vector<ir::ValueType> out = ir::OpRegistry::instance().find("", "NonZero", 17)->infer(ctx);
  ASSERT_FALSE(out[0].is_static());
  const runtime::cuda::StepChoice c = runtime::cuda::choose_step(nz2, in, out, 0);
  EXPECT_EQ(c.tactic, s0.tactic);
  EXPECT_FALSE(c.presets_outputs);
  EXPECT_EQ(c.workspace_bytes, s0.workspace_bytes);
  // Under a workspace cap below what it needs, a bare graph's node falls back to the host, which needs none.
  const runtime::cuda::StepChoice capped = runtime::cuda::choose_step(nz2, in, out, 16);
  EXPECT_TRUE(runtime::cuda::is_host_fallback(capped.tactic));
  EXPECT_EQ(capped.workspace_bytes, 0u);
  // A plan that names the tactic anyway gets an error naming the node, not a kernel run without scratch.
  ir::Node named = nz2;
  named.tactic = "cuda";
  try {
    runtime::cuda::choose_step(named, in, out, 16);
    FAIL() << "expected OutOfMemory";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::OutOfMemory) << e.what();
    EXPECT_NE(std::string(e.what()).find("NonZero_nz2"), std::string::npos) << e.what();
  }
  // A tactic that needs its output shapes is not asked for a workspace while they are unknown.
  const ir::Node& rs = g.nodes[1];
  const std::vector<ir::ValueType> rin{ir::ValueType::of(DType::Float32, {6}), ir::ValueType::of(DType::Int64, {2})};
  const runtime::cuda::StepChoice rc =
      runtime::cuda::choose_step(rs, rin, {ir::ValueType{DType::Float32, true, {Dim{-1, ""}, Dim{-1, ""}}}}, 0);
  EXPECT_FALSE(rc.presets_outputs);
  EXPECT_EQ(rc.workspace_bytes, 0u);
}

TEST(CudaBuild, WorkspaceSizeIsARealCapOnTacticChoice) {
  // A test-only op with two CUDA tactics: "big" asks 1 MiB of workspace, "small" none.
  ir::register_all_ops();
  runtime::cuda::register_all_cuda_kernels();
  static bool once = [] {
    ir::OpDef d;
    d.op_type = "WsProbe";
    d.domain = "kiln.cudatest";
    d.since = {1};
    d.infer = [](const ir::InferContext& c) { return std::vector<ir::ValueType>{*c.in[0]}; };
    d.reference = [](const ir::Node&, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
      out[0] = in[0]->clone();
    };
    ir::OpRegistry::instance().add(d);
    runtime::cuda::CudaTactic big{"big", nullptr, nullptr,
                                  [](const ir::Node&, const std::vector<ir::ValueType>&,
                                     const std::vector<ir::ValueType>&) { return size_t{1} << 20; }};
    runtime::cuda::CudaTactic small{"small", nullptr, nullptr, nullptr};
    runtime::cuda::register_cuda_tactic("kiln.cudatest", "WsProbe", big);
    runtime::cuda::register_cuda_tactic("kiln.cudatest", "WsProbe", small);
    return true;
  }();
  (void)once;
  ir::Graph g;
  g.inputs = {"x"};
  g.types["x"] = ir::ValueType{DType::Float32, true, {Dim{-1, "N"}, Dim{4, ""}}};
  g.nodes.push_back(mk("WsProbe", {"x"}, {"y"}, {}, 1));
  g.nodes.back().domain = "kiln.cudatest";
  g.outputs = {"y"};
  std::vector<std::map<std::string, Shape>> max{{{"x", {8, 4}}}};
  auto none = runtime::cuda::cuda_tactic_candidates(g, max, 0);
  EXPECT_EQ(none[0], (std::vector<std::string>{"big", "small", "host"}));
  auto capped = runtime::cuda::cuda_tactic_candidates(g, max, 4096);
  EXPECT_EQ(capped[0], (std::vector<std::string>{"small", "host"}));
}
#endif

TEST(CudaContext, CpuEnginesReportOutputShapesAndRefuseEnqueue) {
  ir::Graph g = cuda_test::shape_arith_graph();
  for (auto& n : g.nodes) n.tactic = "ref";
  Engine e = cuda_test::engine_of(g, "x", {1, 4}, {2, 4}, {8, 4}, "cpu");
  ExecutionContext ctx = e.create_context();
  auto shapes = ctx.output_shapes({{"x", {3, 4}}});
  EXPECT_EQ(shapes.at("y"), (Shape{3, 2, 2}));
  EXPECT_EQ(shapes.at("shape"), (Shape{3}));
  EXPECT_THROW(ctx.output_shapes({{"x", {9, 4}}}), Error);  // outside the profile
  DeviceTensorMap in, out;
  try {
    ctx.enqueue(in, out, nullptr);
    FAIL();
  } catch (const Error& err) {
    EXPECT_EQ(err.code(), ErrorCode::InvalidState);
  }
  EXPECT_EQ(ctx.stats().device, "cpu");
}

#if KILN_WITH_CUDA
// Every op kiln imports has a CUDA kernel (the host fallback is for dtypes a kernel does not take and for ops a
// future family adds before its kernel): a new op without one fails here, without a GPU.
TEST(CudaRegistry, EveryRegisteredOpHasACudaKernel) {
  ir::register_all_ops();
  cuda::register_all_cuda_kernels();
  std::string missing;
  size_t n = 0;
  for (const ir::OpDef* d : ir::OpRegistry::instance().all()) {
    if (d->domain == "kiln.testing") continue;  // the backend's fault-injection op (host fallback on CUDA)
    // kiln.FusedConv is made only by the CPU engines' fuse_conv_activation pass (FuseConvActivationBuild checks that
    // CUDA engines never hold it); CUDA engines fold conv epilogues into kiln.Conv instead.
    if (d->domain == "kiln" && d->op_type == "FusedConv") continue;
    ++n;
    if (cuda::cuda_tactics(d->domain, d->op_type).empty()) missing += " " + d->domain + ":" + d->op_type;
  }
  EXPECT_GT(n, 100u);
  EXPECT_TRUE(missing.empty()) << "ops without a CUDA kernel:" << missing;
}
#endif
