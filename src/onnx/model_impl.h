#pragma once
#include <memory>
#include <string>

#include "onnx/importer.h"

namespace kiln::detail {
struct ModelImpl {
  onnx_import::ImportedModel m;
  // Where the model came from, so it can be copied next to a built engine (the backend's cache_dir/model.onnx):
  // the file Model::load read (absolute path), or the bytes Model::from_bytes parsed.
  std::string source_path;
  std::shared_ptr<const std::string> source_bytes;
};
}  // namespace kiln::detail
