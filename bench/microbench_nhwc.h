// The channels-last cases of kiln_cuda_microbench (cuda_microbench.cu, section 4 of its header comment): kiln.Pool
// MaxPool 3x3/2 pad 1 on ResNet-50's stem [128, 112, 112, 64] NHWC, and the image entry [128, 3, 224, 224] -> NHWC
// padded to 8 and to 4 channels, as the Transpose + Pad pair and as one kiln.ToNhwc. Typed one- or two-node graphs.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/op_registry.h"
#include "kiln/tensor.h"

namespace kiln_bench {

struct NhwcGraph {
  std::string label;
  kiln::DType dt;
  kiln::ir::Graph g;
  std::string note;  // appended to the tactic column
};

inline kiln::ir::Node nhwc_bench_node(const std::string& name, const std::string& domain, const std::string& op,
                                      int64_t opset, std::vector<std::string> ins, std::string out,
                                      std::map<std::string, kiln::ir::Attr> attrs) {
  kiln::ir::Node n;
  n.name = name, n.domain = domain, n.op_type = op, n.opset = opset;
  n.inputs = std::move(ins), n.outputs = {std::move(out)}, n.attrs = std::move(attrs);
  return n;
}

inline std::vector<NhwcGraph> nhwc_graphs() {
  using kiln::DType;
  using kiln::ir::Attr;
  auto ints = [](std::vector<int64_t> v) { return Attr{std::move(v)}; };
  std::vector<NhwcGraph> v;
  for (DType dt : {DType::Float32, DType::Float16}) {
    kiln::ir::Graph pool;
    pool.inputs = {"x"}, pool.outputs = {"y"};
    pool.types["x"] = kiln::ir::ValueType::of(dt, {128, 112, 112, 64});
    pool.nodes.push_back(nhwc_bench_node(
        "kpool", "kiln", "Pool", 1, {"x"}, "y",
        {{"kernel_shape", ints({3, 3})}, {"strides", ints({2, 2})}, {"pads", ints({1, 1, 1, 1})},
         {"layout", std::string("NHWC")}, {"op", std::string("MaxPool")}, {"onnx_opset", int64_t(12)}}));
    v.push_back({"kiln.Pool MaxPool 3x3/2 pad 1 NHWC [128,112,112,64]", dt, pool, " (kiln.Pool)"});
    for (int64_t to : {8, 4}) {
      const std::string what = "Entry [128,3,224,224] -> NHWC, C 3 -> " + std::to_string(to);
      kiln::ir::Graph pair;
      pair.inputs = {"x"}, pair.outputs = {"y"};
      pair.types["x"] = kiln::ir::ValueType::of(dt, {128, 3, 224, 224});
      kiln::ir::Graph fused = pair;
      pair.nodes.push_back(nhwc_bench_node("transpose", "", "Transpose", 13, {"x"}, "t", {{"perm", ints({0, 2, 3, 1})}}));
      pair.initializers["pads"] = kiln::Tensor::from_vector<int64_t>(DType::Int64, {8}, {0, 0, 0, 0, 0, 0, 0, to - 3});
      pair.nodes.push_back(nhwc_bench_node("pad", "", "Pad", 13, {"t", "pads"}, "y", {}));
      v.push_back({what + ", Transpose + Pad", dt, pair, ""});
      fused.nodes.push_back(nhwc_bench_node("entry", "kiln", "ToNhwc", 1, {"x"}, "y", {{"channels", to}}));
      v.push_back({what + ", fused", dt, fused, " (kiln.ToNhwc)"});
    }
  }
  for (auto& c : v) {
    c.g.name = "nhwc";
    kiln::ir::infer_types(c.g);
  }
  return v;
}

}  // namespace kiln_bench
