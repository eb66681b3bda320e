// ONNX importer: a tensor at a 3 GiB offset of a sparse external data file is read without reading (or
// holding) the rest of the file: peak RSS grows by far less than the file size.
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>

#include "unit/onnx_test_util.h"

namespace {

using namespace kiln_onnx_test;

long peak_rss_kib() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;  // KiB on Linux
}

TEST(OnnxImportBig, TensorAtThreeGiBOffsetOfSparseFile) {
  ensure_test_ops();
  std::string dir_name = "kiln_onnx_big_";
  dir_name += std::to_string(::getpid());  // (not "literal" + string: GCC 12 -Wrestrict false positive)
  const auto dir = std::filesystem::temp_directory_path() / dir_name;
  std::filesystem::create_directories(dir);
  const uint64_t offset = uint64_t(3) << 30;
  const int64_t n = (1 << 20) / 4;  // 1 MiB of float32
  std::vector<float> w(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) w[static_cast<size_t>(i)] = static_cast<float>(i % 1000) * 0.5f - 7.f;
  {
    const std::string file = (dir / "big.bin").string();
    int fd = ::open(file.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
    ASSERT_GE(fd, 0);
    ssize_t wrote = ::pwrite(fd, w.data(), w.size() * 4, static_cast<off_t>(offset));  // the hole stays sparse
    ASSERT_EQ(wrote, static_cast<ssize_t>(w.size() * 4));
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(offset + w.size() * 4 + 4096)), 0);
    ::close(fd);
  }
  onnx::ModelProto p = relu_model();
  auto* g = p.mutable_graph();
  auto* t = g->add_initializer();
  t->set_name("big_w");
  t->set_data_type(onnx::TensorProto::FLOAT);
  t->add_dims(n);
  t->set_data_location(onnx::TensorProto::EXTERNAL);
  auto kv = [&](const char* k, const std::string& v) {
    auto* e = t->add_external_data();
    e->set_key(k);
    e->set_value(v);
  };
  kv("location", "big.bin");
  kv("offset", std::to_string(offset));
  kv("length", std::to_string(n * 4));
  auto* node = g->add_node();
  node->set_op_type("Relu");
  node->add_input("big_w");
  node->add_output("big_out");
  const std::string model_file = (dir / "model.onnx").string();
  kiln::util::write_file_atomic(model_file, serialize(p));

  const long before = peak_rss_kib();
  auto m = kiln::onnx_import::import_model_file(model_file);
  const long growth_kib = peak_rss_kib() - before;
  const Tensor& got = m.graph.initializers.at("big_w");
  ASSERT_EQ(got.shape(), Shape{n});
  EXPECT_EQ(0, std::memcmp(got.data(), w.data(), w.size() * 4));
  EXPECT_LT(growth_kib, 64 * 1024) << "peak RSS grew by " << growth_kib << " KiB";
  std::filesystem::remove_all(dir);
}

}  // namespace
