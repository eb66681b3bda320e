// Core public types: errors (and docs/errors.md agreeing with the code), dtypes, tensors, profiles,
// logging, the tolerance table.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <set>
#include <regex>
#include <sstream>

#include "kiln/kiln.h"
#include "util/half.h"

using namespace kiln;

TEST(Core, ErrorCodesMatchDocs) {
  std::ifstream f(std::string(KILN_SOURCE_DIR) + "/docs/errors.md");
  ASSERT_TRUE(f.good());
  std::stringstream ss;
  ss << f.rdbuf();
  std::string doc = ss.str();
  const ErrorCode all[] = {ErrorCode::InvalidModel, ErrorCode::Unsupported, ErrorCode::InvalidArgument,
                           ErrorCode::ShapeOutOfProfile, ErrorCode::InvalidState, ErrorCode::PlanMismatch,
                           ErrorCode::Integrity, ErrorCode::Correctness, ErrorCode::Io,
                           ErrorCode::Cuda, ErrorCode::OutOfMemory};
  std::set<int> codes;
  for (ErrorCode c : all) {
    std::string row = "| " + std::string(error_code_name(c)) + " | " + std::to_string(exit_code(c)) + " |";
    EXPECT_NE(doc.find(row), std::string::npos) << "docs/errors.md lacks row " << row;
    EXPECT_TRUE(codes.insert(exit_code(c)).second);
    EXPECT_GT(exit_code(c), 2);
  }
}

TEST(Core, DTypes) {
  EXPECT_EQ(dtype_size(DType::BFloat16), 2u);
  EXPECT_EQ(dtype_size(DType::Int64), 8u);
  for (DType t : all_dtypes()) EXPECT_EQ(dtype_from_name(dtype_name(t)), t);
  EXPECT_FALSE(dtype_from_name("complex64").has_value());
  EXPECT_EQ(shape_str({1, 3, 224}), "[1,3,224]");
  EXPECT_EQ(shape_numel({}), 1);
  EXPECT_EQ(shape_numel({2, 0, 5}), 0);
  try {
    shape_numel({1LL << 40, 1LL << 40});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::InvalidArgument);
  }
}

TEST(Core, HalfConversionsRoundTrip) {
  for (float v : {0.0f, 1.0f, -2.5f, 65504.0f, 6.1035156e-05f, 5.9604645e-08f, 0.333251953125f})
    EXPECT_EQ(util::half_to_float(util::float_to_half(v)), v) << v;
  EXPECT_TRUE(std::isinf(util::half_to_float(util::float_to_half(70000.0f))));
  EXPECT_EQ(util::half_to_float(util::float_to_half(1.0f + 1.0f / 4096)), 1.0f);  // ties to even
  EXPECT_EQ(util::bf16_to_float(util::float_to_bf16(1.0f)), 1.0f);
  EXPECT_EQ(util::bf16_to_float(util::float_to_bf16(3.140625f)), 3.140625f);
  EXPECT_TRUE(std::isnan(util::bf16_to_float(util::float_to_bf16(std::nanf("")))));
}

TEST(Core, TensorBasics) {
  Tensor t = Tensor::from_vector(DType::Float32, {2, 2}, std::vector<float>{1, 2, 3, 4});
  EXPECT_EQ(t.nbytes(), 16u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data()) % 64, 0u);
  Tensor r = t.reshaped({4});
  EXPECT_EQ(r.data(), t.data());
  Tensor c = t.clone();
  EXPECT_NE(c.data(), t.data());
  EXPECT_TRUE(c.bit_equal(t));
  EXPECT_THROW(t.reshaped({3}), Error);
  EXPECT_THROW(Tensor::from_bytes(DType::Float32, {3}, nullptr, 8), Error);
  EXPECT_EQ(t.type_str(), "float32[2,2]");
}

TEST(Core, Profiles) {
  Profile p;
  p.add_input_shape("x", {1, 3}, {4, 3}, {8, 3}).add_input_shape("a", {1}, {1}, {1});
  EXPECT_TRUE(p.contains({{"x", {8, 3}}}));
  EXPECT_FALSE(p.contains({{"x", {9, 3}}}));
  EXPECT_FALSE(p.contains({{"x", {4}}}));
  EXPECT_EQ(p.shapes().begin()->first, "a");  // sorted by name
  EXPECT_EQ(p.str(), "a: min [1] opt [1] max [1]; x: min [1,3] opt [4,3] max [8,3]");
  Profile q;
  q.add_input_shape("a", {1}, {1}, {1}).add_input_shape("x", {1, 3}, {4, 3}, {8, 3});
  EXPECT_EQ(p, q);
  EXPECT_EQ(p.hash(), q.hash());
  EXPECT_THROW(Profile().add_input_shape("x", {2}, {1}, {3}), Error);
  EXPECT_THROW(Profile().add_input_shape("x", {1}, {1, 1}, {3}), Error);
  EXPECT_THROW(Profile().add_input_shape("", {1}, {1}, {1}), Error);
}

TEST(Core, LoggingSinkAndLevel) {
  std::vector<std::string> got;
  set_log_sink([&](LogLevel, const std::string& m) { got.push_back(m); });
  set_log_level(LogLevel::Info);
  log(LogLevel::Debug, "hidden");
  log(LogLevel::Warning, "shown");
  set_log_level(LogLevel::Warning);
  set_log_sink(nullptr);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], "shown");
}

TEST(Core, CompareUsesTheTable) {
  Tensor ref = Tensor::from_vector(DType::Float32, {3}, std::vector<float>{1, 2, 3});
  Tensor close = Tensor::from_vector(DType::Float32, {3}, std::vector<float>{1.00005f, 2, 3});
  Tensor far = Tensor::from_vector(DType::Float32, {3}, std::vector<float>{1.01f, 2, 3});
  EXPECT_TRUE(compare(close, ref, tolerance_for("fp32")).passed);
  auto c = compare(far, ref, tolerance_for("fp32"));
  EXPECT_FALSE(c.passed);
  EXPECT_EQ(c.mismatches, 1);
  EXPECT_NEAR(c.max_abs, 0.01, 1e-6);
  EXPECT_TRUE(compare(far, ref, tolerance_for("fp16")).passed);  // rel L2 ~ 2.7e-3
  Tensor nan = Tensor::from_vector(DType::Float32, {3}, std::vector<float>{NAN, 2, 3});
  EXPECT_FALSE(compare(nan, ref, tolerance_for("bf16")).passed);
  Tensor i1 = Tensor::from_vector(DType::Int64, {2}, std::vector<int64_t>{1, 2});
  Tensor i2 = Tensor::from_vector(DType::Int64, {2}, std::vector<int64_t>{1, 3});
  EXPECT_FALSE(compare(i2, i1, tolerance_for("fp16")).passed);  // integers: exact whatever the row
  EXPECT_FALSE(compare(ref.reshaped({3, 1}), ref, tolerance_for("fp32")).passed);
  EXPECT_THROW(tolerance_for("fp8"), Error);
}
