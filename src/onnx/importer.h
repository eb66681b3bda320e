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
  std::vector<TensorInfo> inputs;     // runtime inputs (initializer-backed inputs of IR >= 4 included)
  std::vector<TensorInfo> outputs;
  int64_t ir_version = 0;
  int64_t opset = 0;                  // default domain
  std::map<std::string, int64_t> opsets;  // domain -> version
  std::string producer;               // "pytorch 2.11"
  std::string content_hash;           // sha256 of model bytes and external data
};

// Parses and converts. Errors: InvalidModel (malformed), Unsupported (lists every unsupported node
// with name, op and opset), Io (external data).
ImportedModel import_model_bytes(const std::string& bytes, const std::string& base_dir);
ImportedModel import_model_file(const std::string& path);

}  // namespace kiln::onnx_import
