// kiln::Model: a thin public face over the importer's result.
#include <filesystem>
#include <sstream>

#include "kiln/model.h"
#include "onnx/model_impl.h"

namespace kiln {

bool TensorInfo::is_static() const {
  for (const Dim& d : dims)
    if (!d.is_static()) return false;
  return true;
}

std::string TensorInfo::str() const {
  std::ostringstream os;
  os << dtype_name(dtype) << "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i) os << ",";
    if (dims[i].is_static()) os << dims[i].value;
    else os << (dims[i].symbol.empty() ? "?" : dims[i].symbol);
  }
  os << "]";
  return os.str();
}

Model Model::load(const std::string& path) {
  auto impl = std::make_shared<detail::ModelImpl>();
  impl->m = onnx_import::import_model_file(path);
  std::error_code ec;
  impl->source_path = std::filesystem::absolute(path, ec).string();
  return Model(std::move(impl));
}

Model Model::from_bytes(const std::string& bytes, const std::string& base_dir) {
  auto impl = std::make_shared<detail::ModelImpl>();
  impl->m = onnx_import::import_model_bytes(bytes, base_dir);
  impl->source_bytes = std::make_shared<const std::string>(bytes);
  return Model(std::move(impl));
}

const std::vector<TensorInfo>& Model::inputs() const { return impl_->m.inputs; }
const std::vector<TensorInfo>& Model::outputs() const { return impl_->m.outputs; }
int64_t Model::ir_version() const { return impl_->m.ir_version; }
int64_t Model::opset() const { return impl_->m.opset; }
std::string Model::producer() const { return impl_->m.producer; }
size_t Model::node_count() const { return impl_->m.graph.nodes.size(); }
std::map<std::string, size_t> Model::op_counts() const {
  std::map<std::string, size_t> c;
  for (const auto& n : impl_->m.graph.nodes) c[n.op_type]++;
  return c;
}
const std::string& Model::content_hash() const { return impl_->m.content_hash; }

}  // namespace kiln
