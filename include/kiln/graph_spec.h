// kiln — GraphSpec: what the backend knows about one graph's tensors before it builds (AITune's GraphSpec):
// inputs and outputs with names, dtypes, the min / max size seen per axis, which axes are dynamic (batch or other),
// and optional declared ranges of named dimensions. Samples are named host tensors.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kiln/engine.h"
#include "kiln/model.h"

namespace kiln {

// One recorded call: input name -> host tensor (from .npy / TensorProto files or made in code).
using Sample = TensorMap;

enum class AxisKind {
  Static,   // fixed by the model
  Batch,    // dynamic axis 0 that follows the samples' batch size
  Dynamic,  // any other dynamic axis
};
const char* axis_kind_name(AxisKind k);  // "static", "batch", "dynamic"

struct TensorSpec {
  std::string name;
  DType dtype = DType::Float32;
  Shape min_shape, max_shape;     // per axis over the samples; -1 where nothing is known
  std::vector<AxisKind> axes;     // per axis
  std::vector<std::string> dims;  // per axis: the dimension's name (ONNX symbol, else "<tensor>:<axis>"; "" if static)
  bool operator==(const TensorSpec&) const = default;
};

// A declared range of a named dimension (AITune's DynamicDim / BatchDim): every axis with this name gets
// (min, opt or max, max) in a Single profile. min < max strictly, both positive, min <= opt <= max.
struct DynamicDim {
  std::string name;
  int64_t min = 1;
  std::optional<int64_t> opt;
  int64_t max = 1;
  bool operator==(const DynamicDim&) const = default;
};

struct GraphSpec {
  std::string name = "0";
  std::vector<TensorSpec> inputs;
  std::vector<TensorSpec> outputs;
  std::vector<DynamicDim> dynamic_dims;

  // Inputs and outputs from the model's declarations, min / max per axis from the samples (outputs by shape
  // inference per sample). Every sample must give exactly the model's inputs with their dtypes, ranks and fixed
  // dims (InvalidArgument naming the sample and input); inputs with an initializer default may be left out (the
  // default fills them in, here and in EngineBackend::build). No samples: dynamic axes stay unknown (-1).
  static GraphSpec from_model(const Model& model, const std::vector<Sample>& samples);
  // Declares a range for the dimension `name` (validated: InvalidArgument). Chainable.
  GraphSpec& declare_dim(const std::string& name, int64_t min, int64_t max, std::optional<int64_t> opt = std::nullopt);
  const TensorSpec* input(const std::string& name) const;
  const DynamicDim* declared(const std::string& dim_name) const;
  bool has_dynamic_axes() const;

  // {"type": "GraphSpec", "name", "input_spec", "output_spec", "dynamic_shapes"} as JSON text.
  std::string to_dict() const;
  static GraphSpec from_dict(const std::string& json);
  bool operator==(const GraphSpec&) const = default;
};

}  // namespace kiln
