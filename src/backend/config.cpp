// EngineBackendConfig: AITune's TensorRTBackendConfig dict, key and describe string.
#include <algorithm>
#include <sstream>

#include "backend/config_json.h"
#include "backend/profile_json.h"
#include "kiln/backend_config.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/sha256.h"

namespace kiln {

const char* profile_mode_value(ProfileMode m) { return m == ProfileMode::Single ? "single" : "samples_used"; }
const char* profile_mode_str(ProfileMode m) {
  return m == ProfileMode::Single ? "ProfileMode.SINGLE" : "ProfileMode.SAMPLES_USED";
}
ProfileMode profile_mode_from_value(const std::string& v) {
  if (v == "single") return ProfileMode::Single;
  if (v == "samples_used") return ProfileMode::SamplesUsed;
  KILN_THROW(InvalidArgument, backend::pyjson::repr_str(v) << " is not a valid ProfileMode (\"single\" or \"samples_used\")");
}

std::string quantization_type_name(const QuantizationConfig& q) {
  switch (q.index()) {
    case 1: return "ONNXAutoCastConfig";
    case 2: return "ONNXQuantizationConfig";
    case 3: return "TorchQuantizationConfig";
    default: return "";
  }
}

namespace backend {
namespace config_impl {

using pyjson::Json;

Json opt_int(const std::optional<int64_t>& v) { return v ? Json(*v) : Json(nullptr); }

Json quantization_to_json(const QuantizationConfig& q) {
  Json o = Json::object();
  if (const auto* a = std::get_if<AutoCastConfig>(&q)) {
    o["_type"] = "ONNXAutoCastConfig";
    o["precision"] = a->precision;
    o["keep_io_types"] = a->keep_io_types;
  } else if (const auto* p = std::get_if<OnnxQuantizationConfig>(&q)) {
    o["_type"] = "ONNXQuantizationConfig";
    o["precision"] = p->precision;
    o["calibration_method"] = p->calibration_method.empty() ? Json(nullptr) : Json(p->calibration_method);
    o["use_model_opt_post_processing"] = p->use_model_opt_post_processing;
  } else if (const auto* t = std::get_if<TorchQuantizationConfig>(&q)) {
    o["_type"] = "TorchQuantizationConfig";
    o["quantization_config"] = t->quantization_config;
    o["device"] = t->device;
  } else {
    return Json(nullptr);
  }
  return o;
}

// Python's repr() of the sub-config dataclass, e.g. "ONNXAutoCastConfig(precision='fp16', keep_io_types=True)".
std::string quantization_repr(const QuantizationConfig& q) {
  auto b = [](bool v) { return v ? "True" : "False"; };
  std::ostringstream os;
  if (const auto* a = std::get_if<AutoCastConfig>(&q)) {
    os << "ONNXAutoCastConfig(precision=" << pyjson::repr_str(a->precision) << ", keep_io_types=" << b(a->keep_io_types)
       << ")";
  } else if (const auto* p = std::get_if<OnnxQuantizationConfig>(&q)) {
    os << "ONNXQuantizationConfig(precision=" << pyjson::repr_str(p->precision) << ", calibration_method="
       << (p->calibration_method.empty() ? "None" : pyjson::repr_str(p->calibration_method))
       << ", use_model_opt_post_processing=" << b(p->use_model_opt_post_processing) << ")";
  } else if (const auto* t = std::get_if<TorchQuantizationConfig>(&q)) {
    os << "TorchQuantizationConfig(quantization_config=" << pyjson::repr_str(t->quantization_config)
       << ", device=" << pyjson::repr_str(t->device) << ")";
  } else {
    os << "None";
  }
  return os.str();
}

// Typed field readers: InvalidArgument naming the field and what was found.
bool get_bool(const Json& v, const std::string& what) {
  if (!v.is_boolean()) KILN_THROW(InvalidArgument, what << " must be true or false, got " << v.dump());
  return v.get<bool>();
}
std::optional<int64_t> get_opt_int(const Json& v, const std::string& what) {
  if (v.is_null()) return std::nullopt;
  if (!v.is_number_integer()) KILN_THROW(InvalidArgument, what << " must be an integer or null, got " << v.dump());
  return v.get<int64_t>();
}
std::string get_str(const Json& v, const std::string& what) {
  if (!v.is_string()) KILN_THROW(InvalidArgument, what << " must be a string, got " << v.dump());
  return v.get<std::string>();
}

QuantizationConfig quantization_from_json(const Json& j, const std::string& what) {
  if (j.is_null()) return std::monostate{};
  if (!j.is_object()) KILN_THROW(InvalidArgument, what << ": quantization_config must be an object or null, got " << j.dump());
  auto t = j.find("_type");
  if (t == j.end() || !t->is_string())
    KILN_THROW(InvalidArgument, what << ": quantization_config needs a string \"_type\", got " << j.dump());
  const std::string type = t->get<std::string>();
  auto fields_ok = [&](std::initializer_list<const char*> known) {
    for (const auto& item : j.items()) {
      const std::string k = item.key();  // (not a structured binding: clang 14 cannot capture those)
      if (k == "_type") continue;
      if (std::none_of(known.begin(), known.end(), [&](const char* n) { return k == n; }))
        KILN_THROW(InvalidArgument, what << ": " << type << " has no field '" << k << "'");
    }
  };
  const std::string w = what + ": quantization_config." ;
  if (type == "ONNXAutoCastConfig") {
    fields_ok({"precision", "keep_io_types"});
    AutoCastConfig a;
    if (j.contains("precision")) a.precision = get_str(j["precision"], w + "precision");
    if (j.contains("keep_io_types")) a.keep_io_types = get_bool(j["keep_io_types"], w + "keep_io_types");
    return a;
  }
  if (type == "ONNXQuantizationConfig") {
    fields_ok({"precision", "calibration_method", "use_model_opt_post_processing"});
    OnnxQuantizationConfig q;
    if (!j.contains("precision")) KILN_THROW(InvalidArgument, what << ": ONNXQuantizationConfig needs 'precision'");
    q.precision = get_str(j["precision"], w + "precision");
    if (j.contains("calibration_method") && !j["calibration_method"].is_null())
      q.calibration_method = get_str(j["calibration_method"], w + "calibration_method");
    if (j.contains("use_model_opt_post_processing"))
      q.use_model_opt_post_processing = get_bool(j["use_model_opt_post_processing"], w + "use_model_opt_post_processing");
    return q;
  }
  if (type == "TorchQuantizationConfig") {
    fields_ok({"quantization_config", "device"});
    TorchQuantizationConfig q;
    if (j.contains("quantization_config")) q.quantization_config = get_str(j["quantization_config"], w + "quantization_config");
    if (j.contains("device")) q.device = get_str(j["device"], w + "device");
    return q;
  }
  KILN_THROW(InvalidArgument, "Unknown quantization_config type: " << type);
}

}  // namespace config_impl

pyjson::Json config_to_json(const EngineBackendConfig& c) {
  using config_impl::opt_int;
  using pyjson::Json;
  Json o = Json::object();
  o["use_dynamo"] = c.use_dynamo;
  o["workspace_size"] = opt_int(c.workspace_size);
  o["opset_version"] = opt_int(c.opset_version);
  o["optimization_level"] = opt_int(c.optimization_level);
  o["compatibility_level"] = opt_int(c.compatibility_level);
  o["timing_cache"] = c.timing_cache.empty() ? Json(nullptr) : Json(c.timing_cache);
  if (const auto* m = std::get_if<ProfileMode>(&c.profiles))
    o["profiles"] = profile_mode_value(*m);
  else
    o["profiles"] = profiles_to_json(std::get<std::vector<Profile>>(c.profiles));
  o["device"] = c.device;
  o["quantization_config"] = config_impl::quantization_to_json(c.quantization_config);
  o["enable_tf32"] = c.enable_tf32;
  o["use_cuda_graphs"] = c.use_cuda_graphs;
  return o;
}

EngineBackendConfig config_from_json(const pyjson::Json& j, const std::string& what) {
  using namespace config_impl;
  if (!j.is_object()) KILN_THROW(InvalidArgument, what << ": expected a JSON object, got " << j.dump());
  EngineBackendConfig c;
  for (const auto& [k, v] : j.items()) {
    const std::string f = what + ": " + k;
    if (k == "use_dynamo") c.use_dynamo = get_bool(v, f);
    else if (k == "workspace_size") c.workspace_size = get_opt_int(v, f);
    else if (k == "opset_version") c.opset_version = get_opt_int(v, f);
    else if (k == "optimization_level") c.optimization_level = get_opt_int(v, f);
    else if (k == "compatibility_level") c.compatibility_level = get_opt_int(v, f);
    else if (k == "timing_cache") c.timing_cache = v.is_null() ? std::string() : get_str(v, f);
    else if (k == "profiles") {
      if (v.is_string()) c.profiles = profile_mode_from_value(v.get<std::string>());
      else if (v.is_array()) c.profiles = profiles_from_json(v, f);
      else KILN_THROW(InvalidArgument, f << " must be \"single\", \"samples_used\" or a list of profiles, got " << v.dump());
    } else if (k == "device") c.device = get_str(v, f);
    else if (k == "quantization_config") c.quantization_config = quantization_from_json(v, what);
    else if (k == "enable_tf32") c.enable_tf32 = get_bool(v, f);
    else if (k == "use_cuda_graphs") c.use_cuda_graphs = get_bool(v, f);
    else KILN_THROW(InvalidArgument, what << ": unknown EngineBackendConfig field '" << k << "'");
  }
  c.validate();
  return c;
}

}  // namespace backend

std::string EngineBackendConfig::to_dict() const { return backend::pyjson::dumps(backend::config_to_json(*this)); }

EngineBackendConfig EngineBackendConfig::from_dict(const std::string& json) {
  return backend::config_from_json(backend::pyjson::parse(json, "EngineBackendConfig"), "EngineBackendConfig");
}

void EngineBackendConfig::to_json(const std::string& path) const {
  util::write_file_atomic(path, backend::pyjson::dumps(backend::config_to_json(*this), 2));
}

std::string EngineBackendConfig::key() const { return util::sha256_hex(to_dict()); }

std::string EngineBackendConfig::describe() const {
  const EngineBackendConfig d;
  std::vector<std::string> changed;
  auto b = [](bool v) { return std::string(v ? "True" : "False"); };
  auto oi = [](const std::optional<int64_t>& v) { return v ? std::to_string(*v) : std::string("None"); };
  if (use_dynamo != d.use_dynamo) changed.push_back("use_dynamo=" + b(use_dynamo));
  if (workspace_size != d.workspace_size) changed.push_back("workspace_size=" + oi(workspace_size));
  if (opset_version != d.opset_version) changed.push_back("opset_version=" + oi(opset_version));
  if (optimization_level != d.optimization_level) changed.push_back("optimization_level=" + oi(optimization_level));
  if (compatibility_level != d.compatibility_level) changed.push_back("compatibility_level=" + oi(compatibility_level));
  if (timing_cache != d.timing_cache) changed.push_back("timing_cache=" + timing_cache);
  if (!(profiles == d.profiles)) {
    if (const auto* m = std::get_if<ProfileMode>(&profiles)) {
      changed.push_back(std::string("profiles=") + profile_mode_str(*m));
    } else {
      // Python's str() of the list: each profile as its dict, in Python literal syntax.
      std::string s = "[";
      const auto& list = std::get<std::vector<Profile>>(profiles);
      for (size_t i = 0; i < list.size(); ++i) {
        std::string dict = "{";
        bool first = true;
        for (const auto& name : list[i].input_names()) {
          const ShapeRange& r = list[i].at(name);
          auto tup = [](const Shape& sh) {
            std::string t = "(";
            for (size_t k = 0; k < sh.size(); ++k) t += (k ? ", " : "") + std::to_string(sh[k]);
            return t + (sh.size() == 1 ? ",)" : ")");
          };
          dict += (first ? "" : ", ") + backend::pyjson::repr_str(name) + ": [" + tup(r.min) + ", " + tup(r.opt) + ", " +
                  tup(r.max) + "]";
          first = false;
        }
        s += (i ? ", " : "") + dict + "}";
      }
      changed.push_back("profiles=" + s + "]");
    }
  }
  if (device != d.device) changed.push_back("device=" + device);
  if (quantization_config != d.quantization_config)
    changed.push_back("quantization_config=" + backend::config_impl::quantization_repr(quantization_config));
  if (enable_tf32 != d.enable_tf32) changed.push_back("enable_tf32=" + b(enable_tf32));
  if (use_cuda_graphs != d.use_cuda_graphs) changed.push_back("use_cuda_graphs=" + b(use_cuda_graphs));
  std::string out;
  for (size_t i = 0; i < changed.size(); ++i) out += (i ? "," : "") + changed[i];
  return out;
}

void EngineBackendConfig::validate() const {
  if (const auto* a = std::get_if<AutoCastConfig>(&quantization_config))
    if (a->precision != "fp16" && a->precision != "bf16")
      KILN_THROW(InvalidArgument, "Unsupported autocast precision: " << a->precision << " (fp16 or bf16)");
  if (const auto* q = std::get_if<OnnxQuantizationConfig>(&quantization_config)) {
    if (q->precision != "int8" && q->precision != "int4" && q->precision != "fp8")
      KILN_THROW(InvalidArgument, "Unsupported precision: " << q->precision << " (int8, int4 or fp8)");
    static const char* kMethods[] = {"max", "entropy", "awq_clip", "awq_lite", "awq_full", "rtn_dq"};
    if (!q->calibration_method.empty() &&
        std::none_of(std::begin(kMethods), std::end(kMethods), [&](const char* m) { return q->calibration_method == m; }))
      KILN_THROW(InvalidArgument, "Unsupported calibration_method: " << q->calibration_method);
  }
  if (const auto* t = std::get_if<TorchQuantizationConfig>(&quantization_config)) {
    static const char* kPresets[] = {"NVFP4_DEFAULT_CFG", "NVFP4_FP8_MHA_CONFIG", "FP8_DEFAULT_CFG",
                                     "INT8_DEFAULT_CFG",  "INT8_SMOOTHQUANT_CFG", "INT4_AWQ_CFG"};
    if (std::none_of(std::begin(kPresets), std::end(kPresets), [&](const char* p) { return t->quantization_config == p; }))
      KILN_THROW(InvalidArgument, "Unsupported quantization_config: " << t->quantization_config);
  }
  if (workspace_size && *workspace_size < 0)
    KILN_THROW(InvalidArgument, "workspace_size must be >= 0 bytes, got " << *workspace_size);
  if (opset_version && *opset_version <= 0)
    KILN_THROW(InvalidArgument, "opset_version must be positive, got " << *opset_version);
  if (optimization_level && (*optimization_level < 0 || *optimization_level > 5))
    KILN_THROW(InvalidArgument, "optimization_level must be 0..5, got " << *optimization_level);
  if (compatibility_level && *compatibility_level < 0)
    KILN_THROW(InvalidArgument, "compatibility_level must be >= 0, got " << *compatibility_level);
}

bool EngineBackendConfig::operator==(const EngineBackendConfig& o) const {
  return use_dynamo == o.use_dynamo && workspace_size == o.workspace_size && opset_version == o.opset_version &&
         optimization_level == o.optimization_level && compatibility_level == o.compatibility_level &&
         timing_cache == o.timing_cache && profiles == o.profiles && device == o.device &&
         quantization_config == o.quantization_config && enable_tf32 == o.enable_tf32 &&
         use_cuda_graphs == o.use_cuda_graphs;
}

}  // namespace kiln
