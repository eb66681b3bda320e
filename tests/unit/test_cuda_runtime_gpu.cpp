// CUDA runtime on a GPU: engines and bare graphs against the CPU reference, memory (zero allocations during
// inference, shared weights, out of memory), enqueue on caller buffers and streams, CUDA graphs, data-dependent
// shapes (NonZero, If, shape values on the device). Every test skips where no CUDA device exists.
#include <gtest/gtest.h>

#include "kiln/device.h"
#include "kiln/kiln.h"

#if KILN_WITH_CUDA
#include <cuda_runtime_api.h>

#include <filesystem>

#include "cuda_test_util.h"
#include "ir/subgraph.h"
#include "runtime/cpu/cpu_executor.h"
#include "runtime/cuda/executor.h"

using namespace kiln;
using kiln::cuda_test::mk;

namespace {

#define KILN_REQUIRE_GPU() \
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device"

const std::string kE2E = std::string(KILN_TEST_MODELS) + "/e2e";

Tensor rand_f32(Shape s, uint32_t seed) {
  std::vector<float> v(static_cast<size_t>(shape_numel(s)));
  uint32_t x = seed * 2654435761u + 12345u;
  for (auto& e : v) {
    x = x * 1664525u + 1013904223u;
    e = static_cast<float>((x >> 8) & 0xffff) / 32768.0f - 1.0f;
  }
  return Tensor::from_vector(DType::Float32, s, v);
}

void expect_close(const TensorMap& got, const TensorMap& want, const std::string& precision, const std::string& what) {
  for (const auto& [name, w] : want) {
    ASSERT_TRUE(got.count(name)) << what << ": missing output " << name;
    const Tensor& g = got.at(name);
    ASSERT_EQ(g.shape(), w.shape()) << what << " " << name;
    ASSERT_EQ(g.dtype(), w.dtype()) << what << " " << name;
    Comparison c = compare(g, w, tolerance_for(precision));
    EXPECT_TRUE(c.passed) << what << " output " << name << ": " << c.reason << " (max abs " << c.max_abs << ")";
  }
}

Engine build(const std::string& model, Target target, Profile p, bool tf32 = false) {
  BuildConfig cfg;
  cfg.target = target;
  cfg.enable_tf32 = tf32;
  cfg.profiles.push_back(std::move(p));
  return build_engine(Model::load(model), cfg);
}

Profile batch(const std::string& name, Shape rest, int64_t mn, int64_t opt, int64_t mx) {
  Shape a{mn}, b{opt}, c{mx};
  for (int64_t d : rest) a.push_back(d), b.push_back(d), c.push_back(d);
  return Profile().add_input_shape(name, a, b, c);
}

const std::string kDemo = std::string(KILN_SOURCE_DIR) + "/models/kiln_demo_cnn.onnx";

}  // namespace

TEST(CudaRuntime, DemoModelMatchesTheCpuEngine) {
  KILN_REQUIRE_GPU();
  Profile p = batch("input", {3, 64, 64}, 1, 2, 4);
  Engine cpu = build(kDemo, Target::Cpu, p);
  for (bool tf32 : {false, true}) {
    Engine gpu = build(kDemo, Target::Cuda, p, tf32);
    ExecutionContext cc = cpu.create_context(), gc = gpu.create_context();
    for (int64_t b : {1, 3, 4}) {
      TensorMap in{{"input", rand_f32({b, 3, 64, 64}, static_cast<uint32_t>(b))}};
      expect_close(gc.run(in), cc.run(in), tf32 ? "tf32" : "fp32", "demo batch " + std::to_string(b));
    }
    ContextStats s = gc.stats();
    EXPECT_EQ(s.device, "cuda:0");
    EXPECT_GT(s.planned_arena_bytes, 0u);
    EXPECT_LE(s.planned_arena_bytes, s.activation_bytes);  // liveness reuse never needs more than the sum
    EXPECT_GE(s.arena_bytes, s.planned_arena_bytes);
    EXPECT_GT(s.weight_bytes, 0u);
    EXPECT_EQ(s.arena_growths, 0u);
  }
}

TEST(CudaRuntime, E2EModelsMatchTheCpuEngine) {
  KILN_REQUIRE_GPU();
  struct Case {
    const char* dir;
    const char* input;
    Shape rest;
  };
  for (const Case& c : {Case{"resnet", "input", {3, 32, 32}}, Case{"bn", "x", {3, 8, 8}}}) {
    const std::string m = kE2E + "/" + c.dir + "/model.onnx";
    Profile p = batch(c.input, c.rest, 1, 2, 4);
    ExecutionContext cc = build(m, Target::Cpu, p).create_context();
    ExecutionContext gc = build(m, Target::Cuda, p).create_context();
    Shape s{2};
    s.insert(s.end(), c.rest.begin(), c.rest.end());
    TensorMap in{{c.input, rand_f32(s, 3)}};
    expect_close(gc.run(in), cc.run(in), "fp32", c.dir);
  }
}

TEST(CudaRuntime, InputDefaultsAreUsedOrOverridden) {
  KILN_REQUIRE_GPU();
  const std::string m = kE2E + "/defaults/model.onnx";
  Profile p = batch("x", {4}, 1, 3, 8);
  ExecutionContext cc = build(m, Target::Cpu, p).create_context();
  ExecutionContext gc = build(m, Target::Cuda, p).create_context();
  Tensor x = rand_f32({3, 4}, 11);
  expect_close(gc.run({{"x", x}}), cc.run({{"x", x}}), "fp32", "defaults");
  TensorMap over{{"x", x}, {"w", rand_f32({1, 4}, 12)}};
  expect_close(gc.run(over), cc.run(over), "fp32", "override");
  // enqueue: the omitted inputs come from the engine's device copy of their defaults.
  void *dx = nullptr, *dy = nullptr;
  ASSERT_EQ(cudaMalloc(&dx, x.nbytes()), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&dy, x.nbytes()), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(dx, x.data(), x.nbytes(), cudaMemcpyHostToDevice), cudaSuccess);
  DeviceTensorMap in{{"x", {DType::Float32, {3, 4}, dx}}}, out{{"y", {DType::Float32, {3, 4}, dy}}};
  gc.enqueue(in, out, nullptr);
  Tensor y(DType::Float32, {3, 4});
  ASSERT_EQ(cudaMemcpy(y.mutable_data(), dy, y.nbytes(), cudaMemcpyDeviceToHost), cudaSuccess);
  expect_close({{"y", y}}, cc.run({{"x", x}}), "fp32", "enqueue with defaults");
  cudaFree(dx), cudaFree(dy);
}

TEST(CudaRuntime, NoDeviceAllocationDuringInferenceAndWeightsAreShared) {
  KILN_REQUIRE_GPU();
  Engine gpu = build(kDemo, Target::Cuda, batch("input", {3, 64, 64}, 1, 2, 4));
  const uint64_t a0 = cuda_allocation_count();
  ExecutionContext c1 = gpu.create_context();
  const uint64_t a1 = cuda_allocation_count();
  EXPECT_GE(a1 - a0, 2u);  // weights + arena
  ExecutionContext c2 = gpu.create_context();
  const uint64_t a2 = cuda_allocation_count();
  EXPECT_EQ(a2 - a1, 1u) << "a second context allocates only its arena (the weights are the engine's)";
  EXPECT_EQ(c1.stats().weight_bytes, c2.stats().weight_bytes);
  for (int64_t b : {1, 4, 2, 3, 1})
    for (ExecutionContext* c : {&c1, &c2}) c->run({{"input", rand_f32({b, 3, 64, 64}, 9)}});
  EXPECT_EQ(cuda_allocation_count(), a2) << "inference after activation allocated device memory";
}

TEST(CudaRuntime, EnqueueOnCallerBuffersAndStream) {
  KILN_REQUIRE_GPU();
  Engine gpu = build(kDemo, Target::Cuda, batch("input", {3, 64, 64}, 1, 2, 4));
  ExecutionContext ctx = gpu.create_context();
  Tensor x = rand_f32({2, 3, 64, 64}, 5);
  TensorMap want = ctx.run({{"input", x}});
  auto shapes = ctx.output_shapes({{"input", x.shape()}});
  ASSERT_EQ(shapes.at("logits"), want.at("logits").shape());
  cudaStream_t stream;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  void *din = nullptr, *dl = nullptr, *dp = nullptr;
  ASSERT_EQ(cudaMalloc(&din, x.nbytes()), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&dl, want.at("logits").nbytes()), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&dp, want.at("probs").nbytes()), cudaSuccess);
  // The input arrives on the caller's stream after a delay-free async copy: enqueue must wait for it.
  ASSERT_EQ(cudaMemcpyAsync(din, x.data(), x.nbytes(), cudaMemcpyHostToDevice, stream), cudaSuccess);
  DeviceTensorMap in{{"input", {DType::Float32, x.shape(), din}}};
  DeviceTensorMap out{{"logits", {DType::Float32, shapes.at("logits"), dl}},
                      {"probs", {DType::Float32, shapes.at("probs"), dp}}};
  const uint64_t allocs = cuda_allocation_count();
  ctx.enqueue(in, out, stream);
  TensorMap got{{"logits", Tensor(DType::Float32, out.at("logits").shape)},
                {"probs", Tensor(DType::Float32, out.at("probs").shape)}};
  for (auto& [name, t] : got)
    ASSERT_EQ(cudaMemcpyAsync(t.mutable_data(), out.at(name).data, t.nbytes(), cudaMemcpyDeviceToHost, stream),
              cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  EXPECT_EQ(cuda_allocation_count(), allocs);
  expect_close(got, want, "fp32", "enqueue vs run");
  // Too small an output buffer is an error naming the output.
  DeviceTensorMap small{{"logits", {DType::Float32, {1}, dl}}, {"probs", {DType::Float32, shapes.at("probs"), dp}}};
  try {
    ctx.enqueue(in, small, stream);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("logits"), std::string::npos) << e.what();
  }
  cudaStreamSynchronize(stream);
  cudaFree(din), cudaFree(dl), cudaFree(dp);
  cudaStreamDestroy(stream);
}

TEST(CudaRuntime, OutOfMemoryNamesTheBytes) {
  KILN_REQUIRE_GPU();
  // A profile whose max batch needs terabytes of activations.
  Engine gpu = build(kDemo, Target::Cuda, batch("input", {3, 64, 64}, 1, 1, int64_t{1} << 22));
  try {
    gpu.create_context();
    FAIL() << "expected OutOfMemory";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::OutOfMemory) << e.what();
    EXPECT_NE(std::string(e.what()).find("bytes"), std::string::npos) << e.what();
  }
  // The device is still usable afterwards.
  ExecutionContext ok = build(kDemo, Target::Cuda, batch("input", {3, 64, 64}, 1, 1, 2)).create_context();
  EXPECT_EQ(ok.run({{"input", rand_f32({1, 3, 64, 64}, 1)}}).count("probs"), 1u);
}

TEST(CudaRuntime, MissingDeviceIsATypedErrorNamingIt) {
  KILN_REQUIRE_GPU();
  Engine gpu = build(kDemo, Target::Cuda, batch("input", {3, 64, 64}, 1, 1, 2));
  ContextOptions o;
  o.device = 99;
  try {
    gpu.create_context(o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::InvalidArgument);
    EXPECT_NE(std::string(e.what()).find("cuda:99"), std::string::npos) << e.what();
  }
}

TEST(CudaRuntime, CudaGraphsCaptureReplayAndKeepOneGraphPerShape) {
  KILN_REQUIRE_GPU();
  // y = Flatten(Relu(x) * 3 + x): elementwise and a view, so every node has a capturable CUDA kernel.
  ir::register_all_ops();
  ir::Graph g;
  g.inputs = {"x"};
  g.types["x"] = ir::ValueType{DType::Float32, true, {Dim{-1, "N"}, Dim{256, ""}}};
  g.initializers["k"] = Tensor::from_vector(DType::Float32, {}, std::vector<float>{3.f});
  g.nodes.push_back(mk("Relu", {"x"}, {"r"}));
  g.nodes.push_back(mk("Mul", {"r", "k"}, {"m"}));
  g.nodes.push_back(mk("Add", {"m", "x"}, {"s"}));
  g.nodes.push_back(mk("Flatten", {"s"}, {"y"}));  // the output is a view of s (no kernel, also on replay)
  g.outputs = {"y"};
  ir::infer_types(g);
  Engine e = cuda_test::engine_of(g, "x", {1, 256}, {4, 256}, {16, 256});
  ContextOptions o;
  o.use_cuda_graphs = true;
  ExecutionContext ctx = e.create_context(o);
  auto ref = [&](const Tensor& x) { return runtime::cpu::run_graph_reference(g, {{"x", x}}); };
  Tensor a1 = rand_f32({4, 256}, 1), a2 = rand_f32({4, 256}, 2), b = rand_f32({8, 256}, 3);
  expect_close(ctx.run({{"x", a1}}), ref(a1), "fp32", "capture");
  EXPECT_EQ(ctx.stats().cuda_graph_captures, 1u);
  expect_close(ctx.run({{"x", a2}}), ref(a2), "fp32", "replay with new values");
  EXPECT_EQ(ctx.stats().cuda_graph_replays, 1u);
  expect_close(ctx.run({{"x", b}}), ref(b), "fp32", "new shape");
  EXPECT_EQ(ctx.stats().cuda_graph_captures, 2u);
  const uint64_t allocs = cuda_allocation_count();
  expect_close(ctx.run({{"x", a1}}), ref(a1), "fp32", "first shape again");
  ContextStats s = ctx.stats();
  EXPECT_EQ(s.cuda_graph_captures, 2u) << "no new capture on return to a known shape";
  EXPECT_EQ(s.cuda_graph_replays, 2u);
  EXPECT_EQ(s.cuda_graph_fallbacks, 0u);
  EXPECT_EQ(cuda_allocation_count(), allocs);
  // enqueue replays too, with the caller's pointers copied in and out of the graph's buffers.
  void *dx = nullptr, *dy = nullptr;
  ASSERT_EQ(cudaMalloc(&dx, a2.nbytes()), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&dy, a2.nbytes()), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(dx, a2.data(), a2.nbytes(), cudaMemcpyHostToDevice), cudaSuccess);
  DeviceTensorMap in{{"x", {DType::Float32, {4, 256}, dx}}}, out{{"y", {DType::Float32, {4, 256}, dy}}};
  ctx.enqueue(in, out, nullptr);
  Tensor y(DType::Float32, {4, 256});
  ASSERT_EQ(cudaMemcpy(y.mutable_data(), dy, y.nbytes(), cudaMemcpyDeviceToHost), cudaSuccess);
  expect_close({{"y", y}}, ref(a2), "fp32", "enqueue replay");
  EXPECT_EQ(ctx.stats().cuda_graph_replays, 3u);
  cudaFree(dx), cudaFree(dy);
}

TEST(CudaRuntime, HostKnownShapeArithmeticRunsOnTheHost) {
  KILN_REQUIRE_GPU();
  ir::Graph g = cuda_test::shape_arith_graph();
  for (int64_t n : {2, 5}) {
    Tensor x = rand_f32({n, 4}, static_cast<uint32_t>(n));
    expect_close(runtime::cuda::run_graph_cuda(g, {{"x", x}}), runtime::cpu::run_graph_reference(g, {{"x", x}}),
                 "fp32", "shape arithmetic n=" + std::to_string(n));
  }
}

TEST(CudaRuntime, NonZeroAndShapesFromDeviceValues) {
  KILN_REQUIRE_GPU();
  ir::register_all_ops();
  // nz = NonZero(x); c = Shape(nz)[1] (data-dependent); r = Reshape(Relu(v), t) with t an int64 *input*
  // (its values decide r's shape: copied to the host at run time); y = Range(0, c, 1) as float via Cast.
  ir::Graph g;
  g.inputs = {"x", "v", "t"};
  g.types["x"] = ir::ValueType::of(DType::Float32, {6});
  g.types["v"] = ir::ValueType::of(DType::Float32, {2, 6});
  g.types["t"] = ir::ValueType::of(DType::Int64, {2});
  g.initializers["one"] = Tensor::from_vector(DType::Int64, {1}, std::vector<int64_t>{1});
  g.initializers["zero"] = Tensor::from_vector(DType::Int64, {}, std::vector<int64_t>{0});
  g.initializers["step"] = Tensor::from_vector(DType::Int64, {}, std::vector<int64_t>{1});
  g.nodes.push_back(mk("NonZero", {"x"}, {"nz"}));
  g.nodes.push_back(mk("Shape", {"nz"}, {"s"}));
  g.nodes.push_back(mk("Gather", {"s", "step"}, {"c"}, {{"axis", int64_t(0)}}));
  g.nodes.push_back(mk("Range", {"zero", "c", "step"}, {"rg"}));
  g.nodes.push_back(mk("Relu", {"v"}, {"rv"}));
  g.nodes.push_back(mk("Reshape", {"rv", "t"}, {"r"}));
  g.outputs = {"nz", "rg", "r"};
  ir::infer_types(g);
  for (int k = 0; k < 2; ++k) {
    Tensor x = Tensor::from_vector(DType::Float32, {6}, k ? std::vector<float>{1, 0, 2, 0, 0, 3}
                                                          : std::vector<float>{0, 0, 5, 0, 0, 0});
    Tensor t = Tensor::from_vector(DType::Int64, {2}, k ? std::vector<int64_t>{3, 4} : std::vector<int64_t>{12, 1});
    TensorMap in{{"x", x}, {"v", rand_f32({2, 6}, 4)}, {"t", t}};
    TensorMap want = runtime::cpu::run_graph_reference(g, in);
    TensorMap got = runtime::cuda::run_graph_cuda(g, in);
    for (const auto& [name, w] : want) EXPECT_TRUE(got.at(name).bit_equal(w)) << name << " case " << k;
  }
}

TEST(CudaRuntime, IfRunsTheChosenBranch) {
  KILN_REQUIRE_GPU();
  ir::register_all_ops();
  auto branch = [](const std::string& name, std::vector<ir::Node> nodes, std::string out) {
    auto b = std::make_shared<ir::Graph>();
    b->name = name;
    b->nodes = std::move(nodes);
    b->outputs = {std::move(out)};
    return b;
  };
  ir::Graph g;
  g.inputs = {"c", "x"};
  g.types["c"] = ir::ValueType::of(DType::Bool, {});
  g.types["x"] = ir::ValueType::of(DType::Float32, {2, 3});
  g.nodes.push_back(mk("Relu", {"x"}, {"a"}));
  ir::Node iff = mk("If", {"c", "a", "x"}, {"y"});
  iff.attrs["then_branch"] = branch("then", {mk("Add", {"a", "x"}, {"t"})}, "t");
  iff.attrs["else_branch"] = branch("else", {mk("Neg", {"x"}, {"e"})}, "e");
  iff.attrs[ir::kNumFormalInputs] = int64_t(1);
  iff.attrs[ir::kCapturedNames] = std::vector<std::string>{"a", "x"};
  g.nodes.push_back(iff);
  g.nodes.push_back(mk("Mul", {"y", "x"}, {"z"}));
  g.outputs = {"z"};
  ir::infer_types(g);
  for (uint8_t c : {uint8_t{1}, uint8_t{0}}) {
    TensorMap in{{"c", Tensor::from_vector(DType::Bool, {}, std::vector<uint8_t>{c})}, {"x", rand_f32({2, 3}, 8)}};
    expect_close(runtime::cuda::run_graph_cuda(g, in), runtime::cpu::run_graph_reference(g, in), "fp32",
                 c ? "then" : "else");
  }
}

#endif  // KILN_WITH_CUDA
