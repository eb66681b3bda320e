// kiln — optimization profiles: per input a min / opt / max shape.
#pragma once
#include <cstddef>
#include <map>
#include <string>

#include "kiln/dtype.h"

namespace kiln {

struct ShapeRange {
  Shape min, opt, max;
  bool contains(const Shape& s) const;
  bool operator==(const ShapeRange& o) const { return min == o.min && opt == o.opt && max == o.max; }
};

class Profile {
 public:
  // Adds (or replaces) the range of one input. Throws InvalidArgument unless ranks agree and min <= opt <= max.
  Profile& add_input_shape(const std::string& name, const Shape& min, const Shape& opt, const Shape& max);
  // Inputs sorted by name.
  const std::map<std::string, ShapeRange>& shapes() const { return shapes_; }
  bool has(const std::string& name) const { return shapes_.count(name) != 0; }
  const ShapeRange& at(const std::string& name) const;
  // True when every named shape lies inside its range (inputs this profile does not name are ignored).
  bool contains(const std::map<std::string, Shape>& input_shapes) const;
  // "x: min [1,3] opt [4,3] max [8,3]; y: ..."
  std::string str() const;
  size_t hash() const;
  bool operator==(const Profile& o) const { return shapes_ == o.shapes_; }
  bool operator!=(const Profile& o) const { return !(*this == o); }

 private:
  std::map<std::string, ShapeRange> shapes_;
};

}  // namespace kiln
