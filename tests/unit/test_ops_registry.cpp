// Registry coverage and inference robustness across every op: unknown ranks / dims never crash, and
// only kiln::Error escapes.
#include <algorithm>

#include "test_ops_util.h"

namespace kiln::test_ops {
namespace {

using Ints = std::vector<int64_t>;

const char* const kOps[] = {"Conv",      "BatchNormalization", "Relu",      "MaxPool",   "AveragePool",
                            "GlobalAveragePool", "GlobalMaxPool", "Flatten",   "Gemm",      "MatMul",
                            "Reshape",   "Transpose",          "Concat",    "Shape",     "Gather",
                            "Unsqueeze", "Squeeze",            "Constant",  "Identity",  "Softmax",
                            "Cast",      "Add",                "Sub",       "Mul",       "Div",
                            "Pow",       "Sqrt",               "Exp",       "Log",       "Neg",
                            "Abs",       "Sigmoid",            "Tanh",      "Erf",       "Clip",
                            "LeakyRelu", "Equal",              "Less",      "Greater",   "Where",
                            "ReduceMean", "ReduceSum",         "Slice",     "Expand",    "ConstantOfShape",
                            "Range"};

TEST(OpsRegistry, EveryOpHasInferenceAndReferenceKernel) {
  ir::register_all_ops();
  auto& reg = ir::OpRegistry::instance();
  for (const char* op : kOps)
    for (int64_t opset : {11, 13, 17, 21}) {
      const ir::OpDef* d = reg.find("", op, opset);
      ASSERT_NE(d, nullptr) << op << " opset " << opset;
      EXPECT_TRUE(d->infer) << op;
      EXPECT_TRUE(d->reference) << op;
      EXPECT_NE(reg.find("ai.onnx", op, opset), nullptr) << op;
    }
  EXPECT_EQ(reg.find("", "Range", 10), nullptr);  // Range starts at opset 11
  EXPECT_FALSE(reg.known_op("", "NoSuchOp"));
}

TEST(OpsRegistry, RefusesAnOpsetReachingANewerOnnxVersionThanTheKernelImplements) {
  ir::register_all_ops();
  // A kernel registered for SpaceToDepth 1 and 13 only must not claim opset 28 (where mode=CRD was added).
  ir::OpRegistry r;
  r.add(ir::OpDef{"SpaceToDepth", "", {1, 13}, nullptr, nullptr});
  EXPECT_NE(r.find("", "SpaceToDepth", 13), nullptr);
  EXPECT_NE(r.find("", "SpaceToDepth", 27), nullptr);
  EXPECT_EQ(r.find("", "SpaceToDepth", 28), nullptr);
  EXPECT_EQ(r.find("ai.onnx", "SpaceToDepth", 30), nullptr);
  // The real registry implements 28; Range implements 27.
  auto& reg = ir::OpRegistry::instance();
  EXPECT_NE(reg.find("", "SpaceToDepth", 28), nullptr);
  EXPECT_NE(reg.find("", "Range", 27), nullptr);
  // Every listed since_version of an ai.onnx op is one ONNX defines.
  for (const ir::OpDef* d : reg.all()) {
    const std::vector<int>* onnx = ir::onnx_since_versions(d->domain, d->op_type);
    if (!onnx) continue;  // not an op of the pinned onnx (e.g. a kiln or contrib domain)
    for (int v : d->since)
      EXPECT_NE(std::find(onnx->begin(), onnx->end(), v), onnx->end()) << d->op_type << " since " << v;
  }
}

// Typical attributes and input count per op, so inference gets past attribute validation.
struct Probe {
  const char* op;
  size_t n_in;
  DType dt;
  Attrs attrs;
  size_t n_out = 1;
};

std::vector<Probe> probes() {
  return {
      {"Conv", 3, DType::Float32, {{"pads", Ints{1, 1, 1, 1}}}},
      {"BatchNormalization", 5, DType::Float32, {}},
      {"Relu", 1, DType::Float32, {}},
      {"MaxPool", 1, DType::Float32, {{"kernel_shape", Ints{2, 2}}}, 2},
      {"AveragePool", 1, DType::Float32, {{"kernel_shape", Ints{2, 2}}}},
      {"GlobalAveragePool", 1, DType::Float32, {}},
      {"GlobalMaxPool", 1, DType::Float32, {}},
      {"Flatten", 1, DType::Float32, {}},
      {"Gemm", 3, DType::Float32, {}},
      {"MatMul", 2, DType::Float32, {}},
      {"Reshape", 2, DType::Int64, {}},
      {"Transpose", 1, DType::Float32, {}},
      {"Concat", 3, DType::Float32, {{"axis", int64_t(1)}}},
      {"Shape", 1, DType::Float32, {}},
      {"Gather", 2, DType::Int64, {}},
      {"Unsqueeze", 2, DType::Int64, {}},
      {"Squeeze", 2, DType::Int64, {}},
      {"Identity", 1, DType::Float32, {}},
      {"Softmax", 1, DType::Float32, {}},
      {"Cast", 1, DType::Float32, {{"to", int64_t(7)}}},
      {"Add", 2, DType::Float32, {}},
      {"Pow", 2, DType::Float32, {}},
      {"Clip", 3, DType::Float32, {}},
      {"Equal", 2, DType::Int64, {}},
      {"Where", 3, DType::Bool, {}},
      {"ReduceMean", 1, DType::Float32, {}},
      {"ReduceSum", 2, DType::Int64, {}},
      {"Slice", 5, DType::Int64, {}},
      {"Expand", 2, DType::Int64, {}},
      {"ConstantOfShape", 1, DType::Int64, {}},
      {"Range", 3, DType::Int64, {}},
  };
}

TEST(OpsInference, UnknownRanksAndDimsNeverCrash) {
  for (const Probe& p : probes())
    for (int variant = 0; variant < 3; ++variant) {
      SCOPED_TRACE(std::string(p.op) + " variant " + std::to_string(variant));
      std::vector<TIn> ins;
      for (size_t i = 0; i < p.n_in; ++i) {
        // Where: bool condition, float branches; others: one dtype for all inputs.
        DType dt = std::string(p.op) == "Where" && i > 0 ? DType::Float32 : p.dt;
        if (variant == 0) ins.push_back(TUnknownRank(dt));
        else if (variant == 1) ins.push_back(TV(dt, {U(), U(), U(), U()}));
        else ins.push_back(TV(dt, {S("a"), U(), S("b"), U()}));
      }
      try {
        auto types = infer_op(p.op, 17, ins, p.attrs, p.n_out);
        EXPECT_EQ(types.size(), p.n_out);
      } catch (const Error& e) {
        // Unknown ranks must always infer; rank-4 everywhere may be rejected (e.g. a 1-D bias), but only as
        // InvalidModel.
        EXPECT_NE(variant, 0) << e.what();
        EXPECT_EQ(e.code(), ErrorCode::InvalidModel) << e.what();
      }
    }
}

}  // namespace
}  // namespace kiln::test_ops
