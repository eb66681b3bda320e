// Engine plan file: round trip, layout, every error case, hardening against corrupt metadata.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <unistd.h>

#include "kiln/engine.h"
#include "kiln/error.h"
#include "plan/plan.h"
#include "plan/plan_codec.h"
#include "unit/plan_test_util.h"
#include "util/fs.h"

namespace kiln::test_plan_cpp {

using plan_test::fix_checksum;
using plan_test::make_engine;

struct Layout {
  size_t header_end, meta_start, meta_len, blob_offset, blob_size, body_end;
};

Layout layout_of(const std::string& s) {
  Layout l{};
  l.header_end = plan::kPreambleSize + plan::codec::load_u32(s.data() + 12);
  l.meta_len = plan::codec::load_u64(s.data() + l.header_end);
  l.blob_offset = plan::codec::load_u64(s.data() + l.header_end + 8);
  l.blob_size = plan::codec::load_u64(s.data() + l.header_end + 16);
  l.meta_start = l.header_end + 24;
  l.body_end = s.size() - plan::kChecksumSize;
  return l;
}

// Runs `fn`, expects kiln::Error with `code` whose message contains every string of `parts`.
void expect_error(const std::function<void()>& fn, ErrorCode code, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected " << error_code_name(code);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    for (const auto& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what() << "\nmissing: " << p;
  }
}

void expect_load_error(const std::string& bytes, ErrorCode code, const std::vector<std::string>& parts) {
  expect_error([&] { plan::deserialize(bytes, "model.kiln"); }, code, parts);
}

// Every tensor (initializers and tensor attributes) of a graph, recursively.
void collect_tensors(const ir::Graph& g, std::vector<Tensor>& out) {
  for (const auto& [k, t] : g.initializers) out.push_back(t);
  for (const auto& n : g.nodes)
    for (const auto& [k, a] : n.attrs) {
      if (const auto* t = std::get_if<Tensor>(&a)) out.push_back(*t);
      if (const auto* sg = std::get_if<ir::GraphPtr>(&a))
        if (*sg) collect_tensors(**sg, out);
    }
}

TEST(Plan, RoundTripIsByteIdentical) {
  detail::EngineImpl e = make_engine();
  std::string a = plan::serialize(e);
  auto e2 = plan::deserialize(a, "<memory>");
  plan_test::expect_engine_eq(e, *e2);
  std::string b = plan::serialize(*e2);
  EXPECT_EQ(a, b);
  // And through the zero-copy overload.
  auto e3 = plan::deserialize(std::make_shared<const std::string>(a), "<memory>");
  plan_test::expect_engine_eq(e, *e3);
  EXPECT_EQ(a, plan::serialize(*e3));
}

TEST(Plan, EmptyEngineRoundTrips) {
  detail::EngineImpl e = plan_test::make_empty_engine();
  std::string a = plan::serialize(e);
  auto e2 = plan::deserialize(a, "<memory>");
  plan_test::expect_engine_eq(e, *e2);
  EXPECT_EQ(a, plan::serialize(*e2));
  Layout l = layout_of(a);
  EXPECT_EQ(l.blob_size, 0u);
  EXPECT_EQ(l.blob_offset % plan::kWeightAlignment, 0u);
}

TEST(Plan, LayoutAndHeader) {
  std::string s = plan::serialize(make_engine());
  ASSERT_GE(s.size(), plan::kPreambleSize + plan::kChecksumSize);
  EXPECT_EQ(s.substr(0, 8), "KILNPLAN");
  EXPECT_EQ(plan::codec::load_u32(s.data() + 8), plan::kFormatVersion);
  EXPECT_EQ(plan::codec::load_u64(s.data() + 16), s.size());
  plan::Header h = plan::read_header(s, "x.kiln");
  EXPECT_EQ(h.format_version, plan::kFormatVersion);
  EXPECT_EQ(h.build_id, kiln::build_id());
  EXPECT_EQ(h.kiln_version, kiln::version());
  EXPECT_EQ(h.target, "cpu");
  EXPECT_EQ(h.precision, "fp32");
  EXPECT_EQ(h.file_size, s.size());
  Layout l = layout_of(s);
  EXPECT_EQ(l.blob_offset % plan::kWeightAlignment, 0u);
  EXPECT_EQ(l.blob_offset + l.blob_size, l.body_end);
  EXPECT_EQ(l.meta_start + l.meta_len, l.blob_offset - (l.blob_offset - l.meta_start - l.meta_len));
  EXPECT_LT(l.blob_offset - (l.meta_start + l.meta_len), plan::kWeightAlignment);
}

TEST(Plan, WeightsAreAlignedViewsOfThePlanBytes) {
  detail::EngineImpl e = make_engine();
  auto bytes = std::make_shared<const std::string>(plan::serialize(e));
  auto e2 = plan::deserialize(bytes, "<memory>");
  std::vector<Tensor> tensors;
  collect_tensors(e2->graph, tensors);
  ASSERT_GE(tensors.size(), 15u);
  const char* base = bytes->data();
  Layout l = layout_of(*bytes);
  size_t viewed = 0;
  for (const Tensor& t : tensors) {
    if (t.empty()) continue;
    auto p = static_cast<const char*>(t.data());
    ASSERT_GE(p, base + l.blob_offset) << t.type_str();
    ASSERT_LE(p + t.nbytes(), base + l.body_end) << t.type_str();
    EXPECT_EQ(static_cast<size_t>(p - base) % plan::kWeightAlignment, 0u) << t.type_str();
    ++viewed;
  }
  EXPECT_GE(viewed, 15u);
  // The copying overload keeps them 64-byte aligned in memory too.
  auto e3 = plan::deserialize(*bytes, "<memory>");
  tensors.clear();
  collect_tensors(e3->graph, tensors);
  for (const Tensor& t : tensors) {
    if (!t.empty()) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data()) % plan::kWeightAlignment, 0u);
    }
  }
  // Scalars and zero-element tensors survive.
  EXPECT_EQ(e2->graph.initializers.at("idx").shape(), Shape{});
  EXPECT_EQ(e2->graph.initializers.at("idx").at_int64(0), e.graph.initializers.at("idx").at_int64(0));
  EXPECT_EQ(e2->graph.initializers.at("empty").shape(), (Shape{0, 4}));
  EXPECT_FALSE(e2->graph.initializers.at("empty").empty());
}

TEST(Plan, TruncatedAnywhereIsIntegrity) {
  std::string s = plan::serialize(make_engine());
  Layout l = layout_of(s);
  ASSERT_GT(l.blob_size, 128u);
  std::vector<size_t> cuts = {0, 1, 7, 8, 11, 12, 20, 23, 24, l.header_end - 1, l.header_end, l.meta_start + 5,
                              l.meta_start + l.meta_len / 2, l.blob_offset, l.blob_offset + l.blob_size / 2,
                              l.body_end, s.size() - 1};
  for (size_t cut : cuts) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    std::string t = s.substr(0, cut);
    expect_load_error(t, ErrorCode::Integrity, {"model.kiln", "truncated: " + std::to_string(cut) + " bytes"});
  }
  // Past the header, the message names the exact recorded size.
  expect_load_error(s.substr(0, l.blob_offset + 3), ErrorCode::Integrity,
                    {"expected at least " + std::to_string(s.size())});
  expect_load_error(s + "x", ErrorCode::Integrity, {"1 unexpected bytes"});
}

TEST(Plan, FlippedWeightByteIsChecksumMismatch) {
  std::string s = plan::serialize(make_engine());
  Layout l = layout_of(s);
  for (size_t pos : {l.blob_offset, l.blob_offset + l.blob_size / 2, l.meta_start + 3, s.size() - 1}) {
    std::string t = s;
    t[pos] = static_cast<char>(t[pos] ^ 0x01);
    expect_load_error(t, ErrorCode::Integrity, {"model.kiln", "checksum mismatch"});
  }
}

TEST(Plan, WrongMagicIsPlanMismatch) {
  std::string s = plan::serialize(make_engine());
  s[3] = 'X';
  expect_load_error(s, ErrorCode::PlanMismatch, {"not a kiln plan", "KILXPLAN", "model.kiln"});
  expect_load_error("\x08\x01\x12\x04onnx", ErrorCode::PlanMismatch, {"not a kiln plan", "\\x08\\x01"});
  expect_load_error("abc", ErrorCode::PlanMismatch, {"not a kiln plan"});
  expect_load_error("KILN", ErrorCode::Integrity, {"truncated: 4 bytes"});
}

TEST(Plan, OtherFormatVersionIsPlanMismatch) {
  std::string s = plan::serialize(make_engine());
  s[8] = static_cast<char>(plan::kFormatVersion + 1);
  std::string want = "format version " + std::to_string(plan::kFormatVersion + 1) + ", this kiln reads " +
                     std::to_string(plan::kOldestFormatVersion) + " to " + std::to_string(plan::kFormatVersion);
  expect_load_error(s, ErrorCode::PlanMismatch, {want, "model.kiln"});
  // Checked before anything else but the magic: a truncated future plan still reports the version.
  expect_load_error(s.substr(0, 12), ErrorCode::PlanMismatch, {want});
  // Older than the oldest format still read.
  s[8] = static_cast<char>(plan::kOldestFormatVersion - 1);
  expect_load_error(s, ErrorCode::PlanMismatch, {"format version " + std::to_string(plan::kOldestFormatVersion - 1)});
}

TEST(Plan, OtherBuildIdIsPlanMismatch) {
  detail::EngineImpl e = make_engine();
  e.kiln_version = "0.0.9";
  e.build_id = "0.0.9+deadbeef0000";
  std::string s = plan::serialize(e);
  expect_load_error(s, ErrorCode::PlanMismatch,
                    {"model.kiln", "built by kiln 0.0.9 (build id 0.0.9+deadbeef0000)",
                     std::string("this is kiln ") + kiln::version(), kiln::build_id(), "rebuild the plan"});
  // The build id is checked before the checksum: a corrupt foreign plan says "foreign", not "corrupt".
  s[s.size() - 1] ^= 1;
  expect_load_error(s, ErrorCode::PlanMismatch, {"rebuild the plan"});
  // Inspection may skip the build id check.
  plan::ReadOptions opts;
  opts.check_build_id = false;
  s[s.size() - 1] ^= 1;
  auto e2 = plan::deserialize(std::make_shared<const std::string>(s), "m", opts);
  EXPECT_EQ(e2->build_id, "0.0.9+deadbeef0000");
}

TEST(Plan, UnknownTargetIsPlanMismatch) {
  detail::EngineImpl e = make_engine();
  e.target = "tpu:v5";
  expect_load_error(plan::serialize(e), ErrorCode::PlanMismatch, {"targets 'tpu:v5'", "model.kiln"});
  e.target = "cuda:sm_90";
  std::string s = plan::serialize(e);
  if (kiln::built_with_cuda()) {
    EXPECT_NO_THROW(plan::deserialize(s, "m"));
  } else {
    expect_load_error(s, ErrorCode::PlanMismatch, {"targets 'cuda:sm_90'", "cannot run"});
  }
}

TEST(Plan, CorruptHeaderIsIntegrity) {
  std::string s = plan::serialize(make_engine());
  s[12] = static_cast<char>(s[12] + 1);  // header one byte longer than its strings
  expect_load_error(s, ErrorCode::Integrity, {"header", "trailing"});
  s = plan::serialize(make_engine());
  s[24] = '\xff';  // kiln version string length beyond the header
  expect_load_error(s, ErrorCode::Integrity, {"header", "truncated kiln version"});
}

// Every single-byte change of the header and metadata, with a repaired checksum, is either a
// valid plan or a kiln::Error (Integrity / PlanMismatch) — never a crash or another exception.
TEST(Plan, CorruptMetadataWithValidChecksumNeverCrashes) {
  std::string s = plan::serialize(make_engine());
  Layout l = layout_of(s);
  size_t errors = 0, loaded = 0;
  for (size_t pos = 8; pos < l.blob_offset; ++pos) {
    for (int v : {0x00, 0xff, s[pos] + 1, 0x80}) {
      std::string t = s;
      t[pos] = static_cast<char>(v);
      if (t == s) continue;
      fix_checksum(t);
      try {
        auto e2 = plan::deserialize(t, "fuzz.kiln");
        ++loaded;
        (void)plan::serialize(*e2);
      } catch (const Error& err) {
        ++errors;
        EXPECT_TRUE(err.code() == ErrorCode::Integrity || err.code() == ErrorCode::PlanMismatch)
            << "byte " << pos << ": " << error_code_name(err.code()) << ": " << err.what();
      } catch (const std::exception& ex) {
        ADD_FAILURE() << "byte " << pos << " = " << v << ": non-kiln exception " << ex.what();
      }
    }
  }
  EXPECT_GT(errors, 100u);
  EXPECT_GT(loaded, 0u);  // e.g. a changed name
}

TEST(Plan, HugeCountsDoNotAllocate) {
  std::string s = plan::serialize(make_engine());
  Layout l = layout_of(s);
  // The graph name is the first metadata field; its node count follows.
  size_t name_len = plan::codec::load_u32(s.data() + l.meta_start);
  size_t nodes_at = l.meta_start + 4 + name_len;
  ASSERT_EQ(plan::codec::load_u32(s.data() + nodes_at), 4u);
  for (uint32_t n : {0xffffffffu, 0x10000000u, 5u}) {
    std::string t = s;
    for (int i = 0; i < 4; ++i) t[nodes_at + static_cast<size_t>(i)] = static_cast<char>(n >> (8 * i));
    fix_checksum(t);
    expect_load_error(t, ErrorCode::Integrity, {"model.kiln", "metadata at offset"});
  }
  // Metadata length pointing past the file.
  std::string t = s;
  t[l.header_end + 7] = '\x7f';
  fix_checksum(t);
  expect_error([&] { plan::deserialize(t, "fuzz"); }, ErrorCode::Integrity, {"metadata length"});
}

TEST(Plan, SubgraphDepthIsLimited) {
  detail::EngineImpl e = plan_test::make_empty_engine();
  auto chain = [](int depth) {
    ir::GraphPtr g = std::make_shared<ir::Graph>();
    for (int i = 0; i < depth; ++i) {
      auto outer = std::make_shared<ir::Graph>();
      ir::Node n;
      n.op_type = "If";
      n.attrs["then_branch"] = g;
      outer->nodes.push_back(n);
      g = outer;
    }
    return g;
  };
  e.graph = *chain(plan::kMaxGraphDepth);
  std::string s = plan::serialize(e);
  auto e2 = plan::deserialize(s, "deep");
  EXPECT_EQ(s, plan::serialize(*e2));
  e.graph = *chain(plan::kMaxGraphDepth + 1);
  expect_error([&] { plan::serialize(e); }, ErrorCode::InvalidArgument, {"nested deeper than"});
  // A graph that contains itself does not recurse forever.
  auto loop = std::make_shared<ir::Graph>();
  ir::Node n;
  n.op_type = "Loop";
  n.attrs["body"] = loop;
  loop->nodes.push_back(n);
  e.graph = *loop;
  expect_error([&] { plan::serialize(e); }, ErrorCode::InvalidArgument, {"nested deeper than"});
  loop->nodes.clear();  // break the cycle so it is freed
}

TEST(Plan, EnginePublicApi) {
  auto impl = std::make_shared<detail::EngineImpl>(make_engine());
  Engine eng(impl);
  std::string s = eng.serialize();
  Engine back = Engine::deserialize(s, "mem.kiln");
  EXPECT_EQ(back.target(), "cpu");
  EXPECT_EQ(back.precision(), "fp32");
  EXPECT_EQ(back.build_id(), kiln::build_id());
  EXPECT_EQ(back.kiln_version(), kiln::version());
  EXPECT_EQ(back.weights_bytes(), eng.weights_bytes());
  EXPECT_EQ(back.profiles().size(), 2u);
  EXPECT_EQ(back.inputs().size(), 3u);
  EXPECT_EQ(back.nodes().size(), 4u);
  EXPECT_EQ(back.nodes()[0].tactic, "cpu.gemm.blas");
  EXPECT_EQ(back.serialize(), s);
}

std::string temp_dir(const std::string& tag) {
  auto dir = std::filesystem::temp_directory_path() / ("kiln_plan_" + tag + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

size_t count_files(const std::string& dir) {
  size_t n = 0;
  for (const auto& ent : std::filesystem::directory_iterator(dir)) {
    (void)ent;
    ++n;
  }
  return n;
}

TEST(Plan, SaveAndLoadFile) {
  std::string dir = temp_dir("save");
  Engine eng(std::make_shared<detail::EngineImpl>(make_engine()));
  std::string path = util::join_path(dir, "engine.kiln");
  eng.save(path);
  EXPECT_EQ(count_files(dir), 1u);
  Engine back = Engine::load(path);
  EXPECT_EQ(back.serialize(), eng.serialize());
  // A corrupt file on disk names its path.
  std::string bytes = util::read_file(path);
  bytes.resize(bytes.size() / 2);
  util::write_file_atomic(path, bytes);
  expect_error([&] { Engine::load(path); }, ErrorCode::Integrity, {path, "truncated"});
  expect_error([&] { Engine::load(util::join_path(dir, "missing.kiln")); }, ErrorCode::Io, {"missing.kiln"});
  std::filesystem::remove_all(dir);
}

TEST(Plan, SaveToUnwritablePathIsIoAndLeavesNothing) {
  Engine eng(std::make_shared<detail::EngineImpl>(make_engine()));
  expect_error([&] { eng.save("/nonexistent-dir/x.kiln"); }, ErrorCode::Io, {"/nonexistent-dir/x.kiln"});
  EXPECT_FALSE(std::filesystem::exists("/nonexistent-dir"));
  // The target is a directory: the temp file is written next to it, then the rename fails.
  std::string dir = temp_dir("unwritable");
  std::string target = util::join_path(dir, "engine.kiln");
  std::filesystem::create_directories(target);
  expect_error([&] { eng.save(target); }, ErrorCode::Io, {target});
  EXPECT_EQ(count_files(dir), 1u);  // only the directory itself, no partial or temp file
  EXPECT_TRUE(std::filesystem::is_directory(target));
  // A previous good plan is untouched by a failed save.
  std::string good = util::join_path(dir, "good.kiln");
  eng.save(good);
  std::string before = util::read_file(good);
  Engine empty;
  EXPECT_THROW(empty.save(good), Error);
  EXPECT_EQ(util::read_file(good), before);
  std::filesystem::remove_all(dir);
}

}  // namespace kiln::test_plan_cpp
