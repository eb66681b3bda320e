#include "kiln/profile.h"

#include <functional>
#include <sstream>

#include "util/error.h"

namespace kiln {

bool ShapeRange::contains(const Shape& s) const {
  if (s.size() != min.size()) return false;
  for (size_t i = 0; i < s.size(); ++i)
    if (s[i] < min[i] || s[i] > max[i]) return false;
  return true;
}

Profile& Profile::add_input_shape(const std::string& name, const Shape& min, const Shape& opt, const Shape& max) {
  if (name.empty()) KILN_THROW(InvalidArgument, "profile input name is empty");
  if (min.size() != opt.size() || opt.size() != max.size())
    KILN_THROW(InvalidArgument, "profile for input '" << name << "': ranks differ: min " << shape_str(min)
                                                      << ", opt " << shape_str(opt) << ", max " << shape_str(max));
  for (size_t i = 0; i < min.size(); ++i) {
    if (min[i] < 0) KILN_THROW(InvalidArgument, "profile for input '" << name << "': negative dim in min " << shape_str(min));
    if (!(min[i] <= opt[i] && opt[i] <= max[i]))
      KILN_THROW(InvalidArgument, "profile for input '" << name << "': need min <= opt <= max on axis " << i
                                                        << ", got min " << shape_str(min) << ", opt " << shape_str(opt)
                                                        << ", max " << shape_str(max));
  }
  if (!shapes_.count(name)) order_.push_back(name);
  shapes_[name] = ShapeRange{min, opt, max};
  return *this;
}

const ShapeRange& Profile::at(const std::string& name) const {
  auto it = shapes_.find(name);
  if (it == shapes_.end()) KILN_THROW(InvalidArgument, "profile has no input '" << name << "'");
  return it->second;
}

bool Profile::contains(const std::map<std::string, Shape>& input_shapes) const {
  for (const auto& [name, shape] : input_shapes) {
    auto it = shapes_.find(name);
    if (it != shapes_.end() && !it->second.contains(shape)) return false;
  }
  return true;
}

std::string Profile::str() const {
  std::ostringstream os;
  bool first = true;
  for (const auto& [name, r] : shapes_) {
    if (!first) os << "; ";
    first = false;
    os << name << ": min " << shape_str(r.min) << " opt " << shape_str(r.opt) << " max " << shape_str(r.max);
  }
  return os.str();
}

size_t Profile::hash() const {
  size_t h = 0xcbf29ce484222325ull;
  auto mix = [&h](size_t v) { h = (h ^ v) * 0x100000001b3ull; };
  for (const auto& [name, r] : shapes_) {
    mix(std::hash<std::string>()(name));
    for (const Shape* s : {&r.min, &r.opt, &r.max}) {
      mix(s->size());
      for (int64_t d : *s) mix(static_cast<size_t>(d));
    }
  }
  return h;
}

}  // namespace kiln
