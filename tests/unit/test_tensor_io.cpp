// Tensor files: .npy (NumPy-written files from gen_test_models.py, round trips, bad files) and
// serialized onnx.TensorProto .pb files (raw and typed fields, round trips, bad files).
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "kiln/io.h"
#include "unit/onnx_test_util.h"
#include "util/half.h"

namespace {

using namespace kiln_onnx_test;
using kiln::ErrorCode;

class TensorIo : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("kiln_tensor_io_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string tmp(const std::string& name) const { return (dir_ / name).string(); }
  void write(const std::string& name, const std::string& bytes) {
    std::ofstream f(tmp(name), std::ios::binary);
    f << bytes;
  }
  std::filesystem::path dir_;
};

std::vector<double> values(const Tensor& t) {
  std::vector<double> v;
  for (int64_t i = 0; i < t.numel(); ++i) v.push_back(t.at_double(i));
  return v;
}

// One tensor of each dtype with recognizable values.
std::vector<Tensor> sample_tensors() {
  std::vector<Tensor> out;
  for (DType dt : kiln::all_dtypes()) {
    Tensor t(dt, {2, 3});
    for (int64_t i = 0; i < 6; ++i) {
      const double v = (i % 2 ? -1.0 : 1.0) * static_cast<double>(i) * 1.5;
      switch (dt) {
        case DType::Float32: t.mutable_as<float>()[i] = static_cast<float>(v); break;
        case DType::Float16: t.mutable_as<uint16_t>()[i] = kiln::util::float_to_half(static_cast<float>(v)); break;
        case DType::BFloat16: t.mutable_as<uint16_t>()[i] = kiln::util::float_to_bf16(static_cast<float>(v)); break;
        case DType::Float64: t.mutable_as<double>()[i] = v; break;
        case DType::Int64: t.mutable_as<int64_t>()[i] = static_cast<int64_t>(v) * 1000000007LL; break;
        case DType::Int32: t.mutable_as<int32_t>()[i] = static_cast<int32_t>(v) * 100000; break;
        case DType::Int16: t.mutable_as<int16_t>()[i] = static_cast<int16_t>(v * 100); break;
        case DType::Int8: t.mutable_as<int8_t>()[i] = static_cast<int8_t>(v); break;
        case DType::UInt8: t.mutable_as<uint8_t>()[i] = static_cast<uint8_t>(200 + i); break;
        case DType::Bool: t.mutable_as<uint8_t>()[i] = i % 3 == 0; break;
      }
    }
    out.push_back(t);
  }
  return out;
}

TEST_F(TensorIo, LoadsNumpyFilesOfEveryDtype) {
  const std::vector<double> base{0, 1, -2, 3, -4, 5};
  const std::pair<const char*, DType> cases[] = {{"f4", DType::Float32}, {"f2", DType::Float16},
                                                 {"f8", DType::Float64}, {"i8", DType::Int64},
                                                 {"i4", DType::Int32},   {"i2", DType::Int16},
                                                 {"i1", DType::Int8},    {"v2", DType::Float32},
                                                 {"v3", DType::Float32}};
  for (const auto& [name, dt] : cases) {
    Tensor t = kiln::load_npy(model_path(std::string("npy/") + name + ".npy"));
    EXPECT_EQ(t.dtype(), dt) << name;
    EXPECT_EQ(t.shape(), (Shape{2, 3})) << name;
    EXPECT_EQ(values(t), base) << name;
  }
  EXPECT_EQ(values(kiln::load_npy(model_path("npy/u1.npy"))), (std::vector<double>{0, 1, 2, 3, 4, 255}));
  Tensor b = kiln::load_npy(model_path("npy/b1.npy"));
  EXPECT_EQ(b.dtype(), DType::Bool);
  EXPECT_EQ(values(b), (std::vector<double>{1, 0, 1, 0, 0, 1}));
  Tensor s = kiln::load_npy(model_path("npy/scalar.npy"));
  EXPECT_EQ(s.shape(), Shape{});
  EXPECT_EQ(s.at_double(0), 3.5);
  Tensor e = kiln::load_npy(model_path("npy/empty.npy"));
  EXPECT_EQ(e.shape(), (Shape{0, 4}));
}

TEST_F(TensorIo, NpyRoundTripAndNumpyReadsOurFiles) {
  for (const Tensor& t : sample_tensors()) {
    if (t.dtype() == DType::BFloat16) {
      expect_error([&] { kiln::save_npy(tmp("bf16.npy"), t); }, ErrorCode::InvalidArgument, {"bf16.npy", "bfloat16"});
      continue;
    }
    const std::string f = tmp(std::string(kiln::dtype_name(t.dtype())) + ".npy");
    kiln::save_npy(f, t);
    EXPECT_TRUE(kiln::load_npy(f).bit_equal(t)) << t.type_str();
  }
  kiln::save_npy(tmp("scalar.npy"), Tensor::from_vector(DType::Float32, {}, std::vector<float>{2.5f}));
  kiln::save_npy(tmp("vec.npy"), Tensor::from_vector(DType::Int64, {3}, std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(kiln::load_npy(tmp("scalar.npy")).shape(), Shape{});
  EXPECT_EQ(kiln::load_npy(tmp("vec.npy")).shape(), Shape{3});
  for (const auto& entry : std::filesystem::directory_iterator(dir_))  // atomic writes leave no temporaries
    EXPECT_EQ(entry.path().filename().string().find(".tmp."), std::string::npos) << entry.path();
  // NumPy agrees (when the project's Python is there).
  if (!std::filesystem::exists(KILN_PYTHON)) GTEST_SKIP() << "no Python at " << KILN_PYTHON;
  const std::string cmd = std::string(KILN_PYTHON) + " -c \"import numpy as np, sys; d=sys.argv[1]; " +
                          "a=np.load(d+'/float32.npy'); assert a.dtype==np.float32 and a.shape==(2,3) and a[0,1]==-1.5; " +
                          "assert np.load(d+'/vec.npy').tolist()==[1,2,3]; assert np.load(d+'/scalar.npy').shape==(); " +
                          "assert np.load(d+'/bool.npy').tolist()==[[True,False,False],[True,False,False]]\" " +
                          dir_.string();
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

TEST_F(TensorIo, BadNpyFiles) {
  expect_error([] { kiln::load_npy(model_path("npy/fortran.npy")); }, ErrorCode::InvalidArgument,
               {"fortran.npy", "Fortran"});
  expect_error([] { kiln::load_npy(model_path("npy/bigendian.npy")); }, ErrorCode::InvalidArgument,
               {"bigendian.npy", ">f4"});
  expect_error([] { kiln::load_npy(model_path("npy/complex.npy")); }, ErrorCode::InvalidArgument, {"complex.npy"});
  expect_error([&] { kiln::load_npy(tmp("missing.npy")); }, ErrorCode::Io, {"missing.npy"});
  write("garbage.npy", "hello world, not numpy");
  expect_error([&] { kiln::load_npy(tmp("garbage.npy")); }, ErrorCode::InvalidArgument, {"garbage.npy", "magic"});
  const std::string good = kiln::util::read_file(model_path("npy/f4.npy"));
  write("truncated.npy", good.substr(0, good.size() - 3));
  expect_error([&] { kiln::load_npy(tmp("truncated.npy")); }, ErrorCode::InvalidArgument, {"truncated.npy", "needs 24"});
  write("cut_header.npy", good.substr(0, 30));
  expect_error([&] { kiln::load_npy(tmp("cut_header.npy")); }, ErrorCode::InvalidArgument, {"cut_header.npy"});
  std::string bad_header = good;
  bad_header.replace(bad_header.find("'shape'"), 7, "'shapz'");
  write("bad_header.npy", bad_header);
  expect_error([&] { kiln::load_npy(tmp("bad_header.npy")); }, ErrorCode::InvalidArgument, {"bad_header.npy", "header"});
  std::string bad_version = good;
  bad_version[6] = 9;
  write("bad_version.npy", bad_version);
  expect_error([&] { kiln::load_npy(tmp("bad_version.npy")); }, ErrorCode::InvalidArgument, {"version 9"});
}

TEST_F(TensorIo, LoadsTensorProtoFiles) {
  std::string name;
  Tensor t = kiln::load_tensor_pb(model_path("pb/raw_f32.pb"), &name);
  EXPECT_EQ(name, "raw_f32");
  EXPECT_EQ(t.shape(), (Shape{2, 3}));
  EXPECT_EQ(values(t), (std::vector<double>{0, 1, -2, 3, -4, 5}));
  const std::pair<const char*, std::vector<double>> typed[] = {
      {"f32", {1.5, -2.0, 3.25, 0.0}}, {"f64", {1e-300, -2.5, 1e300}}, {"i16", {-32768, 32767}},
      {"i8", {-128, 0, 127}},          {"u8", {0, 255}},               {"b", {1, 0, 1}},
      {"f16", {1.0, -0.5}},            {"bf16", {1.0, -2.0}},          {"scalar", {42.0}},
      {"raw_f16", {0.5, 2.0}},         {"empty", {}}};
  for (const auto& [n, want] : typed) {
    Tensor x = kiln::load_tensor_pb(model_path(std::string("pb/typed_") + n + ".pb"), &name);
    EXPECT_EQ(name, n);
    EXPECT_EQ(values(x), want) << n;
  }
  Tensor i64 = kiln::load_tensor_pb(model_path("pb/typed_i64.pb"));
  EXPECT_EQ(i64.at_int64(0), -(int64_t(1) << 62));
}

TEST_F(TensorIo, TensorProtoRoundTripOfEveryDtype) {
  for (const Tensor& t : sample_tensors()) {
    const std::string f = tmp(std::string(kiln::dtype_name(t.dtype())) + ".pb");
    kiln::save_tensor_pb(f, t, "t_" + std::string(kiln::dtype_name(t.dtype())));
    std::string name;
    EXPECT_TRUE(kiln::load_tensor_pb(f, &name).bit_equal(t)) << t.type_str();
    EXPECT_EQ(name, "t_" + std::string(kiln::dtype_name(t.dtype())));
  }
  kiln::save_tensor_pb(tmp("empty.pb"), Tensor(DType::Float32, {0, 5}), "e");
  EXPECT_EQ(kiln::load_tensor_pb(tmp("empty.pb")).shape(), (Shape{0, 5}));
}

TEST_F(TensorIo, BadTensorProtoFiles) {
  expect_error([&] { kiln::load_tensor_pb(tmp("missing.pb")); }, ErrorCode::Io, {"missing.pb"});
  write("garbage.pb", "\xff\xff\xff\xff garbage");
  expect_error([&] { kiln::load_tensor_pb(tmp("garbage.pb")); }, ErrorCode::InvalidArgument,
               {"garbage.pb", "TensorProto"});
  onnx::TensorProto tp = f32_proto("w", {4}, {1, 2});
  write("short.pb", tp.SerializeAsString());
  expect_error([&] { kiln::load_tensor_pb(tmp("short.pb")); }, ErrorCode::InvalidArgument, {"short.pb", "'w'"});
  tp.Clear();
  tp.set_name("s");
  tp.set_data_type(onnx::TensorProto::STRING);
  tp.add_string_data("abc");
  write("string.pb", tp.SerializeAsString());
  expect_error([&] { kiln::load_tensor_pb(tmp("string.pb")); }, ErrorCode::Unsupported, {"string.pb", "STRING"});
}

}  // namespace
