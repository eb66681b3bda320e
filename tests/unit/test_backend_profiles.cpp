// GraphSpec from a model and samples, get_profiles in every mode (Single, SamplesUsed, a user list, declared dimension
// ranges) with AITune's precedence and errors, profiles.json, and first-match selection at run time.
#include <gtest/gtest.h>

#include "backend_test_util.h"

using namespace kiln;
using backend_test::expect_error;
using backend_test::mlp_sample;
using backend_test::rand_f32;

namespace backend_profiles_test {
Sample two_in(int64_t batch, int64_t seq, uint64_t seed) {
  return {{"tokens", rand_f32({batch, seq}, seed)}, {"mask", rand_f32({batch, seq}, seed + 100)}};
}
std::string what_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}
}  // namespace backend_profiles_test
using namespace backend_profiles_test;

TEST(BackendProfiles, GraphSpecFromModelAndSamples) {
  Model model = Model::load(backend_test::model_path("mlp.onnx"));
  GraphSpec spec = GraphSpec::from_model(model, {mlp_sample(1, 1), mlp_sample(4, 2), mlp_sample(2, 3)});
  ASSERT_EQ(spec.inputs.size(), 1u);
  const TensorSpec& x = spec.inputs[0];
  EXPECT_EQ(x.name, "x");
  EXPECT_EQ(x.dtype, DType::Float32);
  EXPECT_EQ(x.min_shape, (Shape{1, 4}));
  EXPECT_EQ(x.max_shape, (Shape{4, 4}));
  EXPECT_EQ(x.axes, (std::vector<AxisKind>{AxisKind::Batch, AxisKind::Static}));
  EXPECT_EQ(x.dims, (std::vector<std::string>{"batch", ""}));
  ASSERT_EQ(spec.outputs.size(), 2u);
  EXPECT_EQ(spec.outputs[0].name, "y");
  EXPECT_EQ(spec.outputs[0].min_shape, (Shape{1, 3}));  // by shape inference per sample
  EXPECT_EQ(spec.outputs[0].max_shape, (Shape{4, 3}));
  EXPECT_EQ(spec.outputs[0].axes[0], AxisKind::Batch);
  EXPECT_TRUE(spec.has_dynamic_axes());
  EXPECT_TRUE(GraphSpec::from_dict(spec.to_dict()) == spec);

  // A dynamic axis that does not follow the batch is "dynamic", not "batch".
  Model m2 = Model::load(backend_test::model_path("two_in.onnx"));
  GraphSpec s2 = GraphSpec::from_model(m2, {two_in(2, 8, 1), two_in(3, 16, 2)});
  EXPECT_EQ(s2.inputs[0].axes, (std::vector<AxisKind>{AxisKind::Batch, AxisKind::Dynamic}));
  EXPECT_EQ(s2.inputs[0].dims, (std::vector<std::string>{"batch", "seq"}));
  EXPECT_EQ(s2.inputs[0].min_shape, (Shape{2, 8}));
  EXPECT_EQ(s2.inputs[0].max_shape, (Shape{3, 16}));

  // No samples: dynamic sizes are unknown.
  GraphSpec empty = GraphSpec::from_model(model, {});
  EXPECT_EQ(empty.inputs[0].min_shape, (Shape{-1, 4}));
}

TEST(BackendProfiles, SamplesAreValidatedAgainstTheModel) {
  Model model = Model::load(backend_test::model_path("mlp.onnx"));
  EXPECT_NE(what_of([&] { GraphSpec::from_model(model, {{}}); }).find("sample 0: input 'x' (float32[batch,4]) is missing"),
            std::string::npos);
  EXPECT_NE(what_of([&] { GraphSpec::from_model(model, {{{"x", rand_f32({1, 4}, 1)}, {"z", rand_f32({1}, 1)}}}); })
                .find("'z' is not an input"),
            std::string::npos);
  EXPECT_NE(what_of([&] { GraphSpec::from_model(model, {mlp_sample(1, 1), {{"x", rand_f32({1, 5}, 1)}}}); })
                .find("sample 1: input 'x' has shape [1,5], the model fixes axis 1 to 4"),
            std::string::npos);
  EXPECT_NE(what_of([&] { GraphSpec::from_model(model, {{{"x", Tensor(DType::Int64, {1, 4})}}}); }).find("is int64[1,4]"),
            std::string::npos);
}

TEST(BackendProfiles, SingleIsMinSeenAndOptEqualsMaxSeen) {
  Model model = Model::load(backend_test::model_path("two_in.onnx"));
  std::vector<Sample> samples = {two_in(2, 8, 1), two_in(3, 16, 2), two_in(1, 12, 3)};
  EngineBackend b;
  auto ps = b.get_profiles(GraphSpec::from_model(model, samples), samples);
  ASSERT_EQ(ps.size(), 1u);
  EXPECT_TRUE(ps[0].at("tokens") == (ShapeRange{{1, 8}, {3, 16}, {3, 16}}));
  EXPECT_TRUE(ps[0].at("mask") == (ShapeRange{{1, 8}, {3, 16}, {3, 16}}));
  // Dynamic axes with no sample and no declared range cannot be sized.
  EXPECT_NE(what_of([&] { b.get_profiles(GraphSpec::from_model(model, {}), {}); })
                .find("is dynamic, and neither a sample nor a declared range gives its size"),
            std::string::npos);
}

TEST(BackendProfiles, SamplesUsedMakesOneExactProfilePerDistinctShapeFirstSeenOrder) {
  Model model = Model::load(backend_test::model_path("mlp.onnx"));
  std::vector<Sample> samples = {mlp_sample(2, 1), mlp_sample(1, 2), mlp_sample(2, 3), mlp_sample(4, 4), mlp_sample(1, 5)};
  EngineBackendConfig cfg;
  cfg.profiles = ProfileMode::SamplesUsed;
  EngineBackend b(cfg);
  auto ps = b.get_profiles(GraphSpec::from_model(model, samples), samples);
  ASSERT_EQ(ps.size(), 3u);
  EXPECT_TRUE(ps[0].at("x") == (ShapeRange{{2, 4}, {2, 4}, {2, 4}}));
  EXPECT_TRUE(ps[1].at("x") == (ShapeRange{{1, 4}, {1, 4}, {1, 4}}));
  EXPECT_TRUE(ps[2].at("x") == (ShapeRange{{4, 4}, {4, 4}, {4, 4}}));
  EXPECT_NE(what_of([&] { b.get_profiles(GraphSpec::from_model(model, {}), {}); }).find("needs at least one sample"),
            std::string::npos);
}

TEST(BackendProfiles, UserListIsVerbatimAndMustNameExactlyTheInputs) {
  Model model = Model::load(backend_test::model_path("two_in.onnx"));
  std::vector<Sample> samples = {two_in(2, 8, 1)};
  GraphSpec spec = GraphSpec::from_model(model, samples);
  Profile p1 = Profile().add_input_shape("tokens", {1, 4}, {2, 8}, {4, 8}).add_input_shape("mask", {1, 4}, {2, 8}, {4, 8});
  Profile p0 = Profile().add_input_shape("mask", {8, 8}, {8, 8}, {8, 8}).add_input_shape("tokens", {8, 8}, {8, 8}, {8, 8});
  EngineBackendConfig cfg;
  cfg.profiles = std::vector<Profile>{p0, p1};
  auto ps = EngineBackend(cfg).get_profiles(spec, samples);
  ASSERT_EQ(ps.size(), 2u);
  EXPECT_TRUE(ps[0] == p0);
  EXPECT_TRUE(ps[1] == p1);

  cfg.profiles = std::vector<Profile>{
      Profile().add_input_shape("tokens", {1, 4}, {1, 4}, {1, 4}).add_input_shape("extra", {1}, {1}, {1})};
  EXPECT_EQ(what_of([&] { EngineBackend(cfg).get_profiles(spec, samples); }),
            "profile 0 inputs ['tokens', 'extra'] do not match the model's tensor inputs ['tokens', 'mask'] (missing: "
            "['mask'], unknown: ['extra']).");
}

TEST(BackendProfiles, DeclaredDimensionRangesWin) {
  Model model = Model::load(backend_test::model_path("mlp.onnx"));
  std::vector<Sample> samples = {mlp_sample(2, 1), mlp_sample(3, 2)};
  GraphSpec spec = GraphSpec::from_model(model, samples);
  spec.declare_dim("batch", 1, 16, 8);
  EngineBackend single;
  auto ps = single.get_profiles(spec, samples);
  ASSERT_EQ(ps.size(), 1u);
  EXPECT_TRUE(ps[0].at("x") == (ShapeRange{{1, 4}, {8, 4}, {16, 4}}));
  // SamplesUsed is ignored (one profile from the declared ranges), as in AITune.
  EngineBackendConfig su;
  su.profiles = ProfileMode::SamplesUsed;
  EXPECT_EQ(EngineBackend(su).get_profiles(spec, samples).size(), 1u);
  // A user list together with declared ranges is an error.
  EngineBackendConfig list;
  list.profiles = std::vector<Profile>{Profile().add_input_shape("x", {1, 4}, {1, 4}, {1, 4})};
  EXPECT_NE(what_of([&] { EngineBackend(list).get_profiles(spec, samples); })
                .find("profiles cannot be provided together with declared dynamic dimension ranges"),
            std::string::npos);
  // opt defaults to max; samples outside the declared range are refused.
  GraphSpec s2 = GraphSpec::from_model(model, samples);
  s2.declare_dim("batch", 1, 2);
  EXPECT_NE(what_of([&] { single.get_profiles(s2, samples); }).find("outside the declared range 1..2"), std::string::npos);
  GraphSpec s3 = GraphSpec::from_model(model, {});
  s3.declare_dim("batch", 2, 6);
  EXPECT_TRUE(single.get_profiles(s3, {})[0].at("x") == (ShapeRange{{2, 4}, {6, 4}, {6, 4}}));
  // Validation of the declaration itself.
  GraphSpec s4;
  expect_error([&] { s4.declare_dim("b", 4, 4); }, ErrorCode::InvalidArgument);
  expect_error([&] { s4.declare_dim("b", 0, 4); }, ErrorCode::InvalidArgument);
  expect_error([&] { s4.declare_dim("b", 1, 4, 5); }, ErrorCode::InvalidArgument);
  expect_error([&] { s4.declare_dim("", 1, 4); }, ErrorCode::InvalidArgument);
  s4.declare_dim("b", 1, 4);
  s4.declare_dim("b", 1, 4);  // the same definition again is fine
  expect_error([&] { s4.declare_dim("b", 1, 8); }, ErrorCode::InvalidArgument);
}

TEST(BackendProfiles, ProfilesJsonAndFirstMatchSelectionAtRunTime) {
  backend_test::ScratchDir dir;
  Model model = Model::load(backend_test::model_path("mlp.onnx"));
  std::vector<Sample> samples = {mlp_sample(2, 1)};
  EngineBackendConfig cfg;
  cfg.profiles = std::vector<Profile>{Profile().add_input_shape("x", {1, 4}, {2, 4}, {2, 4}),
                                      Profile().add_input_shape("x", {1, 4}, {4, 4}, {8, 4})};
  EngineBackend b(cfg);
  b.build(model, GraphSpec::from_model(model, samples), samples, backend_test::device(), dir / "cache");
  EXPECT_EQ(backend_test::slurp(dir / "cache/profiles.json"),
            "[\n  {\n    \"x\": [\n      [\n        1,\n        4\n      ],\n      [\n        2,\n        4\n      ],\n      [\n"
            "        2,\n        4\n      ]\n    ]\n  },\n  {\n    \"x\": [\n      [\n        1,\n        4\n      ],\n      [\n"
            "        4,\n        4\n      ],\n      [\n        8,\n        4\n      ]\n    ]\n  }\n]\n");
  ASSERT_EQ(b.profiles().size(), 2u);
  ExecutionContext ctx = b.engine().create_context();
  ctx.run(mlp_sample(2, 7));
  EXPECT_EQ(ctx.last_profile(), 0);  // both contain batch 2: the first wins
  ctx.run(mlp_sample(5, 7));
  EXPECT_EQ(ctx.last_profile(), 1);
  expect_error([&] { b.infer(mlp_sample(9, 7)); }, ErrorCode::ShapeOutOfProfile);
  // The backend stays usable after an out-of-profile call (AITune's functional test 024).
  EXPECT_EQ(b.infer(mlp_sample(8, 7)).at("y").shape(), (Shape{8, 3}));
}

TEST(BackendProfiles, InputsWithDefaultsMayBeLeftOutOfSamples) {
  backend_test::ScratchDir dir;
  Model model = Model::load(backend_test::model_path("defaults.onnx"));
  ASSERT_EQ(model.inputs().size(), 2u);
  EXPECT_TRUE(model.inputs()[1].has_default);
  std::vector<Sample> samples = {mlp_sample(1, 1), mlp_sample(3, 2)};  // only "x"
  GraphSpec spec = GraphSpec::from_model(model, samples);
  EXPECT_EQ(spec.inputs[1].name, "scale");
  EXPECT_EQ(spec.inputs[1].min_shape, (Shape{4}));
  EngineBackend b;
  b.build(model, spec, samples, backend_test::device(), dir / "cache");
  TensorMap out = b.infer(mlp_sample(2, 3));
  EXPECT_FLOAT_EQ(static_cast<float>(out.at("y").at_double(1)), -static_cast<float>(mlp_sample(2, 3).at("x").at_double(1)));
  // Overriding the default still works.
  Sample with = mlp_sample(2, 3);
  with["scale"] = Tensor::from_vector(DType::Float32, {4}, std::vector<float>{1, 1, 1, 1});
  EXPECT_TRUE(b.infer(with).at("y").bit_equal(with.at("x")));
}
