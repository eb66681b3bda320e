// The C API (include/kiln/c_api.h): the demo CNN built, run and saved through it matches the C++ API; every bad
// argument is a status code with a message naming the culprit; enqueue on device pointers (GPU only).
#include "kiln/c_api.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "kiln/kiln.h"
#include "util/half.h"
#if KILN_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace fs = std::filesystem;

namespace {

std::string demo_path() { return std::string(KILN_SOURCE_DIR) + "/models/kiln_demo_cnn.onnx"; }

std::string scratch(const std::string& name) {
  return (fs::temp_directory_path() / ("kiln_c_api_" + std::to_string(::getpid()) + "_" + name)).string();
}

std::string last_error() { return kiln_last_error(); }

// Fails the test with the message when `status` is not KILN_OK.
#define ASSERT_KILN_OK(call)                                                     \
  do {                                                                           \
    int st_ = (call);                                                            \
    ASSERT_EQ(st_, KILN_OK) << kiln_status_name(st_) << ": " << kiln_last_error(); \
  } while (0)

// Demo CNN profile: batch 1..4, opt 2.
kiln_build_config* demo_config(const char* target = "cpu", const char* precision = "fp32") {
  kiln_build_config* c = nullptr;
  EXPECT_EQ(kiln_build_config_create(&c), KILN_OK);
  EXPECT_EQ(kiln_build_config_set_target(c, target), KILN_OK) << last_error();
  EXPECT_EQ(kiln_build_config_set_precision(c, precision), KILN_OK) << last_error();
  int p = -1;
  EXPECT_EQ(kiln_build_config_add_profile(c, &p), KILN_OK);
  EXPECT_EQ(p, 0);
  const int64_t mn[4] = {1, 3, 64, 64}, opt[4] = {2, 3, 64, 64}, mx[4] = {4, 3, 64, 64};
  EXPECT_EQ(kiln_build_config_set_shape(c, p, "input", 4, mn, opt, mx), KILN_OK) << last_error();
  return c;
}

kiln_tensor tensor(const char* name, int dtype, std::vector<int64_t> shape, void* data, size_t capacity = 0) {
  kiln_tensor t{};
  t.name = name;
  t.dtype = dtype;
  t.rank = static_cast<int32_t>(shape.size());
  for (size_t i = 0; i < shape.size(); ++i) t.shape[i] = shape[i];
  t.data = data;
  t.capacity = capacity;
  return t;
}

std::vector<float> random_input(int64_t batch, unsigned seed) {
  std::vector<float> v(static_cast<size_t>(batch * 3 * 64 * 64));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (float& x : v) x = u(rng);
  return v;
}

struct Demo {
  kiln_engine* engine = nullptr;
  kiln_context* ctx = nullptr;
  ~Demo() {
    kiln_context_destroy(ctx);
    kiln_engine_destroy(engine);
  }
};

void build_demo(Demo& d) {
  kiln_build_config* c = demo_config();
  ASSERT_KILN_OK(kiln_engine_build(demo_path().c_str(), c, &d.engine));
  kiln_build_config_destroy(c);
  ASSERT_KILN_OK(kiln_context_create(d.engine, -1, 0, &d.ctx));
}

}  // namespace

TEST(CApi, DemoCnnMatchesTheCppApiAndSurvivesSaveLoad) {
  Demo d;
  build_demo(d);
  if (HasFatalFailure()) return;

  // Engine info.
  int n_in = 0, n_out = 0, n_prof = 0;
  ASSERT_KILN_OK(kiln_engine_num_inputs(d.engine, &n_in));
  ASSERT_KILN_OK(kiln_engine_num_outputs(d.engine, &n_out));
  ASSERT_KILN_OK(kiln_engine_num_profiles(d.engine, &n_prof));
  EXPECT_EQ(n_in, 1);
  EXPECT_EQ(n_out, 2);
  EXPECT_EQ(n_prof, 1);
  kiln_tensor_desc in{};
  ASSERT_KILN_OK(kiln_engine_input(d.engine, 0, &in));
  EXPECT_STREQ(in.name, "input");
  EXPECT_EQ(in.dtype, KILN_FLOAT32);
  ASSERT_EQ(in.rank, 4);
  EXPECT_EQ(std::vector<int64_t>(in.dims, in.dims + 4), (std::vector<int64_t>{-1, 3, 64, 64}));
  kiln_tensor_desc out0{}, out1{};
  ASSERT_KILN_OK(kiln_engine_output(d.engine, 0, &out0));
  ASSERT_KILN_OK(kiln_engine_output(d.engine, 1, &out1));
  EXPECT_STREQ(out0.name, "logits");
  EXPECT_STREQ(out1.name, "probs");
  EXPECT_EQ(std::vector<int64_t>(out0.dims, out0.dims + out0.rank), (std::vector<int64_t>{-1, 10}));
  const char* target = nullptr;
  const char* precision = nullptr;
  ASSERT_KILN_OK(kiln_engine_target(d.engine, &target));
  ASSERT_KILN_OK(kiln_engine_precision(d.engine, &precision));
  EXPECT_STREQ(target, "cpu");
  EXPECT_STREQ(precision, "fp32");
  kiln_build_stats bs{};
  ASSERT_KILN_OK(kiln_engine_build_stats(d.engine, &bs));
  EXPECT_GT(bs.build_seconds, 0.0);
  EXPECT_GT(bs.load_seconds, 0.0);
  EXPECT_GT(bs.nodes, 0u);
  // The timing fields of kiln::BuildStats (CPU tactics are timed at the default optimization level).
  EXPECT_GT(bs.tactics_timed, 0u);
  EXPECT_GE(bs.tactic_candidates_timed, 2 * bs.tactics_timed);
  EXPECT_GT(bs.total_seconds, 0.0);
  EXPECT_GT(bs.tactics_seconds, 0.0);
  EXPECT_GE(bs.passes_seconds, 0.0);
  EXPECT_GE(bs.profiles_seconds, 0.0);
  EXPECT_LE(bs.profiles_seconds + bs.passes_seconds + bs.tactics_seconds, bs.total_seconds + 1e-6);
  EXPECT_LE(bs.total_seconds, bs.build_seconds + 1e-6);
  EXPECT_EQ(bs.profiles, 1u);
  EXPECT_EQ(bs.per_profile_tactic_nodes, 0u);
  ASSERT_NE(bs.timing_cache, nullptr);
  EXPECT_STREQ(bs.timing_cache, "");  // no timing-cache file was given
  kiln_engine_memory mem{};
  ASSERT_KILN_OK(kiln_engine_memory_info(d.engine, &mem));
  EXPECT_GT(mem.weights_bytes, 0u);

  // Output shapes without running.
  kiln_tensor shp_in = tensor("input", KILN_FLOAT32, {3, 3, 64, 64}, nullptr);
  kiln_tensor shp_out = tensor("probs", -1, {}, nullptr);
  ASSERT_KILN_OK(kiln_context_output_shapes(d.ctx, &shp_in, 1, &shp_out, 1));
  EXPECT_EQ(shp_out.dtype, KILN_FLOAT32);
  ASSERT_EQ(shp_out.rank, 2);
  EXPECT_EQ(shp_out.shape[0], 3);
  EXPECT_EQ(shp_out.shape[1], 10);

  // Run on host buffers: caller-owned outputs and the context-owned copy agree.
  std::vector<float> x = random_input(3, 1);
  std::vector<float> logits(30, -1.f), probs(30, -1.f);
  kiln_tensor ti = tensor("input", KILN_FLOAT32, {3, 3, 64, 64}, x.data());
  kiln_tensor to[2] = {tensor("logits", KILN_FLOAT32, {}, logits.data(), logits.size() * 4),
                       tensor("probs", KILN_FLOAT32, {}, probs.data(), probs.size() * 4)};
  ASSERT_KILN_OK(kiln_context_run(d.ctx, &ti, 1, to, 2));
  EXPECT_EQ(to[0].rank, 2);
  EXPECT_EQ(to[0].shape[0], 3);
  EXPECT_EQ(to[0].shape[1], 10);
  kiln_tensor owned{};
  ASSERT_KILN_OK(kiln_context_output(d.ctx, "logits", &owned));
  ASSERT_EQ(owned.capacity, 30u * 4);
  EXPECT_EQ(std::memcmp(owned.data, logits.data(), 30 * 4), 0);
  int prof = -2;
  ASSERT_KILN_OK(kiln_context_last_profile(d.ctx, &prof));
  EXPECT_EQ(prof, 0);
  kiln_context_stats cs{};
  ASSERT_KILN_OK(kiln_context_get_stats(d.ctx, &cs));
  EXPECT_STREQ(cs.device, "cpu");

  // The C++ API on the same model and input agrees within the fp32 bound (its own build may time other tactics).
  kiln::BuildConfig cfg;
  cfg.enable_tf32 = false;
  cfg.profiles.push_back(kiln::Profile().add_input_shape("input", {1, 3, 64, 64}, {2, 3, 64, 64}, {4, 3, 64, 64}));
  kiln::Engine ref = kiln::build_engine(kiln::Model::load(demo_path()), cfg);
  kiln::ExecutionContext rctx = ref.create_context();
  kiln::TensorMap rin{{"input", kiln::Tensor::from_vector(kiln::DType::Float32, {3, 3, 64, 64}, x)}};
  kiln::TensorMap rout = rctx.run(rin);
  for (int k = 0; k < 2; ++k) {
    const std::vector<float>& got = k == 0 ? logits : probs;
    kiln::Tensor t = kiln::Tensor::from_vector(kiln::DType::Float32, {3, 10}, got);
    kiln::Comparison c = kiln::compare(t, rout.at(to[k].name), kiln::tolerance_for("fp32"));
    EXPECT_TRUE(c.passed) << to[k].name << ": " << c.reason;
  }

  // Save through the C API, load through C++ (and back through C): bit-identical outputs.
  const std::string plan = scratch("demo.kiln");
  ASSERT_KILN_OK(kiln_engine_save(d.engine, plan.c_str()));
  kiln::Engine loaded = kiln::Engine::load(plan);
  kiln::TensorMap lout = loaded.create_context().run(rin);
  EXPECT_EQ(std::memcmp(lout.at("logits").data(), logits.data(), 30 * 4), 0);
  kiln_engine* e2 = nullptr;
  ASSERT_KILN_OK(kiln_engine_load(plan.c_str(), &e2));
  kiln_build_stats bs2{};
  ASSERT_KILN_OK(kiln_engine_build_stats(e2, &bs2));
  EXPECT_EQ(bs2.nodes, 0u) << "a loaded engine has no build stats";
  EXPECT_EQ(bs2.tactic_candidates_timed, 0u);
  EXPECT_EQ(bs2.total_seconds, 0.0);
  ASSERT_NE(bs2.timing_cache, nullptr);
  EXPECT_STREQ(bs2.timing_cache, "");
  kiln_context* c2 = nullptr;
  ASSERT_KILN_OK(kiln_context_create(e2, -1, 0, &c2));
  kiln_engine_destroy(e2);  // the context keeps the engine alive
  std::vector<float> logits2(30);
  kiln_tensor to2 = tensor("logits", KILN_FLOAT32, {3, 10}, logits2.data());
  ASSERT_KILN_OK(kiln_context_run(c2, &ti, 1, &to2, 1));
  EXPECT_EQ(logits2, logits);
  kiln_context_destroy(c2);
  fs::remove(plan);
}

TEST(CApi, BadArgumentsAreStatusCodesNamingTheCulprit) {
  Demo d;
  build_demo(d);
  if (HasFatalFailure()) return;
  auto expect_err = [](int st, int code, const std::vector<std::string>& words) {
    EXPECT_EQ(st, code) << kiln_status_name(st) << ": " << kiln_last_error();
    const std::string m = kiln_last_error();
    for (const auto& w : words) EXPECT_NE(m.find(w), std::string::npos) << "'" << w << "' not in: " << m;
  };
  int n = 0;
  kiln_engine* e = nullptr;
  kiln_context* c = nullptr;
  // NULL handles and out-pointers.
  expect_err(kiln_engine_num_inputs(nullptr, &n), KILN_ERR_INVALID_ARGUMENT, {"kiln_engine_num_inputs", "engine"});
  expect_err(kiln_engine_num_inputs(d.engine, nullptr), KILN_ERR_INVALID_ARGUMENT, {"count"});
  expect_err(kiln_context_run(nullptr, nullptr, 0, nullptr, 0), KILN_ERR_INVALID_ARGUMENT, {"context"});
  expect_err(kiln_context_create(nullptr, -1, 0, &c), KILN_ERR_INVALID_ARGUMENT, {"engine"});
  expect_err(kiln_engine_build(nullptr, nullptr, &e), KILN_ERR_INVALID_ARGUMENT, {"onnx_path"});
  expect_err(kiln_engine_input(d.engine, 5, nullptr), KILN_ERR_INVALID_ARGUMENT, {"out"});
  kiln_tensor_desc desc{};
  expect_err(kiln_engine_input(d.engine, 5, &desc), KILN_ERR_INVALID_ARGUMENT, {"index 5"});
  kiln_engine_destroy(nullptr);
  kiln_context_destroy(nullptr);
  kiln_build_config_destroy(nullptr);

  // Files.
  expect_err(kiln_engine_build("/nonexistent/model.onnx", nullptr, &e), KILN_ERR_IO, {"/nonexistent/model.onnx"});
  EXPECT_EQ(e, nullptr);
  const std::string junk = scratch("junk.onnx");
  {
    FILE* f = std::fopen(junk.c_str(), "wb");
    std::fputs("this is not a protobuf", f);
    std::fclose(f);
  }
  expect_err(kiln_engine_build(junk.c_str(), nullptr, &e), KILN_ERR_INVALID_MODEL, {"junk.onnx"});
  int st = kiln_engine_load(junk.c_str(), &e);
  EXPECT_TRUE(st == KILN_ERR_PLAN_MISMATCH || st == KILN_ERR_INTEGRITY) << kiln_status_name(st);
  EXPECT_NE(last_error().find("junk.onnx"), std::string::npos) << last_error();
  fs::remove(junk);
  expect_err(kiln_engine_save(d.engine, "/nonexistent/dir/x.kiln"), KILN_ERR_IO, {"/nonexistent/dir"});

  // Configuration.
  kiln_build_config* cfg = nullptr;
  ASSERT_KILN_OK(kiln_build_config_create(&cfg));
  expect_err(kiln_build_config_set_target(cfg, "gpu"), KILN_ERR_INVALID_ARGUMENT, {"'gpu'"});
  expect_err(kiln_build_config_set_target(cfg, "cuda:x"), KILN_ERR_INVALID_ARGUMENT, {"'cuda:x'"});
  expect_err(kiln_build_config_set_precision(cfg, "int4"), KILN_ERR_INVALID_ARGUMENT, {"'int4'"});
  expect_err(kiln_build_config_set_optimization_level(cfg, 9), KILN_ERR_INVALID_ARGUMENT, {"9"});
  const int64_t mn[4] = {1, 3, 64, 64}, mx[4] = {4, 3, 64, 64};
  expect_err(kiln_build_config_set_shape(cfg, 0, "input", 4, mn, mn, mx), KILN_ERR_INVALID_ARGUMENT,
             {"'input'", "profile 0"});
  int p = -1;
  ASSERT_KILN_OK(kiln_build_config_add_profile(cfg, &p));
  expect_err(kiln_build_config_set_shape(cfg, p, "input", 4, mx, mn, mx), KILN_ERR_INVALID_ARGUMENT, {"input"});
  ASSERT_KILN_OK(kiln_build_config_set_shape(cfg, p, "no_such_input", 4, mn, mn, mx));
  expect_err(kiln_engine_build(demo_path().c_str(), cfg, &e), KILN_ERR_INVALID_ARGUMENT, {"no_such_input"});
  kiln_build_config_destroy(cfg);

  // Runs.
  std::vector<float> x = random_input(2, 2);
  std::vector<float> out(20);
  kiln_tensor ok = tensor("input", KILN_FLOAT32, {2, 3, 64, 64}, x.data());
  kiln_tensor bad = tensor("image", KILN_FLOAT32, {2, 3, 64, 64}, x.data());
  expect_err(kiln_context_run(d.ctx, &bad, 1, nullptr, 0), KILN_ERR_INVALID_ARGUMENT, {"'image'", "input"});
  bad = tensor("input", KILN_FLOAT16, {2, 3, 64, 64}, x.data());
  expect_err(kiln_context_run(d.ctx, &bad, 1, nullptr, 0), KILN_ERR_INVALID_ARGUMENT, {"'input'", "float16"});
  bad = tensor("input", 42, {2, 3, 64, 64}, x.data());
  expect_err(kiln_context_run(d.ctx, &bad, 1, nullptr, 0), KILN_ERR_INVALID_ARGUMENT, {"'input'", "dtype 42"});
  bad = tensor("input", KILN_FLOAT32, {2, 3, 64}, x.data());
  expect_err(kiln_context_run(d.ctx, &bad, 1, nullptr, 0), KILN_ERR_INVALID_ARGUMENT, {"'input'", "rank 3"});
  bad = ok;
  bad.rank = 9;
  expect_err(kiln_context_run(d.ctx, &bad, 1, nullptr, 0), KILN_ERR_INVALID_ARGUMENT, {"'input'", "rank 9"});
  bad = ok;
  bad.shape[1] = -3;
  expect_err(kiln_context_run(d.ctx, &bad, 1, nullptr, 0), KILN_ERR_INVALID_ARGUMENT, {"'input'", "-3"});
  bad = ok;
  bad.name = nullptr;
  expect_err(kiln_context_run(d.ctx, &bad, 1, nullptr, 0), KILN_ERR_INVALID_ARGUMENT, {"inputs[0]", "NULL"});
  bad = ok;
  bad.data = nullptr;
  expect_err(kiln_context_run(d.ctx, &bad, 1, nullptr, 0), KILN_ERR_INVALID_ARGUMENT, {"'input'", "NULL"});
  bad = ok;
  bad.capacity = 100;
  expect_err(kiln_context_run(d.ctx, &bad, 1, nullptr, 0), KILN_ERR_INVALID_ARGUMENT,
             {"'input'", "98304 bytes", "holds 100 bytes"});
  bad = ok;
  bad.shape[0] = int64_t{1} << 40;
  expect_err(kiln_context_run(d.ctx, &bad, 1, nullptr, 0), KILN_ERR_INVALID_ARGUMENT, {"'input'", "too large"});
  kiln_tensor two[2] = {ok, ok};
  expect_err(kiln_context_run(d.ctx, two, 2, nullptr, 0), KILN_ERR_INVALID_ARGUMENT, {"'input'", "twice"});
  expect_err(kiln_context_run(d.ctx, nullptr, 1, nullptr, 0), KILN_ERR_INVALID_ARGUMENT, {"inputs"});
  std::vector<float> big = random_input(8, 3);
  bad = tensor("input", KILN_FLOAT32, {8, 3, 64, 64}, big.data());
  expect_err(kiln_context_run(d.ctx, &bad, 1, nullptr, 0), KILN_ERR_SHAPE_OUT_OF_PROFILE, {"'input'", "[8,3,64,64]"});
  kiln_tensor o = tensor("scores", KILN_FLOAT32, {2, 10}, out.data());
  expect_err(kiln_context_run(d.ctx, &ok, 1, &o, 1), KILN_ERR_INVALID_ARGUMENT, {"'scores'", "logits"});
  o = tensor("logits", KILN_FLOAT32, {}, out.data(), 12);
  expect_err(kiln_context_run(d.ctx, &ok, 1, &o, 1), KILN_ERR_INVALID_ARGUMENT, {"'logits'", "80 bytes", "12 bytes"});
  kiln_tensor got{};
  expect_err(kiln_context_output(d.ctx, "nope", &got), KILN_ERR_INVALID_ARGUMENT, {"'nope'"});
  // A CPU engine cannot enqueue.
  o = tensor("logits", KILN_FLOAT32, {2, 10}, out.data());
  expect_err(kiln_context_enqueue(d.ctx, &ok, 1, &o, 1, nullptr), KILN_ERR_INVALID_STATE, {"enqueue", "cpu"});
  // Still usable after all that.
  ASSERT_KILN_OK(kiln_context_run(d.ctx, &ok, 1, &o, 1));
  EXPECT_EQ(o.shape[0], 2);

  // The message is per thread: another thread's failure does not replace this one's.
  expect_err(kiln_engine_num_inputs(nullptr, &n), KILN_ERR_INVALID_ARGUMENT, {"kiln_engine_num_inputs"});
  std::thread t([] {
    EXPECT_STREQ(kiln_last_error(), "");
    int k = 0;
    EXPECT_EQ(kiln_engine_num_outputs(nullptr, &k), KILN_ERR_INVALID_ARGUMENT);
  });
  t.join();
  EXPECT_NE(last_error().find("kiln_engine_num_inputs"), std::string::npos) << last_error();

  EXPECT_STREQ(kiln_status_name(KILN_ERR_SHAPE_OUT_OF_PROFILE), "ShapeOutOfProfile");
  EXPECT_STREQ(kiln_status_name(KILN_OK), "OK");
  EXPECT_STREQ(kiln_status_name(77), "Unknown");
  EXPECT_EQ(kiln_status_name(KILN_ERR_OUT_OF_MEMORY), std::string("OutOfMemory"));
  EXPECT_EQ(kiln_dtype_size(KILN_FLOAT16), 2u);
  EXPECT_EQ(kiln_dtype_size(99), 0u);
  EXPECT_STREQ(kiln_dtype_name(KILN_BFLOAT16), "bfloat16");
  EXPECT_STREQ(kiln_version(), kiln::version());
}

#if KILN_WITH_CUDA
TEST(CApi, CudaEngineEnqueuesOnCallerPointersAndStream) {
  // The build needs no GPU; activation does.
  kiln_build_config* c = demo_config("cuda", "fp16");
  ASSERT_KILN_OK(kiln_build_config_set_keep_io_types(c, 0));
  kiln_engine* e = nullptr;
  ASSERT_KILN_OK(kiln_engine_build(demo_path().c_str(), c, &e));
  kiln_build_config_destroy(c);
  kiln_tensor_desc in{};
  ASSERT_KILN_OK(kiln_engine_input(e, 0, &in));
  EXPECT_EQ(in.dtype, KILN_FLOAT16) << "keep_io_types 0: the inputs take the low type";
  kiln_context* ctx = nullptr;
  if (kiln::cuda_device_count() == 0) {
    EXPECT_EQ(kiln_context_create(e, -1, 1, &ctx), KILN_ERR_CUDA);
    EXPECT_NE(last_error().find("no CUDA device"), std::string::npos) << last_error();
    kiln_engine_destroy(e);
    GTEST_SKIP() << "no CUDA device";
  }
  ASSERT_KILN_OK(kiln_context_create(e, -1, 1, &ctx));
  const int64_t b = 3;
  std::vector<float> xf = random_input(b, 4);
  kiln::Tensor x32 = kiln::Tensor::from_vector(kiln::DType::Float32, {b, 3, 64, 64}, xf);
  std::vector<uint16_t> xh(xf.size());
  for (size_t i = 0; i < xf.size(); ++i) xh[i] = kiln::util::float_to_half(xf[i]);
  kiln_tensor hin = tensor("input", KILN_FLOAT16, {b, 3, 64, 64}, xh.data());
  ASSERT_KILN_OK(kiln_context_run(ctx, &hin, 1, nullptr, 0));
  kiln_tensor href{};
  ASSERT_KILN_OK(kiln_context_output(ctx, "probs", &href));
  std::vector<uint16_t> expected(static_cast<uint16_t*>(href.data), static_cast<uint16_t*>(href.data) + b * 10);

  void *dx = nullptr, *dl = nullptr, *dp = nullptr;
  ASSERT_EQ(cudaMalloc(&dx, xh.size() * 2), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&dl, 4 * 10 * 2), cudaSuccess);  // room for batch 4
  ASSERT_EQ(cudaMalloc(&dp, 4 * 10 * 2), cudaSuccess);
  cudaStream_t s = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
  ASSERT_EQ(cudaMemcpyAsync(dx, xh.data(), xh.size() * 2, cudaMemcpyHostToDevice, s), cudaSuccess);
  std::vector<uint16_t> got(b * 10);
  for (int it = 0; it < 4; ++it) {
    // Poison the outputs: every enqueue (the warm-up run, the capture, the replays) must write them again.
    ASSERT_EQ(cudaMemsetAsync(dl, 0xff, 80, s), cudaSuccess);
    ASSERT_EQ(cudaMemsetAsync(dp, 0xff, 80, s), cudaSuccess);
    kiln_tensor din = tensor("input", KILN_FLOAT16, {b, 3, 64, 64}, dx);
    kiln_tensor dout[2] = {tensor("logits", KILN_FLOAT16, {}, dl, 80), tensor("probs", KILN_FLOAT16, {}, dp, 80)};
    ASSERT_KILN_OK(kiln_context_enqueue(ctx, &din, 1, dout, 2, s));
    ASSERT_EQ(dout[1].rank, 2);
    EXPECT_EQ(dout[1].shape[0], b);
    EXPECT_EQ(dout[1].shape[1], 10);
    EXPECT_EQ(dout[1].dtype, KILN_FLOAT16);
  }
  // The last enqueue's outputs are the ones read (no memset after it).
  ASSERT_EQ(cudaMemcpyAsync(got.data(), dp, got.size() * 2, cudaMemcpyDeviceToHost, s), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
  kiln::Comparison cmp = kiln::compare(kiln::Tensor::from_vector(kiln::DType::Float16, {b, 10}, got),
                                       kiln::Tensor::from_vector(kiln::DType::Float16, {b, 10}, expected),
                                       kiln::tolerance_for("fp16"));
  EXPECT_TRUE(cmp.passed) << cmp.reason;
  kiln_context_stats st{};
  ASSERT_KILN_OK(kiln_context_get_stats(ctx, &st));
  EXPECT_STREQ(st.device, "cuda:0");
  EXPECT_GE(st.cuda_graph_captures, 1u);
  EXPECT_GE(st.cuda_graph_replays, 2u);
  EXPECT_EQ(st.cuda_graph_fallbacks, 0u);
  EXPECT_GT(st.weight_bytes, 0u);
  EXPECT_GT(st.arena_bytes, 0u);
  // Missing output and too-small output are errors.
  kiln_tensor din = tensor("input", KILN_FLOAT16, {b, 3, 64, 64}, dx);
  kiln_tensor one = tensor("logits", KILN_FLOAT16, {}, dl, 80);
  EXPECT_EQ(kiln_context_enqueue(ctx, &din, 1, &one, 1, s), KILN_ERR_INVALID_ARGUMENT);
  EXPECT_NE(last_error().find("'probs'"), std::string::npos) << last_error();
  kiln_tensor small[2] = {tensor("logits", KILN_FLOAT16, {}, dl, 8), tensor("probs", KILN_FLOAT16, {}, dp, 80)};
  EXPECT_NE(kiln_context_enqueue(ctx, &din, 1, small, 2, s), KILN_OK);
  EXPECT_NE(last_error().find("logits"), std::string::npos) << last_error();
  cudaStreamSynchronize(s);
  cudaStreamDestroy(s);
  cudaFree(dx);
  cudaFree(dl);
  cudaFree(dp);
  kiln_context_destroy(ctx);
  kiln_engine_destroy(e);
}
#endif
