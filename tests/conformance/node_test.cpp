// kiln conformance: scanning one node test's model and running it through kiln.
#include "node_test.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "ir/op_registry.h"
#include "kiln/io.h"
#include "kiln/kiln.h"
#include "onnx/onnx.pb.h"
#include "onnx/tensor_proto.h"

namespace kiln::conformance {

const char* status_name(Status s) {
  switch (s) {
    case Status::Pass:
      return "pass";
    case Status::Fail:
      return "fail";
    case Status::Skip:
      return "skip";
  }
  return "?";
}

namespace {

namespace fs = std::filesystem;
using OpsetMap = std::map<std::string, int64_t>;

std::string normalize_domain(const std::string& d) {
  return d == "ai.onnx" ? std::string() : d;
}

std::string squash(const std::string& s) {
  std::string r;
  for (char c : s)
    if (c != '_') r.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  return r;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

OpsetMap opsets_of(const google::protobuf::RepeatedPtrField<::onnx::OperatorSetIdProto>& ids) {
  OpsetMap m;
  for (const auto& id : ids) m[normalize_domain(id.domain())] = id.version();
  return m;
}

// Walks graphs, subgraphs and model-local function bodies, collecting ops and the ones the registry lacks.
class OpWalker {
 public:
  explicit OpWalker(const ::onnx::ModelProto& m) {
    for (const auto& f : m.functions())
      functions_[normalize_domain(f.domain()) + "\n" + f.name() + "\n" + f.overload()] = &f;
  }

  void graph(const ::onnx::GraphProto& g, const OpsetMap& opsets, int depth) {
    if (depth > 32) return;
    for (const auto& n : g.node()) node(n, opsets, depth);
  }

  std::set<std::string> ops, unclaimed;

 private:
  void node(const ::onnx::NodeProto& n, const OpsetMap& opsets, int depth) {
    std::string dom = normalize_domain(n.domain());
    auto f = functions_.find(dom + "\n" + n.op_type() + "\n" + n.overload());
    if (f != functions_.end()) {
      OpsetMap fo = opsets_of(f->second->opset_import());
      for (const auto& [d, v] : opsets) fo.emplace(d, v);  // the model's opsets fill the function's gaps
      for (const auto& b : f->second->node()) node(b, fo, depth + 1);
    } else {
      auto o = opsets.find(dom);
      int64_t opset = o == opsets.end() ? 0 : o->second;
      std::string q = dom.empty() ? n.op_type() : dom + "." + n.op_type();
      ops.insert(q);
      if (!ir::OpRegistry::instance().find(dom, n.op_type(), opset))
        unclaimed.insert(q + " (opset " + std::to_string(opset) + ")");
    }
    for (const auto& a : n.attribute()) {
      if (a.has_g()) graph(a.g(), opsets, depth + 1);
      for (const auto& sg : a.graphs()) graph(sg, opsets, depth + 1);
    }
  }

  std::map<std::string, const ::onnx::FunctionProto*> functions_;
};

// "" when kiln can feed / read this graph input or output; otherwise why not.
std::string type_problem(const ::onnx::TypeProto& t) {
  switch (t.value_case()) {
    case ::onnx::TypeProto::kTensorType: {
      int32_t code = t.tensor_type().elem_type();
      if (!onnx_tensor::dtype_from_onnx(code)) return "dtype unsupported: " + lower(onnx_tensor::onnx_dtype_name(code));
      return "";
    }
    case ::onnx::TypeProto::kSequenceType:
    case ::onnx::TypeProto::kOptionalType:
      return "sequence/optional type";
    case ::onnx::TypeProto::kMapType:
      return "map type";
    case ::onnx::TypeProto::kSparseTensorType:
      return "sparse tensor type";
    default:
      return "value without a type";
  }
}

std::string type_label(const ::onnx::TypeProto& t) {
  switch (t.value_case()) {
    case ::onnx::TypeProto::kTensorType: {
      int32_t code = t.tensor_type().elem_type();
      auto dt = onnx_tensor::dtype_from_onnx(code);
      return dt ? dtype_name(*dt) : lower(onnx_tensor::onnx_dtype_name(code));
    }
    case ::onnx::TypeProto::kSequenceType:
      return "sequence";
    case ::onnx::TypeProto::kOptionalType:
      return "optional";
    case ::onnx::TypeProto::kMapType:
      return "map";
    case ::onnx::TypeProto::kSparseTensorType:
      return "sparse";
    default:
      return "none";
  }
}

std::string one_line(std::string s, size_t max = 400) {
  for (char& c : s)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  if (s.size() > max) s = s.substr(0, max) + "...";
  return s;
}

std::string fmt_num(double v) {
  std::ostringstream os;
  os.precision(3);
  os << v;
  return os.str();
}

}  // namespace

std::string op_from_test_name(const std::string& test_name, const std::vector<std::string>& op_types) {
  std::string rest = squash(test_name.rfind("test_", 0) == 0 ? test_name.substr(5) : test_name);
  std::string best;
  for (const auto& op : op_types) {
    std::string s = squash(op);
    if (!s.empty() && rest.rfind(s, 0) == 0 && s.size() > squash(best).size()) best = op;
  }
  return best;
}

TestInfo scan_test(const std::string& name, const std::string& dir) {
  TestInfo t;
  t.name = name;
  t.dir = dir;
  size_t e = name.find("_expanded");
  t.expanded = e != std::string::npos;
  t.base = t.expanded ? name.substr(0, e) : name;
  std::ifstream f(dir + "/model.onnx", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  ::onnx::ModelProto m;
  if (!f.good() && !f.eof()) {
    t.error = "cannot read " + dir + "/model.onnx";
    return t;
  }
  if (bytes.empty() || !onnx_tensor::parse_message(m, bytes.data(), bytes.size())) {
    t.error = "model.onnx is not a ModelProto";
    return t;
  }
  OpsetMap opsets = opsets_of(m.opset_import());
  t.opset = opsets.count("") ? opsets[""] : 0;

  ir::register_all_ops();
  OpWalker w(m);
  w.graph(m.graph(), opsets, 0);
  t.ops.assign(w.ops.begin(), w.ops.end());
  t.unclaimed.assign(w.unclaimed.begin(), w.unclaimed.end());

  const auto& g = m.graph();
  for (const auto& vi : g.input()) t.input_names.push_back(vi.name());
  for (const auto& vi : g.output()) t.output_names.push_back(vi.name());
  for (const auto* list : {&g.input(), &g.output()})
    for (const auto& vi : *list)
      if (t.type_skip.empty()) t.type_skip = type_problem(vi.type());
  if (g.input_size() > 0)
    t.dtype = type_label(g.input(0).type());
  else if (g.output_size() > 0)
    t.dtype = type_label(g.output(0).type());

  // Main op: the top-level op the test is named after; else the only / first op that is not a Constant.
  std::vector<std::string> top;
  std::map<std::string, std::string> domain_of;
  for (const auto& n : g.node()) {
    top.push_back(n.op_type());
    domain_of[n.op_type()] = normalize_domain(n.domain());
  }
  t.op = op_from_test_name(name, top);
  for (const auto& op : top)
    if (t.op.empty() && op != "Constant") t.op = op;
  if (t.op.empty() && !top.empty()) t.op = top.front();
  t.domain = domain_of[t.op];
  return t;
}

Result run_test(const TestInfo& t, const Tolerance& tol, const std::string& dump_dir, const RunTarget& run_on) {
  Result r;
  r.status = Status::Fail;
  const char* stage = "import";
  try {
    Model model = Model::load(t.dir + "/model.onnx");
    std::set<std::string> runtime_inputs;
    for (const auto& ti : model.inputs()) runtime_inputs.insert(ti.name);

    std::vector<fs::path> sets;
    for (const auto& de : fs::directory_iterator(t.dir))
      if (de.is_directory() && de.path().filename().string().rfind("test_data_set_", 0) == 0) sets.push_back(de.path());
    std::sort(sets.begin(), sets.end());
    if (sets.empty()) {
      r.reason = "no test_data_set_N folder";
      return r;
    }
    for (const auto& ds : sets) {
      std::string where = sets.size() > 1 ? ds.filename().string() + ": " : "";
      stage = "inputs";
      TensorMap inputs;
      Profile profile;
      for (size_t j = 0; j < t.input_names.size(); ++j) {
        const std::string& name = t.input_names[j];
        if (!runtime_inputs.count(name)) continue;  // an initializer-backed input keeps its default
        Tensor x = load_tensor_pb((ds / ("input_" + std::to_string(j) + ".pb")).string());
        profile.add_input_shape(name, x.shape(), x.shape(), x.shape());
        inputs[name] = std::move(x);
      }
      stage = "build";
      BuildConfig cfg;
      cfg.target = run_on.target;
      cfg.device = run_on.device;
      cfg.enable_tf32 = false;
      if (!inputs.empty()) cfg.profiles = {profile};
      Engine engine = build_engine(model, cfg);
      stage = "run";
      ExecutionContext ctx(engine);
      TensorMap outs = ctx.run(inputs);
      stage = "compare";
      for (size_t j = 0; j < t.output_names.size(); ++j) {
        const std::string& name = t.output_names[j];
        Tensor want = load_tensor_pb((ds / ("output_" + std::to_string(j) + ".pb")).string());
        auto it = outs.find(name);
        if (it == outs.end()) {
          r.reason = where + "output '" + name + "' missing from the engine's results";
          return r;
        }
        // Upstream's runner (onnx.backend.test.runner) widens rtol to two bfloat16 ULPs for bfloat16 outputs.
        Tolerance t_out = tol;
        if (want.dtype() == DType::BFloat16) t_out.rtol = std::max(t_out.rtol, 1.0 / 64);
        Comparison c = compare(it->second, want, t_out);
        if (!c.passed) {
          if (!dump_dir.empty()) {
            fs::path d = fs::path(dump_dir) / t.name / ds.filename();
            fs::create_directories(d);
            save_tensor_pb((d / ("output_" + std::to_string(j) + ".pb")).string(), it->second, name);
          }
          r.reason = one_line(where + "output '" + name + "': " + c.reason + " (max abs diff " + fmt_num(c.max_abs) +
                              ", max rel " + fmt_num(c.max_rel) + ")");
          return r;
        }
      }
    }
    r.status = Status::Pass;
  } catch (const Error& e) {
    r.reason = one_line(std::string(stage) + ": " + error_code_name(e.code()) + ": " + e.what());
  } catch (const std::exception& e) {
    r.reason = one_line(std::string(stage) + ": exception: " + e.what());
  }
  return r;
}

std::string encode_result(const Result& r) {
  char c = r.status == Status::Pass ? 'P' : r.status == Status::Fail ? 'F' : 'S';
  return std::string(1, c) + r.reason;
}

Result decode_result(const std::string& s) {
  Result r;
  if (s.empty()) {
    r.status = Status::Fail;
    r.reason = "test process wrote no result";
    return r;
  }
  r.status = s[0] == 'P' ? Status::Pass : s[0] == 'F' ? Status::Fail : Status::Skip;
  r.reason = s.substr(1);
  return r;
}

}  // namespace kiln::conformance
