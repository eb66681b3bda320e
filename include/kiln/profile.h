// kiln — optimization profiles: per input a min / opt / max shape.
#pragma once
#include <cstddef>
#include <map>
#include <string>
#include <vector>

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
  // Input names in the order they were first added (the order of to_dict()).
  const std::vector<std::string>& input_names() const { return order_; }
  bool has(const std::string& name) const { return shapes_.count(name) != 0; }
  const ShapeRange& at(const std::string& name) const;
  // True when every named shape lies inside its range (inputs this profile does not name are ignored).
  bool contains(const std::map<std::string, Shape>& input_shapes) const;
  // "x: min [1,3] opt [4,3] max [8,3]; y: ..."
  std::string str() const;
  size_t hash() const;
  // AITune's TensorRTProfile.to_dict as JSON text: {"name": [[min...], [opt...], [max...]], ...} in insertion
  // order, serialized like Python's json.dumps. from_dict accepts that JSON (InvalidArgument naming the problem).
  std::string to_dict() const;
  static Profile from_dict(const std::string& json);
  bool operator==(const Profile& o) const { return shapes_ == o.shapes_; }
  bool operator!=(const Profile& o) const { return !(*this == o); }

 private:
  std::map<std::string, ShapeRange> shapes_;
  std::vector<std::string> order_;
};

}  // namespace kiln
