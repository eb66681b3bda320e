#include "onnx/importer.h"

#include "util/error.h"

namespace kiln::onnx_import {
ImportedModel import_model_bytes(const std::string&, const std::string&) { KILN_THROW(Unsupported, "importer: not yet implemented"); }
ImportedModel import_model_file(const std::string& path) { KILN_THROW(Unsupported, "importer: not yet implemented: " << path); }
}  // namespace kiln::onnx_import
