// kiln CLI — parsing of command-line strings: shape lists, byte sizes, devices, and the grouping of
// shape flags into optimization profiles.
#include <cctype>
#include <charconv>
#include <limits>
#include <set>
#include <sstream>

#include "common.h"

namespace kiln_cli {
namespace {

[[noreturn]] void bad(const std::string& msg) {
  throw kiln::Error(kiln::ErrorCode::InvalidArgument, msg);
}

bool parse_u64(const std::string& s, uint64_t* v) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
  return ec == std::errc() && p == s.data() + s.size();
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t pos = s.find(sep, start);
    out.push_back(s.substr(start, pos == std::string::npos ? std::string::npos : pos - start));
    if (pos == std::string::npos) return out;
    start = pos + 1;
  }
}

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

}  // namespace

std::string dims_str(const kiln::Shape& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) out += (i ? "x" : "") + std::to_string(s[i]);
  return out.empty() ? "(scalar)" : out;
}

ShapeMap parse_shapes(const std::string& text, const std::string& flag) {
  const std::string hint = " (expected name:DxDx..., e.g. x:1x3x224x224,y:1x10)";
  ShapeMap out;
  if (trim(text).empty()) bad(flag + ": empty shape list" + hint);
  for (const std::string& raw : split(text, ',')) {
    std::string tok = trim(raw);
    if (tok.empty()) bad(flag + ": empty entry in '" + text + "'" + hint);
    size_t colon = tok.rfind(':');
    if (colon == std::string::npos) bad(flag + ": bad token '" + tok + "': missing ':' between name and dims" + hint);
    std::string name = trim(tok.substr(0, colon)), dims = trim(tok.substr(colon + 1));
    if (name.empty()) bad(flag + ": bad token '" + tok + "': empty input name" + hint);
    kiln::Shape shape;
    if (!dims.empty()) {
      for (const std::string& d : split(dims, 'x')) {
        uint64_t v = 0;
        if (!parse_u64(trim(d), &v) || v > static_cast<uint64_t>(std::numeric_limits<int32_t>::max()))
          bad(flag + ": bad token '" + tok + "': dimension '" + d + "' is not a non-negative integer" + hint);
        shape.push_back(static_cast<int64_t>(v));
      }
    }
    if (!out.emplace(name, shape).second) bad(flag + ": input '" + name + "' is given twice in '" + text + "'");
  }
  return out;
}

size_t parse_bytes(const std::string& text, const std::string& flag) {
  std::string s = trim(text);
  size_t i = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
  uint64_t v = 0;
  if (!parse_u64(s.substr(0, i), &v)) bad(flag + ": '" + text + "' is not a byte count (e.g. 4096, 64K, 512M, 2G)");
  std::string suf = s.substr(i);
  for (char& c : suf) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  uint64_t mul = 1;
  if (!suf.empty()) {
    static const std::map<std::string, uint64_t> k = {
        {"B", 1},           {"K", 1ull << 10},   {"KB", 1ull << 10}, {"KIB", 1ull << 10}, {"M", 1ull << 20},
        {"MB", 1ull << 20}, {"MIB", 1ull << 20}, {"G", 1ull << 30},  {"GB", 1ull << 30},  {"GIB", 1ull << 30}};
    auto it = k.find(suf);
    if (it == k.end()) bad(flag + ": '" + text + "' has an unknown unit '" + s.substr(i) + "' (use K, M or G)");
    mul = it->second;
  }
  if (v > std::numeric_limits<uint64_t>::max() / mul) bad(flag + ": '" + text + "' is too large");
  return static_cast<size_t>(v * mul);
}

void parse_device(const std::string& text, kiln::Target* target, int* device) {
  if (text == "cpu") {
    *target = kiln::Target::Cpu;
    *device = 0;
    return;
  }
  uint64_t v = 0;
  if (text == "cuda") {
    v = 0;
  } else if (text.rfind("cuda:", 0) != 0 || !parse_u64(text.substr(5), &v) || v > 1024) {
    bad("--target: '" + text + "' is not a target (expected cpu, cuda or cuda:N)");
  }
  *target = kiln::Target::Cuda;
  *device = static_cast<int>(v);
}

std::vector<ProfileSpec> collect_profiles(const CLI::App& sub, const ShapeFlags& f) {
  std::vector<ProfileSpec> specs;
  std::vector<bool> explicit_start;  // started by --profile (an empty one is an error)
  std::map<const CLI::Option*, size_t> consumed;
  for (const CLI::Option* o : sub.parse_order()) {
    if (o == f.profile) {
      specs.emplace_back();
      explicit_start.push_back(true);
      continue;
    }
    ShapeMap ProfileSpec::*field = nullptr;
    if (o == f.min)
      field = &ProfileSpec::min;
    else if (o == f.opt)
      field = &ProfileSpec::opt;
    else if (o == f.max)
      field = &ProfileSpec::max;
    else if (f.shapes && o == f.shapes)
      field = &ProfileSpec::fixed;
    else
      continue;
    size_t k = consumed[o]++;
    if (k >= o->results().size()) continue;
    const std::string flag = o->get_name();
    if (specs.empty()) {
      specs.emplace_back();
      explicit_start.push_back(false);
    }
    ShapeMap& dst = specs.back().*field;
    for (auto& [name, shape] : parse_shapes(o->results()[k], flag))
      if (!dst.emplace(name, shape).second)
        bad("profile " + std::to_string(specs.size() - 1) + ": input '" + name + "' is given twice in " + flag);
  }
  for (size_t i = 0; i < specs.size(); ++i) {
    const ProfileSpec& s = specs[i];
    if (s.min.empty() && s.opt.empty() && s.max.empty() && s.fixed.empty())
      bad("profile " + std::to_string(i) +
          " (started by --profile) names no shapes; follow each --profile with "
          "--shapes or --min-shapes/--opt-shapes/--max-shapes");
  }
  return specs;
}

std::vector<kiln::Profile> make_profiles(const std::vector<ProfileSpec>& specs,
                                         const std::vector<kiln::TensorInfo>& inputs) {
  std::vector<kiln::Profile> out;
  for (size_t i = 0; i < specs.size(); ++i) {
    const ProfileSpec& s = specs[i];
    const std::string where = "profile " + std::to_string(i) + ": ";
    std::set<std::string> names;
    for (const ShapeMap* m : {&s.min, &s.opt, &s.max, &s.fixed})
      for (const auto& [n, sh] : *m) names.insert(n);
    kiln::Profile p;
    for (const std::string& n : names) {
      auto get = [&](const ShapeMap& m) -> const kiln::Shape* {
        auto it = m.find(n);
        return it == m.end() ? nullptr : &it->second;
      };
      const kiln::Shape *mn = get(s.min), *op = get(s.opt), *mx = get(s.max), *fx = get(s.fixed);
      if (fx && (mn || op || mx))
        bad(where + "input '" + n + "' is given both in --shapes and in --min/--opt/--max-shapes");
      if (fx) mn = op = mx = fx;
      if (!op) op = mx ? mx : mn;
      if (!mn) mn = op;
      if (!mx) mx = op;
      try {
        p.add_input_shape(n, *mn, *op, *mx);
      } catch (const kiln::Error& e) {
        throw kiln::Error(e.code(), where + e.what());
      }
    }
    for (const kiln::TensorInfo& in : inputs) {
      if (p.has(in.name) || !in.is_static()) continue;
      kiln::Shape sh;
      for (const kiln::Dim& d : in.dims) sh.push_back(d.value);
      p.add_input_shape(in.name, sh, sh, sh);
    }
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace kiln_cli
