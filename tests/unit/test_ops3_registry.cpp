// Registry coverage of the ops3 ops across their since-versions, and inference robustness: unknown ranks and
// dims never crash, only kiln::Error escapes (InvalidModel where rank-4 inputs cannot fit the op).
#include "test_ops_util.h"

namespace kiln::test_ops {
namespace test_ops3_registry_cpp {

using Ints = std::vector<int64_t>;

struct Ops3Op {
  const char* op;
  std::vector<int64_t> opsets;  // every since_version >= 11 (and older ones kiln implements)
};

TEST(Ops3Registry, EverySinceVersionHasInferenceAndReferenceKernel) {
  ir::register_all_ops();
  const std::vector<Ops3Op> ops = {
      {"ConvTranspose", {1, 11, 22}}, {"Pad", {2, 11, 13, 18, 19, 21, 23, 24, 25}}, {"Resize", {11, 13, 18, 19}},
      {"DepthToSpace", {1, 11, 13}},  {"SpaceToDepth", {1, 13}},  {"Trilu", {14}},
      {"TopK", {1, 10, 11, 24}},      {"NonZero", {9, 13}},       {"GatherND", {11, 12, 13}},
      {"ScatterND", {11, 13, 16, 18}}, {"Einsum", {12}},          {"Attention", {23, 24, 25}},
      {"If", {1, 11, 13, 16, 19, 21, 23, 24, 25}}};
  auto& reg = ir::OpRegistry::instance();
  for (const auto& o : ops) {
    for (int64_t v : o.opsets) {
      const ir::OpDef* d = reg.find("", o.op, v);
      ASSERT_NE(d, nullptr) << o.op << " opset " << v;
      EXPECT_TRUE(d->infer && d->reference) << o.op;
      EXPECT_TRUE(std::find(d->since.begin(), d->since.end(), v) != d->since.end()) << o.op << " since " << v;
    }
    EXPECT_EQ(reg.find("", o.op, o.opsets.front() - 1), nullptr) << o.op;
  }
}

struct Probe {
  const char* op;
  int64_t opset;
  std::vector<DType> in;
  Attrs attrs;
  size_t n_out = 1;
};

TEST(Ops3Registry, UnknownRanksAndDimsNeverCrash) {
  const DType F = DType::Float32, I = DType::Int64;
  const std::vector<Probe> probes = {
      {"ConvTranspose", 11, {F, F, F}, {{"strides", Ints{2, 2}}}},
      {"Pad", 19, {F, I, F, I}, {{"mode", std::string("wrap")}}},
      {"Resize", 19, {F, F, F}, {{"mode", std::string("cubic")}}},
      {"Resize", 18, {F, F, F, I}, {{"mode", std::string("linear")}}},
      {"DepthToSpace", 13, {F}, {{"blocksize", int64_t(2)}}},
      {"SpaceToDepth", 13, {F}, {{"blocksize", int64_t(2)}}},
      {"Trilu", 14, {F, I}, {}},
      {"TopK", 11, {F, I}, {}, 2},
      {"NonZero", 13, {F}, {}},
      {"GatherND", 13, {F, I}, {{"batch_dims", int64_t(1)}}},
      {"ScatterND", 18, {F, I, F}, {{"reduction", std::string("max")}}},
      {"Einsum", 12, {F, F}, {{"equation", std::string("...ij,...jk->...ik")}}},
      {"Einsum", 12, {F, F}, {{"equation", std::string("abcd,abed->abce")}}},
      {"Attention", 23, {F, F, F, DType::Bool}, {{"is_causal", int64_t(1)}}, 4},
  };
  for (const Probe& p : probes)
    for (int variant = 0; variant < 3; ++variant) {
      SCOPED_TRACE(std::string(p.op) + " variant " + std::to_string(variant));
      std::vector<TIn> ins;
      for (DType dt : p.in) {
        if (variant == 0) ins.push_back(TUnknownRank(dt));
        else if (variant == 1) ins.push_back(TV(dt, {U(), U(), U(), U()}));
        else ins.push_back(TV(dt, {S("a"), U(), S("b"), U()}));
      }
      try {
        auto types = infer_op(p.op, p.opset, ins, p.attrs, p.n_out);
        EXPECT_EQ(types.size(), p.n_out);
      } catch (const Error& e) {
        EXPECT_NE(variant, 0) << e.what();
        EXPECT_EQ(e.code(), ErrorCode::InvalidModel) << e.what();
      }
    }
}

}  // namespace test_ops3_registry_cpp
}  // namespace kiln::test_ops
