// GraphSpec: tensor specs from a model and samples, declared dimension ranges, and the spec's JSON.
#include "kiln/graph_spec.h"

#include <map>
#include <set>

#include "backend/profile_json.h"
#include "backend/python_json.h"
#include "backend/samples.h"
#include "ir/op_registry.h"
#include "onnx/model_impl.h"
#include "util/error.h"
#include "util/log.h"

namespace kiln {

const char* axis_kind_name(AxisKind k) {
  switch (k) {
    case AxisKind::Static: return "static";
    case AxisKind::Batch: return "batch";
    case AxisKind::Dynamic: return "dynamic";
  }
  return "?";
}

namespace backend::graph_spec_impl {

using pyjson::Json;

TensorSpec spec_of(const TensorInfo& ti) {
  TensorSpec t;
  t.name = ti.name;
  t.dtype = ti.dtype;
  for (size_t a = 0; a < ti.dims.size(); ++a) {
    const Dim& d = ti.dims[a];
    t.min_shape.push_back(d.is_static() ? d.value : -1);
    t.max_shape.push_back(d.is_static() ? d.value : -1);
    t.axes.push_back(d.is_static() ? AxisKind::Static : AxisKind::Dynamic);
    t.dims.push_back(d.is_static() ? "" : !d.symbol.empty() ? d.symbol : ti.name + ":" + std::to_string(a));
  }
  return t;
}

void widen(TensorSpec& t, const Shape& s) {
  for (size_t a = 0; a < s.size() && a < t.min_shape.size(); ++a) {
    if (t.axes[a] == AxisKind::Static) continue;
    t.min_shape[a] = t.min_shape[a] < 0 ? s[a] : std::min(t.min_shape[a], s[a]);
    t.max_shape[a] = t.max_shape[a] < 0 ? s[a] : std::max(t.max_shape[a], s[a]);
  }
}

void check_sample(const Sample& s, size_t idx, const std::vector<TensorInfo>& inputs) {
  for (const auto& [name, t] : s) {
    bool known = false;
    for (const auto& ti : inputs) known |= ti.name == name;
    if (!known) KILN_THROW(InvalidArgument, "sample " << idx << ": '" << name << "' is not an input of the model");
  }
  for (const auto& ti : inputs) {
    auto it = s.find(ti.name);
    if (it == s.end()) KILN_THROW(InvalidArgument, "sample " << idx << ": input '" << ti.name << "' (" << ti.str() << ") is missing");
    const Tensor& t = it->second;
    if (t.empty()) KILN_THROW(InvalidArgument, "sample " << idx << ": input '" << ti.name << "' is an empty tensor");
    if (t.dtype() != ti.dtype || t.rank() != static_cast<int64_t>(ti.dims.size()))
      KILN_THROW(InvalidArgument, "sample " << idx << ": input '" << ti.name << "' is " << t.type_str() << ", the model declares "
                                            << ti.str());
    for (size_t a = 0; a < ti.dims.size(); ++a)
      if (ti.dims[a].is_static() && ti.dims[a].value != t.shape()[a])
        KILN_THROW(InvalidArgument, "sample " << idx << ": input '" << ti.name << "' has shape " << shape_str(t.shape())
                                              << ", the model fixes axis " << a << " to " << ti.dims[a].value << " (" << ti.str()
                                              << ")");
  }
}

// Marks dynamic axis 0 of every tensor as Batch when it follows the samples' batch size: the axis-0 size of the
// first input whose axis 0 is dynamic. With no samples, dynamic axes 0 are taken as batch axes.
void classify(std::vector<TensorSpec>& ts, const std::vector<std::vector<Shape>>& shapes_per_sample,
              const std::vector<int64_t>& batch_per_sample) {
  for (size_t i = 0; i < ts.size(); ++i) {
    TensorSpec& t = ts[i];
    if (t.axes.empty() || t.axes[0] != AxisKind::Dynamic) continue;
    bool batch = true;
    for (size_t s = 0; s < shapes_per_sample.size(); ++s) {
      const Shape& sh = shapes_per_sample[s][i];
      if (batch_per_sample[s] < 0 || sh.empty() || sh[0] != batch_per_sample[s]) batch = false;
    }
    if (batch) t.axes[0] = AxisKind::Batch;
  }
}

Json tensor_to_json(const TensorSpec& t) {
  Json o = Json::object();
  o["name"] = t.name;
  o["dtype"] = dtype_name(t.dtype);
  o["min_shape"] = shape_to_json(t.min_shape);
  o["max_shape"] = shape_to_json(t.max_shape);
  Json axes = Json::array(), dims = Json::array();
  for (AxisKind k : t.axes) axes.push_back(axis_kind_name(k));
  for (const auto& d : t.dims) dims.push_back(d);
  o["axes"] = axes;
  o["dims"] = dims;
  return o;
}

TensorSpec tensor_from_json(const Json& j, const std::string& what) {
  if (!j.is_object()) KILN_THROW(InvalidArgument, what << ": expected an object");
  TensorSpec t;
  auto str = [&](const char* k) {
    if (!j.contains(k) || !j[k].is_string()) KILN_THROW(InvalidArgument, what << ": '" << k << "' must be a string");
    return j[k].get<std::string>();
  };
  t.name = str("name");
  auto dt = dtype_from_name(str("dtype"));
  if (!dt) KILN_THROW(InvalidArgument, what << ": unknown dtype '" << str("dtype") << "'");
  t.dtype = *dt;
  t.min_shape = shape_from_json(j.value("min_shape", Json()), what + ": min_shape");
  t.max_shape = shape_from_json(j.value("max_shape", Json()), what + ": max_shape");
  const Json axes = j.value("axes", Json()), dims = j.value("dims", Json());
  if (!axes.is_array() || !dims.is_array() || axes.size() != t.min_shape.size() || dims.size() != t.min_shape.size() ||
      t.max_shape.size() != t.min_shape.size())
    KILN_THROW(InvalidArgument, what << ": min_shape, max_shape, axes and dims must be lists of one rank");
  for (const auto& a : axes) {
    std::string s = a.is_string() ? a.get<std::string>() : "";
    if (s == "static") t.axes.push_back(AxisKind::Static);
    else if (s == "batch") t.axes.push_back(AxisKind::Batch);
    else if (s == "dynamic") t.axes.push_back(AxisKind::Dynamic);
    else KILN_THROW(InvalidArgument, what << ": unknown axis kind " << a.dump());
  }
  for (const auto& d : dims) {
    if (!d.is_string()) KILN_THROW(InvalidArgument, what << ": dims must be strings");
    t.dims.push_back(d.get<std::string>());
  }
  return t;
}

}  // namespace backend::graph_spec_impl

void backend::check_samples(const std::vector<Sample>& samples, const std::vector<TensorInfo>& inputs) {
  for (size_t s = 0; s < samples.size(); ++s) graph_spec_impl::check_sample(samples[s], s, inputs);
}

std::vector<Sample> backend::with_input_defaults(const Model& model, const std::vector<Sample>& samples) {
  const auto& defaults = model.impl()->m.graph.input_defaults;
  if (defaults.empty()) return samples;
  std::vector<Sample> out = samples;
  for (Sample& s : out)
    for (const auto& [name, t] : defaults) s.emplace(name, t);
  return out;
}

GraphSpec GraphSpec::from_model(const Model& model, const std::vector<Sample>& given) {
  using namespace backend::graph_spec_impl;
  if (!model.impl()) KILN_THROW(InvalidArgument, "GraphSpec::from_model: the model is empty");
  const std::vector<Sample> samples = backend::with_input_defaults(model, given);
  GraphSpec g;
  for (const auto& ti : model.inputs()) g.inputs.push_back(spec_of(ti));
  for (const auto& ti : model.outputs()) g.outputs.push_back(spec_of(ti));

  std::vector<std::vector<Shape>> in_shapes, out_shapes;
  std::vector<int64_t> batch;
  for (size_t s = 0; s < samples.size(); ++s) {
    check_sample(samples[s], s, model.inputs());
    std::vector<Shape> shapes;
    int64_t b = -1;
    for (size_t i = 0; i < g.inputs.size(); ++i) {
      const Shape& sh = samples[s].at(g.inputs[i].name).shape();
      shapes.push_back(sh);
      widen(g.inputs[i], sh);
      if (b < 0 && !sh.empty() && g.inputs[i].axes[0] != AxisKind::Static) b = sh[0];
    }
    in_shapes.push_back(shapes);
    batch.push_back(b);
  }
  classify(g.inputs, in_shapes, batch);

  // Output shapes by type inference on the model graph with each distinct sample's input shapes.
  ir::register_all_ops();
  ir::Graph work;
  if (!samples.empty()) work = model.impl()->m.graph;  // a copy: inference writes the value types
  const auto base_types = work.types;
  std::map<std::vector<Shape>, std::vector<Shape>> seen;
  for (size_t s = 0; s < samples.size(); ++s) {
    auto it = seen.find(in_shapes[s]);
    if (it == seen.end()) {
      std::vector<Shape> outs(g.outputs.size());
      try {
        work.types = base_types;
        for (size_t i = 0; i < g.inputs.size(); ++i)
          work.types[g.inputs[i].name] = ir::ValueType::of(g.inputs[i].dtype, in_shapes[s][i]);
        ir::infer_types(work);
        for (size_t o = 0; o < g.outputs.size(); ++o) {
          const ir::ValueType* t = work.type_of(g.outputs[o].name);
          if (t && t->is_static()) outs[o] = t->static_shape();
        }
      } catch (const Error& e) {
        KILN_DEBUG("GraphSpec: output shapes of sample " << s << " not inferred: " << e.what());
      }
      it = seen.emplace(in_shapes[s], outs).first;
    }
    out_shapes.push_back(it->second);
    for (size_t o = 0; o < g.outputs.size(); ++o)
      if (it->second[o].size() == g.outputs[o].min_shape.size()) widen(g.outputs[o], it->second[o]);
  }
  // An output axis is a batch axis when its size followed the batch in every sample it is known for.
  for (size_t o = 0; o < g.outputs.size(); ++o) {
    TensorSpec& t = g.outputs[o];
    if (t.axes.empty() || t.axes[0] != AxisKind::Dynamic) continue;
    bool is_batch = true;
    for (size_t s = 0; s < samples.size(); ++s)
      if (out_shapes[s][o].empty() || batch[s] < 0 || out_shapes[s][o][0] != batch[s]) is_batch = false;
    if (is_batch) t.axes[0] = AxisKind::Batch;
  }
  return g;
}

GraphSpec& GraphSpec::declare_dim(const std::string& dim, int64_t min, int64_t max, std::optional<int64_t> opt) {
  if (dim.empty()) KILN_THROW(InvalidArgument, "declared dimension: the name is empty");
  if (min <= 0 || max <= 0 || (opt && *opt <= 0))
    KILN_THROW(InvalidArgument, "dimension '" << dim << "': sizes must be positive, got min " << min << " max " << max);
  if (!(min < max))
    KILN_THROW(InvalidArgument, "dimension '" << dim << "': min must be < max (a fixed size is not dynamic), got min "
                                              << min << " max " << max);
  if (opt && (*opt < min || *opt > max))
    KILN_THROW(InvalidArgument, "dimension '" << dim << "': need min <= opt <= max, got " << min << " <= " << *opt
                                              << " <= " << max);
  DynamicDim d{dim, min, opt, max};
  if (const DynamicDim* old = declared(dim)) {
    if (!(*old == d))
      KILN_THROW(InvalidArgument, "dimension '" << dim << "' is declared twice with different ranges");
    return *this;
  }
  dynamic_dims.push_back(d);
  return *this;
}

const TensorSpec* GraphSpec::input(const std::string& n) const {
  for (const auto& t : inputs)
    if (t.name == n) return &t;
  return nullptr;
}

const DynamicDim* GraphSpec::declared(const std::string& dim) const {
  for (const auto& d : dynamic_dims)
    if (d.name == dim) return &d;
  return nullptr;
}

bool GraphSpec::has_dynamic_axes() const {
  for (const auto& t : inputs)
    for (AxisKind k : t.axes)
      if (k != AxisKind::Static) return true;
  return false;
}

std::string GraphSpec::to_dict() const {
  using namespace backend::graph_spec_impl;
  Json o = Json::object();
  o["type"] = "GraphSpec";
  o["name"] = name;
  Json in = Json::array(), out = Json::array(), dyn = Json::array();
  for (const auto& t : inputs) in.push_back(tensor_to_json(t));
  for (const auto& t : outputs) out.push_back(tensor_to_json(t));
  for (const auto& d : dynamic_dims) {
    Json j = Json::object();
    j["name"] = d.name;
    j["min"] = d.min;
    j["opt"] = d.opt ? Json(*d.opt) : Json(nullptr);
    j["max"] = d.max;
    dyn.push_back(j);
  }
  o["input_spec"] = in;
  o["output_spec"] = out;
  o["dynamic_shapes"] = dyn;
  return backend::pyjson::dumps(o);
}

GraphSpec GraphSpec::from_dict(const std::string& json) {
  using namespace backend::graph_spec_impl;
  Json j = backend::pyjson::parse(json, "GraphSpec");
  if (!j.is_object() || j.value("type", "") != "GraphSpec")
    KILN_THROW(InvalidArgument, "GraphSpec: expected an object with \"type\": \"GraphSpec\"");
  GraphSpec g;
  if (j.contains("name") && j["name"].is_string()) g.name = j["name"].get<std::string>();
  for (const char* k : {"input_spec", "output_spec", "dynamic_shapes"})
    if (!j.contains(k) || !j[k].is_array()) KILN_THROW(InvalidArgument, "GraphSpec: '" << k << "' must be a list");
  for (size_t i = 0; i < j["input_spec"].size(); ++i)
    g.inputs.push_back(tensor_from_json(j["input_spec"][i], "GraphSpec input " + std::to_string(i)));
  for (size_t i = 0; i < j["output_spec"].size(); ++i)
    g.outputs.push_back(tensor_from_json(j["output_spec"][i], "GraphSpec output " + std::to_string(i)));
  for (const auto& d : j["dynamic_shapes"]) {
    if (!d.is_object() || !d.contains("name") || !d["name"].is_string() || !d.contains("min") ||
        !d["min"].is_number_integer() || !d.contains("max") || !d["max"].is_number_integer())
      KILN_THROW(InvalidArgument, "GraphSpec: bad dynamic_shapes entry " << d.dump());
    std::optional<int64_t> opt;
    if (d.contains("opt") && d["opt"].is_number_integer()) opt = d["opt"].get<int64_t>();
    g.declare_dim(d["name"].get<std::string>(), d["min"].get<int64_t>(), d["max"].get<int64_t>(), opt);
  }
  return g;
}

}  // namespace kiln
