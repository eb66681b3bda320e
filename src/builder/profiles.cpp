#include "builder/profiles.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "runtime/shape_instance.h"
#include "util/error.h"
#include "util/log.h"

namespace kiln::builder {

void freeze_input_defaults(ir::Graph& g, std::vector<TensorInfo>& inputs) {
  for (const auto& entry : g.input_defaults) {
    const std::string& name = entry.first;  // (not a structured binding: clang 14 cannot capture those)
    g.initializers[name] = entry.second;
    g.inputs.erase(std::remove(g.inputs.begin(), g.inputs.end(), name), g.inputs.end());
    inputs.erase(std::remove_if(inputs.begin(), inputs.end(), [&](const TensorInfo& ti) { return ti.name == name; }),
                 inputs.end());
  }
  g.input_defaults.clear();
}

std::vector<Profile> resolve_profiles(const std::vector<TensorInfo>& inputs, const std::vector<Profile>& user_in,
                                      const std::map<std::string, Tensor>& defaults) {
  std::vector<Profile> user = user_in;
  for (Profile& p : user)
    for (const auto& [name, t] : defaults)
      if (!p.has(name)) p.add_input_shape(name, t.shape(), t.shape(), t.shape());
  if (user.empty()) {
    Profile p;
    for (const auto& ti : inputs) {
      Shape s;
      if (auto def = defaults.find(ti.name); def != defaults.end()) {
        p.add_input_shape(ti.name, def->second.shape(), def->second.shape(), def->second.shape());
        continue;
      }
      for (size_t d = 0; d < ti.dims.size(); ++d) {
        if (ti.dims[d].is_static()) {
          s.push_back(ti.dims[d].value);
        } else {
          KILN_WARN("input '" << ti.name << "' axis " << d << " ("
                              << (ti.dims[d].symbol.empty() ? "?" : ti.dims[d].symbol)
                              << ") is dynamic and no profile was given: using 1");
          s.push_back(1);
        }
      }
      p.add_input_shape(ti.name, s, s, s);
    }
    return {p};
  }
  std::set<std::string> names;
  for (const auto& ti : inputs) names.insert(ti.name);
  for (size_t i = 0; i < user.size(); ++i) {
    const Profile& p = user[i];
    std::vector<std::string> missing, unknown;
    for (const auto& n : names)
      if (!p.has(n)) missing.push_back(n);
    for (const auto& [n, r] : p.shapes())
      if (!names.count(n)) unknown.push_back(n);
    if (!missing.empty() || !unknown.empty()) {
      std::ostringstream os;
      os << "profile " << i << " must name exactly the model's inputs;";
      if (!missing.empty()) {
        os << " missing:";
        for (const auto& n : missing) os << " '" << n << "'";
      }
      if (!unknown.empty()) {
        os << " unknown:";
        for (const auto& n : unknown) os << " '" << n << "'";
      }
      throw Error(ErrorCode::InvalidArgument, os.str());
    }
    for (const auto& ti : inputs) {
      const ShapeRange& r = p.at(ti.name);
      if (r.min.size() != ti.dims.size())
        KILN_THROW(InvalidArgument, "profile " << i << ": input '" << ti.name << "' has rank " << r.min.size()
                                               << ", the model declares " << ti.str());
      for (size_t d = 0; d < ti.dims.size(); ++d)
        if (ti.dims[d].is_static() && (r.min[d] != ti.dims[d].value || r.max[d] != ti.dims[d].value))
          KILN_THROW(InvalidArgument, "profile " << i << ": input '" << ti.name << "' axis " << d << " is fixed to "
                                                 << ti.dims[d].value << " (" << ti.str() << "), profile gives min "
                                                 << shape_str(r.min) << " max " << shape_str(r.max));
    }
  }
  return user;
}

void specialize_inputs(ir::Graph& g, const std::vector<TensorInfo>& inputs, const std::vector<Profile>& profiles) {
  for (const auto& ti : inputs) {
    ir::ValueType t{ti.dtype, true, ti.dims};
    for (size_t d = 0; d < t.dims.size(); ++d) {
      if (t.dims[d].is_static()) continue;
      int64_t v = -2;
      bool fixed = true;
      for (const auto& p : profiles) {
        const ShapeRange& r = p.at(ti.name);
        if (r.min[d] != r.max[d] || (v != -2 && v != r.min[d])) fixed = false;
        v = r.min[d];
      }
      if (fixed && v >= 0) t.dims[d] = Dim{v, ""};
    }
    g.types[ti.name] = t;
  }
}

std::vector<std::map<std::string, Shape>> profile_value_shapes(const ir::Graph& g, const std::vector<Profile>& profiles) {
  const runtime::GraphIndex idx(g);
  std::vector<std::map<std::string, Shape>> out;
  for (const Profile& p : profiles) {
    for (int which = 0; which < 3; ++which) {
      std::vector<ir::ValueType> types;
      bool known = true;
      for (int id : idx.inputs) {
        const std::string& name = idx.names[static_cast<size_t>(id)];
        const ir::ValueType* t = g.type_of(name);
        if (p.has(name)) {
          const ShapeRange& r = p.at(name);
          types.push_back(ir::ValueType::of(t ? t->dtype : DType::Float32, which == 0 ? r.min : which == 1 ? r.opt : r.max));
        } else {
          known = known && t && t->is_static();
          types.push_back(t ? *t : ir::ValueType{});
        }
      }
      if (!known) continue;
      try {
        const runtime::InstanceShapes s = runtime::infer_instance(idx, types);
        std::map<std::string, Shape> m;
        for (size_t v = 0; v < s.type.size(); ++v)
          if (s.type[v].is_static()) m[idx.names[v]] = s.type[v].static_shape();
        out.push_back(std::move(m));
      } catch (const Error& e) {
        KILN_DEBUG("build: shape inference at a profile's shapes failed: " << e.what());
      }
    }
  }
  return out;
}

}  // namespace kiln::builder
