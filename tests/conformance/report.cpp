// kiln conformance: committed lists, JSON results and docs/operators.md.
#include "report.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "ir/op_registry.h"
#include "kiln/error.h"

namespace kiln::conformance {
namespace {

struct Line {
  int number = 0;
  std::string body;    // before '#', trimmed
  std::string reason;  // after '#', trimmed
};

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r"), e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

std::vector<Line> read_lines(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw Error(ErrorCode::Io, "cannot open " + path);
  std::vector<Line> out;
  std::string s;
  int n = 0;
  while (std::getline(f, s)) {
    ++n;
    std::string t = trim(s);
    if (t.empty() || t[0] == '#') continue;
    size_t h = t.find('#');
    Line l;
    l.number = n;
    l.body = trim(t.substr(0, h));
    l.reason = h == std::string::npos ? "" : trim(t.substr(h + 1));
    out.push_back(l);
  }
  return out;
}

[[noreturn]] void bad_line(const std::string& path, const Line& l, const std::string& why) {
  throw Error(ErrorCode::InvalidArgument, path + ":" + std::to_string(l.number) + ": " + why);
}

std::string pct(int a, int b) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(1) << (b ? 100.0 * a / b : 0.0) << "%";
  return os.str();
}

std::string frac(int a, int b) {
  return b ? std::to_string(a) + "/" + std::to_string(b) : "—";
}

std::string qualified(const std::string& domain, const std::string& op) {
  return domain.empty() ? op : domain + "." + op;
}

struct OpTally {
  Tally all;
  std::map<std::string, Tally> by_dtype;
};

void add(Tally& t, const Record& r) {
  if (!r.info.claimed()) {
    ++t.unclaimed;
    return;
  }
  ++t.claimed;
  if (!r.info.type_skip.empty()) {
    ++t.typed;
    return;
  }
  bool pass = r.result.status == Status::Pass;
  ++t.run;
  t.passed += pass;
  if (r.info.expanded) {
    ++t.exp_run;
    t.exp_passed += pass;
  }
}

std::map<std::string, OpTally> tally_by_op(const std::vector<Record>& records) {
  std::map<std::string, OpTally> m;
  for (const auto& r : records) {
    OpTally& o = m[qualified(r.info.domain, r.info.op)];
    add(o.all, r);
    add(o.by_dtype[r.info.dtype], r);
  }
  return m;
}

std::string since_str(const std::vector<int>& since) {
  std::string s;
  for (size_t i = 0; i < since.size(); ++i) s += (i ? ", " : "") + std::to_string(since[i]);
  return s.empty() ? "—" : s;
}

}  // namespace

Tally tally(const std::vector<Record>& records) {
  Tally t;
  for (const auto& r : records) add(t, r);
  return t;
}

std::map<std::string, std::string> read_skips(const std::string& path) {
  std::map<std::string, std::string> m;
  for (const auto& l : read_lines(path)) {
    if (l.body.find_first_of(" \t") != std::string::npos) bad_line(path, l, "expected `test_name  # reason`");
    if (l.reason.empty()) bad_line(path, l, "'" + l.body + "' has no reason (`test_name  # reason`)");
    if (!m.emplace(l.body, l.reason).second) bad_line(path, l, "'" + l.body + "' is listed twice");
  }
  return m;
}

std::map<std::string, ToleranceOverride> read_tolerances(const std::string& path) {
  std::map<std::string, ToleranceOverride> m;
  for (const auto& l : read_lines(path)) {
    std::istringstream is(l.body);
    std::string name, kv;
    is >> name;
    ToleranceOverride o;
    o.tol = tolerance_for("node-test");
    o.reason = l.reason;
    while (is >> kv) {
      size_t eq = kv.find('=');
      std::string k = kv.substr(0, eq), v = eq == std::string::npos ? "" : kv.substr(eq + 1);
      char* end = nullptr;
      double d = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !std::isfinite(d) || d < 0) bad_line(path, l, "bad value in '" + kv + "'");
      if (k == "rtol")
        o.tol.rtol = d;
      else if (k == "atol")
        o.tol.atol = d;
      else
        bad_line(path, l, "unknown key '" + k + "' (rtol, atol)");
    }
    if (l.reason.empty()) bad_line(path, l, "'" + name + "' has no reason");
    if (!m.emplace(name, o).second) bad_line(path, l, "'" + name + "' is listed twice");
  }
  return m;
}

std::string type_skip_reason(const std::string& type_skip) {
  const std::string prefix = "dtype unsupported: ";
  if (type_skip.rfind(prefix, 0) != 0) {
    if (type_skip == "sequence/optional type") return "sequence/optional type: kiln runs tensors only";
    return type_skip + ": kiln runs tensors only";
  }
  std::string d = type_skip.substr(prefix.size());
  if (d == "uint16" || d == "uint32" || d == "uint64") return "dtype " + d + ": kiln has no uint16/uint32/uint64 type";
  if (d == "string") return "dtype string: kiln has no string tensors";
  if (d.rfind("complex", 0) == 0) return "dtype " + d + ": kiln has no complex types";
  return "dtype " + d + ": kiln has no float8/float4/int4/int2/uint4/uint2 types";
}

int read_floor(const std::string& path) {
  auto lines = read_lines(path);
  if (lines.empty()) throw Error(ErrorCode::InvalidArgument, path + ": no pass count");
  char* end = nullptr;
  long v = std::strtol(lines[0].body.c_str(), &end, 10);
  if (lines[0].body.empty() || *end != '\0' || v < 0) bad_line(path, lines[0], "expected a pass count");
  return static_cast<int>(v);
}

std::string data_origin(const std::string& data_dir) {
  std::ifstream f(data_dir + "/.stamp");
  std::string s;
  std::getline(f, s);
  return trim(s);
}

Schemas read_schemas(const std::string& data_dir) {
  Schemas m;
  std::ifstream f(data_dir + "/schemas.json");
  if (!f) return m;
  nlohmann::json j = nlohmann::json::parse(f, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return m;
  for (const auto& [op, v] : j.items()) {
    if (!v.is_array()) continue;
    for (const auto& x : v)
      if (x.is_number_integer()) m[op].push_back(x.get<int>());
  }
  return m;
}

std::vector<int> missing_versions(const Schemas& schemas, const std::string& qualified_op,
                                  const std::vector<int>& since) {
  std::vector<int> out;
  auto it = schemas.find(qualified_op);
  if (it == schemas.end()) return out;
  for (int v : it->second)
    if (v >= 11 && std::find(since.begin(), since.end(), v) == since.end()) out.push_back(v);
  return out;
}

std::string results_json(const std::vector<Record>& records, const std::string& origin, const Schemas& schemas) {
  using nlohmann::ordered_json;
  ordered_json j;
  j["origin"] = origin;
  ordered_json reg = ordered_json::array();
  for (const ir::OpDef* d : ir::OpRegistry::instance().all())
    reg.push_back(
        {{"op", d->op_type},
         {"domain", d->domain},
         {"since", d->since},
         {"onnx_since", schemas.count(qualified(d->domain, d->op_type)) ? schemas.at(qualified(d->domain, d->op_type))
                                                                        : std::vector<int>{}},
         {"onnx_versions_not_registered", missing_versions(schemas, qualified(d->domain, d->op_type), d->since)}});
  j["registry"] = reg;
  ordered_json tests = ordered_json::array();
  for (const auto& r : records)
    tests.push_back({{"name", r.info.name},
                     {"op", qualified(r.info.domain, r.info.op)},
                     {"dtype", r.info.dtype},
                     {"opset", r.info.opset},
                     {"expanded", r.info.expanded},
                     {"claimed", r.info.claimed()},
                     {"status", status_name(r.result.status)},
                     {"reason", r.result.reason},
                     {"listed", r.listed},
                     {"ops", r.info.ops}});
  j["tests"] = tests;
  ordered_json agg = ordered_json::array();
  for (const auto& [op, t] : tally_by_op(records))
    for (const auto& [dt, d] : t.by_dtype)
      agg.push_back({{"op", op},
                     {"dtype", dt},
                     {"passed", d.passed},
                     {"run", d.run},
                     {"expanded_passed", d.exp_passed},
                     {"expanded_run", d.exp_run},
                     {"type_skipped", d.typed},
                     {"unclaimed", d.unclaimed}});
  j["by_op_dtype"] = agg;
  return j.dump(1) + "\n";
}

std::string operators_markdown(const std::vector<Record>& records, const std::string& origin, const Schemas& schemas) {
  auto by_op = tally_by_op(records);
  Tally total = tally(records);
  std::ostringstream os;
  os << "# kiln operators\n\n"
     << "<!-- Generated by kiln_conformance --write-doc from the op registry and the ONNX node test results; do not\n"
     << "     edit by hand. How to regenerate: tests/conformance/README.md. -->\n\n"
     << "Every op in kiln's op registry, the `since_version`s its reference kernel implements, and how it does on the\n"
     << "ONNX backend node tests (" << (origin.empty() ? "origin unknown" : origin) << ").\n\n"
     << "A test counts for the op it is named after (an `_expanded` variant for the op of the test it expands, "
        "although\n"
     << "it runs that op's decomposition into primitive ops). It is *claimed* when kiln registers every op it runs at\n"
     << "the test's opset; a claimed test whose graph inputs or outputs have a type kiln lacks (uint16/32/64, float8,\n"
     << "int4, string, sequence, optional) is skipped; the others run on the CPU engine and are compared with\n"
     << "rtol 1e-3, atol 1e-7 (integer and bool outputs exactly, bfloat16 with rtol 2^-6 as upstream's runner;\n"
     << "per-test overrides in tests/conformance/tolerances.txt).\n"
     << "Every claimed test that does not pass is in tests/conformance/skips.txt with its reason.\n\n"
     << "**Claimed tests run: " << total.passed << " of " << total.run << " pass (" << pct(total.passed, total.run)
     << ")**, `_expanded` variants " << total.exp_passed << " of " << total.exp_run << ". All claimed tests, those "
     << "skipped for a type kiln lacks included: " << total.passed << " of " << total.claimed << " ("
     << pct(total.passed, total.claimed) << "). Not claimed: " << total.unclaimed << " tests.\n\n"
     << "*ONNX versions not listed*: since versions >= 11 of the op's ONNX schema that kiln's registry entry does not\n"
     << "list; a node at an opset that reaches one above the highest listed is refused at import (Unsupported).\n\n"
     << "| op | since versions | ONNX versions not listed | dtypes run (passed/run) | passed/run | of which "
        "`_expanded` "
     << "| skipped: type kiln lacks | not claimed |\n"
     << "|---|---|---|---|---|---|---|---|\n";
  std::set<std::string> registered;
  for (const ir::OpDef* d : ir::OpRegistry::instance().all()) {
    std::string q = qualified(d->domain, d->op_type);
    registered.insert(q);
    auto it = by_op.find(q);
    OpTally t = it == by_op.end() ? OpTally{} : it->second;
    std::string run, typed;
    for (const auto& [dt, d2] : t.by_dtype) {
      if (d2.run) run += (run.empty() ? "" : ", ") + dt + " " + frac(d2.passed, d2.run);
      if (d2.typed) typed += (typed.empty() ? "" : ", ") + dt + " " + std::to_string(d2.typed);
    }
    os << "| " << q << " | " << since_str(d->since) << " | " << since_str(missing_versions(schemas, q, d->since))
       << " | " << (run.empty() ? "—" : run) << " | " << frac(t.all.passed, t.all.run) << " | "
       << frac(t.all.exp_passed, t.all.exp_run) << " | " << (typed.empty() ? "—" : typed) << " | " << t.all.unclaimed
       << " |\n";
  }
  std::ostringstream extra;
  for (const auto& [op, t] : by_op)
    if (!registered.count(op) && t.all.claimed > 0)
      extra << "| " << op << " | " << frac(t.all.exp_passed, t.all.exp_run) << " | " << t.all.typed << " |\n";
  if (!extra.str().empty())
    os << "\n## Ops kiln runs only through their `_expanded` decomposition\n\n"
       << "Not registered themselves, but every primitive op of some of their `_expanded` node tests is.\n\n"
       << "| op | `_expanded` passed/run | skipped: type kiln lacks |\n|---|---|---|\n"
       << extra.str();
  return os.str();
}

}  // namespace kiln::conformance
