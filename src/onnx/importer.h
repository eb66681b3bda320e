// ONNX ModelProto -> kiln IR. Never executes anything.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "kiln/model.h"

namespace kiln::onnx_import {

struct ImportedModel {
  ir::Graph graph;                    // model-local functions inlined, Constant nodes turned into initializers
  // Runtime inputs. A graph input that is also an initializer is not listed: for IR < 4 it is a constant; for
  // IR >= 4 ONNX makes it overridable with the initializer as default, which kiln does not expose yet, so it
  // stays a constant (graph.initializers) too.
  std::vector<TensorInfo> inputs;
  std::vector<TensorInfo> outputs;
  int64_t ir_version = 0;
  int64_t opset = 0;                  // default domain
  std::map<std::string, int64_t> opsets;  // domain -> version
  std::string producer;               // "pytorch 2.11"
  std::string content_hash;           // sha256 of model bytes and external data
};

// Parses and converts. Errors: InvalidModel (malformed, dangling values, cycles), Unsupported (one error
// listing every node the op registry lacks, one line each: "name (op, domain, opset N)"; also unsupported
// dtypes / attribute kinds), Io (external data file missing or short), InvalidArgument (external data
// without a base_dir). The graph is topologically sorted; subgraphs keep their ONNX order.
ImportedModel import_model_bytes(const std::string& bytes, const std::string& base_dir);
ImportedModel import_model_file(const std::string& path);

}  // namespace kiln::onnx_import
