#pragma once
#include "onnx/importer.h"

namespace kiln::detail {
struct ModelImpl {
  onnx_import::ImportedModel m;
};
}  // namespace kiln::detail
