// Registry coverage for the simple ops of the "Operator coverage" issue (part 1): each op is registered from its
// first ONNX since_version with inference and a reference kernel, absent below it, and its inference survives
// unknown ranks and dims with nothing but kiln::Error.
#include "test_ops_cases.h"

namespace kiln::test_ops {
namespace {

struct Since {
  const char* op;
  int64_t first;  // first opset kiln implements
};

const Since kOps[] = {
    {"Ceil", 6},
    {"Floor", 6},
    {"Cos", 7},
    {"Sin", 7},
    {"Reciprocal", 6},
    {"Sign", 9},
    {"Not", 1},
    {"Elu", 6},
    {"HardSigmoid", 6},
    {"HardSwish", 14},
    {"Mish", 18},
    {"Softplus", 1},
    {"Gelu", 20},
    {"Dropout", 7},
    {"And", 7},
    {"Or", 7},
    {"Xor", 7},
    {"Mod", 10},
    {"GreaterOrEqual", 12},
    {"LessOrEqual", 12},
    {"PRelu", 7},
    {"Max", 8},
    {"Min", 8},
    {"Mean", 8},
    {"Sum", 8},
    {"CastLike", 15},
    {"ReduceMax", 1},
    {"ReduceMin", 1},
    {"ReduceProd", 1},
    {"ReduceL2", 1},
    {"ReduceSumSquare", 1},
    {"ArgMax", 1},
    {"ArgMin", 1},
    {"CumSum", 11},
    {"LayerNormalization", 17},
    {"GroupNormalization", 18},
    {"InstanceNormalization", 6},
    {"RMSNormalization", 23},
    {"LogSoftmax", 1},
    {"Size", 1},
    {"Split", 2},
    {"Tile", 6},
    {"GatherElements", 11},
};

TEST(OpsCoverageSimple, RegisteredFromFirstSinceVersion) {
  ir::register_all_ops();
  auto& reg = ir::OpRegistry::instance();
  for (const Since& s : kOps) {
    SCOPED_TRACE(s.op);
    for (int64_t opset : {s.first, std::max<int64_t>(s.first, 13), int64_t(23)}) {
      const ir::OpDef* d = reg.find("", s.op, opset);
      ASSERT_NE(d, nullptr) << "opset " << opset;
      EXPECT_TRUE(d->infer);
      EXPECT_TRUE(d->reference);
      EXPECT_EQ(d->since.front(), s.first);
    }
    if (s.first > 1) {
      EXPECT_EQ(reg.find("", s.op, s.first - 1), nullptr);
    }
  }
}

struct Probe {
  const char* op;
  int64_t opset;
  size_t n_in;
  DType dt;
  Attrs attrs;
  size_t n_out = 1;
};

std::vector<Probe> probes() {
  const DType f = DType::Float32, i = DType::Int64, b = DType::Bool;
  return {
      {"Ceil", 13, 1, f, {}},
      {"Sign", 13, 1, i, {}},
      {"Not", 1, 1, b, {}},
      {"Elu", 6, 1, f, {}},
      {"HardSigmoid", 6, 1, f, {}},
      {"HardSwish", 14, 1, f, {}},
      {"Mish", 18, 1, f, {}},
      {"Softplus", 1, 1, f, {}},
      {"Gelu", 20, 1, f, {}},
      {"Dropout", 13, 1, f, {}, 2},
      {"And", 7, 2, b, {}},
      {"Mod", 13, 2, i, {}},
      {"GreaterOrEqual", 16, 2, f, {}},
      {"PRelu", 16, 2, f, {}},
      {"Max", 13, 3, f, {}},
      {"Mean", 13, 2, f, {}},
      {"Sum", 13, 3, f, {}},
      {"CastLike", 15, 2, f, {}},
      {"ReduceMax", 18, 2, i, {}},
      {"ReduceProd", 13, 1, f, {{"axes", Ints{1}}}},
      {"ReduceL2", 18, 1, f, {}},
      {"ArgMax", 13, 1, f, {{"axis", int64_t(1)}}},
      {"CumSum", 14, 2, i, {}},
      {"LayerNormalization", 17, 3, f, {}, 3},
      {"GroupNormalization", 21, 3, f, {{"num_groups", int64_t(1)}}},
      {"InstanceNormalization", 6, 3, f, {}},
      {"RMSNormalization", 23, 2, f, {}},
      {"LogSoftmax", 13, 1, f, {}},
      {"Size", 13, 1, f, {}},
      {"Split", 13, 2, i, {}, 2},
      {"Split", 18, 1, f, {{"num_outputs", int64_t(2)}}, 2},
      {"Tile", 13, 2, i, {}},
      {"GatherElements", 13, 2, i, {}},
  };
}

TEST(OpsCoverageSimple, UnknownRanksAndDimsNeverCrash) {
  for (const Probe& p : probes())
    for (int variant = 0; variant < 3; ++variant) {
      SCOPED_TRACE(std::string(p.op) + " opset " + std::to_string(p.opset) + " variant " + std::to_string(variant));
      std::vector<TIn> ins;
      for (size_t k = 0; k < p.n_in; ++k) {
        if (variant == 0)
          ins.push_back(TUnknownRank(p.dt));
        else if (variant == 1)
          ins.push_back(TV(p.dt, {U(), U(), U(), U()}));
        else
          ins.push_back(TV(p.dt, {S("a"), U(), S("b"), U()}));
      }
      try {
        auto types = infer_op(p.op, p.opset, ins, p.attrs, p.n_out);
        EXPECT_EQ(types.size(), p.n_out);
        if (variant > 0) {
          EXPECT_TRUE(types[0].has_rank);
        }
      } catch (const Error& e) {
        EXPECT_NE(variant, 0) << e.what();
        EXPECT_EQ(e.code(), ErrorCode::InvalidModel) << e.what();
      }
    }
}

}  // namespace
}  // namespace kiln::test_ops
