// Profile::to_dict / from_dict and the JSON helpers behind them.
#include "backend/profile_json.h"

#include "util/error.h"

namespace kiln {
namespace backend {

pyjson::Json shape_to_json(const Shape& s) {
  pyjson::Json a = pyjson::Json::array();
  for (int64_t d : s) a.push_back(d);
  return a;
}

Shape shape_from_json(const pyjson::Json& j, const std::string& what) {
  if (!j.is_array()) KILN_THROW(InvalidArgument, what << ": expected a list of integers, got " << j.dump());
  Shape s;
  for (const auto& d : j) {
    if (!d.is_number_integer()) KILN_THROW(InvalidArgument, what << ": dimension " << d.dump() << " is not an integer");
    s.push_back(d.get<int64_t>());
  }
  return s;
}

pyjson::Json profile_to_json(const Profile& p) {
  pyjson::Json o = pyjson::Json::object();
  for (const auto& name : p.input_names()) {
    const ShapeRange& r = p.at(name);
    o[name] = pyjson::Json::array({shape_to_json(r.min), shape_to_json(r.opt), shape_to_json(r.max)});
  }
  return o;
}

Profile profile_from_json(const pyjson::Json& j, const std::string& what) {
  if (!j.is_object()) KILN_THROW(InvalidArgument, what << ": expected {name: [min, opt, max]}, got " << j.dump());
  Profile p;
  for (const auto& [name, v] : j.items()) {
    if (!v.is_array() || v.size() != 3)
      KILN_THROW(InvalidArgument, what << ": input '" << name << "' needs [min, opt, max], got " << v.dump());
    p.add_input_shape(name, shape_from_json(v[0], what + ": input '" + name + "' min"),
                      shape_from_json(v[1], what + ": input '" + name + "' opt"),
                      shape_from_json(v[2], what + ": input '" + name + "' max"));
  }
  return p;
}

pyjson::Json profiles_to_json(const std::vector<Profile>& ps) {
  pyjson::Json a = pyjson::Json::array();
  for (const auto& p : ps) a.push_back(profile_to_json(p));
  return a;
}

std::vector<Profile> profiles_from_json(const pyjson::Json& j, const std::string& what) {
  if (!j.is_array()) KILN_THROW(InvalidArgument, what << ": expected a list of profiles, got " << j.dump());
  std::vector<Profile> out;
  for (size_t i = 0; i < j.size(); ++i) out.push_back(profile_from_json(j[i], what + " " + std::to_string(i)));
  return out;
}

}  // namespace backend

std::string Profile::to_dict() const { return backend::pyjson::dumps(backend::profile_to_json(*this)); }

Profile Profile::from_dict(const std::string& json) {
  return backend::profile_from_json(backend::pyjson::parse(json, "profile"), "profile");
}

}  // namespace kiln
