// JSON text exactly as Python's json module writes it, so hashes of serialized configs match AITune's.
// json.dumps(x): separators ", " and ": ", ensure_ascii (\uXXXX escapes, surrogate pairs), keys in insertion order.
// json.dumps(x, indent=N): item separator "," at line ends, ": " after keys, N spaces per level.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace kiln::backend::pyjson {

using Json = nlohmann::ordered_json;

// indent < 0: one line (json.dumps default); indent >= 0: json.dumps(..., indent=indent).
std::string dumps(const Json& value, int indent = -1);
// Parses JSON text; InvalidArgument "<what>: not valid JSON: ..." on failure.
Json parse(const std::string& text, const std::string& what);
// Python's repr() of a str ('abc', with Python's quote choice and escapes) and of a float (shortest round trip).
std::string repr_str(const std::string& s);
std::string repr_float(double v);

}  // namespace kiln::backend::pyjson
