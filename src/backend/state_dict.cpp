#include "backend/state_dict.h"

#include <filesystem>

#include "backend/config_json.h"
#include "util/error.h"
#include "util/log.h"

namespace kiln {
namespace backend {
namespace state_dict_impl {

std::string rel_or_abs(const std::string& path, const std::string& dir, bool relative) {
  if (!relative) return path;
  return std::filesystem::path(path).lexically_relative(dir).string();
}

pyjson::Json outputs_to_json(const std::vector<TensorInfo>& outs) {
  pyjson::Json a = pyjson::Json::array();
  for (const auto& o : outs) {
    pyjson::Json dims = pyjson::Json::array(), syms = pyjson::Json::array();
    for (const auto& d : o.dims) {
      dims.push_back(d.value);
      syms.push_back(d.symbol);
    }
    a.push_back({{"name", o.name}, {"dtype", dtype_name(o.dtype)}, {"shape", dims}, {"dim_names", syms}});
  }
  return a;
}

std::vector<TensorInfo> outputs_from_json(const pyjson::Json& j) {
  if (!j.is_array()) KILN_THROW(InvalidArgument, "backend state: output_object must be a list");
  std::vector<TensorInfo> outs;
  for (const auto& o : j) {
    if (!o.is_object() || !o.contains("name") || !o["name"].is_string() || !o.contains("dtype") || !o["dtype"].is_string() ||
        !o.contains("shape") || !o["shape"].is_array())
      KILN_THROW(InvalidArgument, "backend state: bad output_object entry " << o.dump());
    TensorInfo ti;
    ti.name = o["name"].get<std::string>();
    auto dt = dtype_from_name(o["dtype"].get<std::string>());
    if (!dt) KILN_THROW(InvalidArgument, "backend state: output '" << ti.name << "' has an unknown dtype");
    ti.dtype = *dt;
    const pyjson::Json syms = o.value("dim_names", pyjson::Json::array());
    for (size_t k = 0; k < o["shape"].size(); ++k) {
      if (!o["shape"][k].is_number_integer()) KILN_THROW(InvalidArgument, "backend state: output '" << ti.name << "' has a bad shape");
      Dim d{o["shape"][k].get<int64_t>(), ""};
      if (k < syms.size() && syms[k].is_string()) d.symbol = syms[k].get<std::string>();
      ti.dims.push_back(d);
    }
    outs.push_back(ti);
  }
  return outs;
}

std::string path_field(const pyjson::Json& j, const char* key, const std::string& base_dir) {
  if (!j.contains(key) || !j[key].is_string() || j[key].get<std::string>().empty())
    KILN_THROW(InvalidArgument, "backend state: '" << key << "' must be a non-empty path");
  std::filesystem::path p(j[key].get<std::string>());
  if (p.is_relative()) p = std::filesystem::path(base_dir.empty() ? std::filesystem::current_path().string() : base_dir) / p;
  return p.lexically_normal().string();
}

}  // namespace state_dict_impl

pyjson::Json state_to_json(const EngineBackend::Impl& m, bool relative) {
  using namespace state_dict_impl;
  pyjson::Json o = pyjson::Json::object();
  o["type"] = "EngineBackend";
  o["engine_path"] = rel_or_abs(m.engine_path, m.artifact_dir, relative);
  o["optimization_profiles_path"] = rel_or_abs(m.profiles_path, m.artifact_dir, relative);
  o["output_object"] = outputs_to_json(m.outputs);
  o["graph_spec"] = pyjson::parse(m.spec.to_dict(), "graph spec");
  o["device"] = m.device;
  const pyjson::Json cfg = config_to_json(m.config);
  o["quantization_config"] = cfg["quantization_config"];
  o["config"] = cfg;
  o["use_cuda_graphs"] = m.config.use_cuda_graphs;
  o["engine_sha256"] = m.engine_sha256;
  return o;
}

void state_from_json(EngineBackend::Impl& m, const pyjson::Json& j, const std::string& base_dir) {
  using namespace state_dict_impl;
  if (!j.is_object() || j.value("type", "") != "EngineBackend")
    KILN_THROW(InvalidArgument, "backend state: expected an object with \"type\": \"EngineBackend\"");
  m.engine_path = path_field(j, "engine_path", base_dir);
  m.profiles_path = path_field(j, "optimization_profiles_path", base_dir);
  m.artifact_dir = std::filesystem::path(m.engine_path).parent_path().string();
  if (!j.contains("graph_spec")) KILN_THROW(InvalidArgument, "backend state: 'graph_spec' is missing");
  m.spec = GraphSpec::from_dict(pyjson::dumps(j["graph_spec"]));
  if (!j.contains("device") || !j["device"].is_string()) KILN_THROW(InvalidArgument, "backend state: 'device' must be a string");
  m.device = j["device"].get<std::string>();
  if (!j.contains("config")) KILN_THROW(InvalidArgument, "backend state: 'config' is missing");
  m.config = config_from_json(j["config"], "backend state config");
  m.outputs = outputs_from_json(j.value("output_object", pyjson::Json::array()));
  m.engine_sha256 = j.value("engine_sha256", "");
  if (m.config.use_cuda_graphs)
    KILN_INFO("CUDA graphs were enabled in the saved state; they are captured again on the first inference");
  m.state = BackendState::CheckpointLoaded;
}

}  // namespace backend

std::string EngineBackend::to_dict() const {
  if (!impl_) KILN_THROW(InvalidState, "EngineBackend was moved from");
  if (state() == BackendState::Init)
    KILN_THROW(InvalidState, "Cannot serialize backend " << name() << ", backend should be built first");
  return backend::pyjson::dumps(backend::state_to_json(*impl_, false));
}

EngineBackend EngineBackend::from_dict(const std::string& state_json, const std::string& base_dir) {
  EngineBackend b;
  std::string base = base_dir.empty() ? "" : std::filesystem::absolute(base_dir).lexically_normal().string();
  backend::state_from_json(*b.impl_, backend::pyjson::parse(state_json, "backend state"), base);
  return b;
}

}  // namespace kiln
