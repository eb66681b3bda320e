// ONNX ModelProto -> ImportedModel: parse, opsets, graph conversion (graph_import.cpp, functions.cpp,
// attributes.cpp, tensor_proto.cpp, external_data.cpp), structure checks, and one report of every node kiln
// cannot run.
#include "onnx/importer.h"

#include <algorithm>
#include <cstdint>
#include <sstream>

#include "ir/op_registry.h"
#include "onnx/import_impl.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/sha256.h"

namespace kiln::onnx_import {

namespace importer_impl {

constexpr size_t kMaxReportedNodes = 1000;

void collect_unsupported(const ir::Graph& g, const std::string& prefix, std::vector<std::string>& out,
                         size_t& total) {
  const auto& reg = ir::OpRegistry::instance();
  for (const auto& n : g.nodes) {
    if (!reg.find(n.domain, n.op_type, n.opset)) {
      ++total;
      if (out.size() < kMaxReportedNodes)
        out.push_back(prefix + n.name + " (" + n.op_type + ", " + (n.domain.empty() ? "ai.onnx" : n.domain) +
                      ", opset " + std::to_string(n.opset) + ")");
    }
    for (const auto& [k, a] : n.attrs)
      if (const ir::GraphPtr* sub = std::get_if<ir::GraphPtr>(&a))
        if (*sub) collect_unsupported(**sub, prefix + n.name + "/" + k + "/", out, total);
  }
}

void report_unsupported(const ir::Graph& g) {
  std::vector<std::string> lines;
  size_t total = 0;
  collect_unsupported(g, "", lines, total);
  if (total == 0) return;
  std::ostringstream os;
  os << "model has " << total << " node(s) kiln does not support:";
  for (const auto& l : lines) os << "\n  " << l;
  if (total > lines.size()) os << "\n  ... and " << total - lines.size() << " more";
  throw Error(ErrorCode::Unsupported, os.str());
}

}  // namespace importer_impl

ImportedModel import_model_bytes(const std::string& bytes, const std::string& base_dir) {
  ::onnx::ModelProto mp;
  if (bytes.size() > static_cast<size_t>(INT32_MAX))
    KILN_THROW(InvalidModel, "not an ONNX model: " << bytes.size()
                                                   << " bytes exceeds protobuf's 2 GiB limit (use external data)");
  if (!onnx_tensor::parse_message(mp, bytes.data(), bytes.size()))
    KILN_THROW(InvalidModel, "not an ONNX model: " << bytes.size()
                                                   << " bytes do not parse as a ModelProto (truncated or corrupt)");
  if (!mp.has_graph()) KILN_THROW(InvalidModel, "not an ONNX model: it has no graph");
  if (mp.ir_version() <= 0) KILN_THROW(InvalidModel, "not an ONNX model: ir_version is missing");

  ImportedModel out;
  out.ir_version = mp.ir_version();
  for (const auto& os : mp.opset_import()) {
    int64_t& v = out.opsets[normalize_domain(os.domain())];
    v = std::max(v, static_cast<int64_t>(os.version()));
  }
  if (out.opsets.empty() && mp.ir_version() < 3) out.opsets[""] = 1;  // before IR 3, opset 1 was implied
  out.opset = out.opsets.count("") ? out.opsets.at("") : 0;
  out.producer = mp.producer_name();
  if (!mp.producer_version().empty())
    out.producer += (out.producer.empty() ? "" : " ") + mp.producer_version();

  util::Sha256 hash;
  hash.update(bytes.data(), bytes.size());
  onnx_tensor::ExternalData ext{base_dir, &hash};
  {
    Importer imp(mp, ext, out.opsets);
    imp.import_main(out.graph, out.inputs, out.outputs);
  }
  out.graph.topo_sort();  // InvalidModel on dangling inputs and cycles

  ir::register_all_ops();
  importer_impl::report_unsupported(out.graph);
  out.content_hash = hash.hex();
  return out;
}

ImportedModel import_model_file(const std::string& path) {
  std::string bytes = util::read_file(path);
  try {
    return import_model_bytes(bytes, util::dirname_of(path));
  } catch (const Error& e) {
    throw Error(e.code(), "'" + path + "': " + e.what());
  }
}

}  // namespace kiln::onnx_import
