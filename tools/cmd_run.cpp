// kiln run PLAN|MODEL|--checkpoint DIR [--inputs DIR] [--input name=file ...] [--shapes ...] [--output-dir DIR]
//                     [--format npy|pb] [--expect DIR] [--rtol R] [--atol A] [--seed N]
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>

#include "common.h"

namespace fs = std::filesystem;

namespace kiln_cli {
namespace {

[[noreturn]] void bad(const std::string& msg) {
  throw kiln::Error(kiln::ErrorCode::InvalidArgument, msg);
}

struct RunArgs {
  std::string path, inputs_dir, output_dir, format = "npy", expect_dir, int_range, checkpoint;
  std::vector<std::string> input_files, shapes;
  double rtol = -1, atol = -1, l2 = -1;
  uint64_t seed = 0;
  BuildOptions b;
};

bool has_input(const std::vector<kiln::TensorInfo>& ins, const std::string& name) {
  for (const auto& t : ins)
    if (t.name == name) return true;
  return false;
}

// --inputs DIR (input_N.pb: by TensorProto name when it names an input, else by position) then
// --input name=file (overrides). `origin` receives where each tensor came from.
kiln::TensorMap load_given(const RunArgs& a, const std::vector<kiln::TensorInfo>& ins,
                           std::map<std::string, std::string>* origin) {
  kiln::TensorMap given;
  if (!a.inputs_dir.empty()) {
    std::error_code ec;
    if (!fs::is_directory(a.inputs_dir, ec))
      throw kiln::Error(kiln::ErrorCode::Io, "--inputs: '" + a.inputs_dir + "' is not a folder");
    for (size_t i = 0;; ++i) {
      std::string file = (fs::path(a.inputs_dir) / ("input_" + std::to_string(i) + ".pb")).string();
      if (!fs::exists(file, ec)) break;
      std::string pb_name;
      kiln::Tensor t = load_tensor_file(file, &pb_name);
      std::string name;
      if (!pb_name.empty() && has_input(ins, pb_name))
        name = pb_name;
      else if (i < ins.size())
        name = ins[i].name;
      else
        bad("--inputs: " + file + " has no matching input (the model has " + std::to_string(ins.size()) + ")");
      if (given.count(name)) bad("--inputs: input '" + name + "' is given by both " + (*origin)[name] + " and " + file);
      given[name] = t;
      (*origin)[name] = file;
    }
    if (given.empty()) throw kiln::Error(kiln::ErrorCode::Io, "--inputs: '" + a.inputs_dir + "' has no input_0.pb");
  }
  for (const std::string& spec : a.input_files) {
    size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size())
      bad("--input: '" + spec + "' is not name=file (e.g. x=x.npy)");
    std::string name = spec.substr(0, eq), file = spec.substr(eq + 1);
    check_input_names({{name, {}}}, ins, "--input");
    given[name] = load_tensor_file(file);
    (*origin)[name] = file;
  }
  return given;
}

void save_outputs(const RunArgs& a, const kiln::Engine& e, const kiln::TensorMap& outs) {
  ensure_dir(a.output_dir);
  std::set<std::string> used;
  for (size_t i = 0; i < e.outputs().size(); ++i) {
    const std::string& name = e.outputs()[i].name;
    const kiln::Tensor& t = outs.at(name);
    std::string file;
    if (a.format == "pb") {
      file = (fs::path(a.output_dir) / ("output_" + std::to_string(i) + ".pb")).string();
      kiln::save_tensor_pb(file, t, name);
    } else {
      std::string base = sanitize_name(name), stem = base;
      for (int k = 1; used.count(stem); ++k) stem = base + "_" + std::to_string(k);
      used.insert(stem);
      file = (fs::path(a.output_dir) / (stem + ".npy")).string();
      kiln::save_npy(file, t);
    }
    std::cout << "  saved " << name << " -> " << file << "\n";
  }
}

void expect(const RunArgs& a, const kiln::Engine& e, const kiln::TensorMap& outs) {
  // The tolerance table's row for the engine's precision (docs/tolerances.md); flags override it.
  kiln::Tolerance tol = kiln::tolerance_for(e.precision());
  if (a.rtol >= 0 || a.atol >= 0) {
    kiln::Tolerance fp32 = kiln::tolerance_for("fp32");
    tol = {kiln::Metric::ElementWise, a.rtol >= 0 ? a.rtol : fp32.rtol, a.atol >= 0 ? a.atol : fp32.atol, 0};
  }
  if (a.l2 >= 0) tol = {kiln::Metric::RelativeL2, 0, 0, a.l2};
  std::ostringstream rule;
  rule << tol.str() << "; integers and bool exact";
  std::cout << "expect " << a.expect_dir << " (" << e.precision() << ": " << rule.str() << "):\n";

  const auto& infos = e.outputs();
  std::vector<std::string> failed;
  std::set<std::string> done;
  for (size_t i = 0; i < infos.size(); ++i) {
    std::string file = (fs::path(a.expect_dir) / ("output_" + std::to_string(i) + ".pb")).string();
    std::string pb_name;
    kiln::Tensor want = load_tensor_file(file, &pb_name);
    std::string name = infos[i].name;
    if (!pb_name.empty() && outs.count(pb_name)) name = pb_name;
    if (!done.insert(name).second) bad("--expect: output '" + name + "' is named by two files in " + a.expect_dir);
    kiln::Tensor got = outs.at(name);
    // Low-precision outputs (--low-precision-io) are compared in the reference's float type.
    if (got.dtype() != want.dtype() && kiln::dtype_is_float(got.dtype()) && kiln::dtype_is_float(want.dtype()))
      got = convert_float(got, want.dtype());
    kiln::Comparison c = kiln::compare(got, want, tol);
    std::cout << "  " << std::left << std::setw(16) << name << std::scientific << std::setprecision(3)
              << " max abs err " << c.max_abs << "  max rel err " << c.max_rel;
    if (tol.metric == kiln::Metric::RelativeL2) std::cout << "  rel L2 " << c.rel_l2;
    std::cout << std::defaultfloat << "  " << (c.passed ? "PASS" : "FAIL");
    if (!c.passed) std::cout << " (" << c.reason << ")";
    std::cout << "\n";
    if (!c.passed) failed.push_back(name + ": " + c.reason);
  }
  std::cout.flush();
  if (!failed.empty()) {
    std::string msg = std::to_string(failed.size()) + " of " + std::to_string(infos.size()) +
                      " output(s) differ from " + a.expect_dir + ": " + failed.front();
    if (failed.size() > 1) msg += "; ...";
    throw kiln::Error(kiln::ErrorCode::Correctness, msg);
  }
  std::cout << "PASS: " << infos.size() << " output(s) match " << a.expect_dir << "\n";
}

int run_run(RunArgs& a, const CLI::App& sub) {
  // Everything that can be checked without the model first.
  a.b.prepare(sub);
  ShapeMap shapes;
  for (const std::string& s : a.shapes)
    for (auto& [n, sh] : parse_shapes(s, "--shapes"))
      if (!shapes.emplace(n, sh).second) bad("--shapes: input '" + n + "' is given twice");
  RandomSpec rs;
  rs.seed = a.seed;
  if (!a.int_range.empty()) parse_int_range(a.int_range, &rs);

  Source src;
  std::optional<kiln::EngineBackend> backend;  // --checkpoint: a deployed EngineBackend runs the inputs
  if (!a.checkpoint.empty()) {
    if (!a.path.empty()) bad("give a plan or model file, or --checkpoint DIR, not both");
    backend.emplace(kiln::EngineBackend::load(a.checkpoint));  // verifies SHA256SUMS
    const bool device_given = sub.get_option("--device")->count() > 0;
    backend->deploy(device_given ? std::optional<std::string>(a.b.device) : std::nullopt);
    src.path = a.checkpoint;
    src.engine = backend->engine();
    a.path = a.checkpoint;
  } else {
    if (a.path.empty()) bad("give a plan or model file, or --checkpoint DIR");
    src.open(a.path);
  }
  check_input_names(shapes, src.inputs(), "--shapes");
  std::map<std::string, std::string> origin;
  kiln::TensorMap given = load_given(a, src.inputs(), &origin);
  for (const auto& [name, t] : given) {
    auto it = shapes.find(name);
    if (it != shapes.end() && it->second != t.shape())
      bad("input '" + name + "' from " + origin[name] + " has shape " + kiln::shape_str(t.shape()) +
          ", but --shapes gives " + dims_str(it->second));
    shapes[name] = t.shape();
  }
  if (!a.output_dir.empty()) ensure_dir(a.output_dir);
  if (!backend) src.build(sub, a.b, shapes);
  const kiln::Engine& e = src.engine;

  // An engine with low-precision I/O (--low-precision-io) takes float16/bfloat16: float test data is converted.
  for (const auto& in : e.inputs()) {
    auto it = given.find(in.name);
    if (it == given.end() || it->second.dtype() == in.dtype || !kiln::dtype_is_float(it->second.dtype()) ||
        !kiln::dtype_is_float(in.dtype))
      continue;
    origin[in.name] += std::string(", converted from ") + kiln::dtype_name(it->second.dtype());
    it->second = convert_float(it->second, in.dtype);
  }
  kiln::TensorMap inputs = complete_inputs(e, given, shapes, rs);
  kiln::ExecutionContext ctx = e.create_context();
  auto t0 = std::chrono::steady_clock::now();
  kiln::TensorMap outs = backend ? backend->infer(inputs) : ctx.run(inputs);
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();

  std::ostream& os = std::cout;
  if (backend)
    os << "run checkpoint " << a.path << " (" << backend->describe() << ", " << kiln::backend_state_name(backend->state())
       << " on " << backend->device() << ", " << e.target() << ", " << e.precision() << ")\n";
  else
    os << "run " << a.path << " (" << e.target() << ", " << e.precision() << ", profile " << ctx.last_profile() << ")\n";
  if (src.build_seconds >= 0) os << "  built in " << std::fixed << std::setprecision(3) << src.build_seconds << " s\n";
  int w = 0;  // name column width
  for (const auto* list : {&e.inputs(), &e.outputs()})
    for (const auto& t : *list) w = std::max(w, static_cast<int>(t.name.size()));
  os << std::defaultfloat << "inputs:\n";
  for (const auto& in : e.inputs()) {
    const kiln::Tensor& t = inputs.at(in.name);
    std::string from = origin.count(in.name) ? origin[in.name] : "random, seed " + std::to_string(a.seed);
    os << "  " << std::left << std::setw(w) << in.name << "  " << t.type_str() << "  (" << from << ")  "
       << tensor_summary(t) << "\n";
  }
  os << "outputs:\n";
  for (const auto& out : e.outputs()) {
    const kiln::Tensor& t = outs.at(out.name);
    os << "  " << std::left << std::setw(w) << out.name << "  " << t.type_str() << "  " << tensor_summary(t) << "\n";
  }
  os << "latency: " << std::fixed << std::setprecision(3) << ms << " ms (one run, no warm-up; see kiln bench)\n"
     << std::defaultfloat;
  if (!a.output_dir.empty()) save_outputs(a, e, outs);
  if (!a.expect_dir.empty()) expect(a, e, outs);
  return 0;
}

}  // namespace

Command register_run(CLI::App& parent) {
  auto args = std::make_shared<RunArgs>();
  CLI::App* sub = parent.add_subcommand("run", "Run a plan (or build and run an ONNX model) once and show the outputs");
  RunArgs& a = *args;
  sub->add_option("file", a.path, "Plan file, or ONNX model (.onnx) to build on the fly");
  sub->add_option("--checkpoint", a.checkpoint,
                  "Run an EngineBackend checkpoint folder instead (loaded, verified, deployed on --device or the "
                  "device it was built for)");
  sub->add_option("--inputs", a.inputs_dir, "Folder with input_0.pb, input_1.pb, ... (ONNX test-data layout)");
  sub->add_option("--input", a.input_files, "One input from a file: name=path.npy (or .pb); repeatable")
      ->allow_extra_args(false);
  sub->add_option("--shapes", a.shapes, "Shapes of random inputs, e.g. x:1x3x224x224 (default: profile 0's opt)")
      ->allow_extra_args(false);
  sub->add_option("--seed", a.seed, "Seed of the random inputs (default 0)");
  sub->add_option("--int-range", a.int_range, "Random integer inputs from [LO, HI) (default 0:10)");
  sub->add_option("--output-dir", a.output_dir, "Save every output into this folder");
  sub->add_option("--format", a.format, "Output file format: npy (name.npy) or pb (output_N.pb)")
      ->check(CLI::IsMember({"npy", "pb"}));
  sub->add_option("--expect", a.expect_dir,
                  "Compare with output_N.pb in this folder (exit code Correctness on mismatch)");
  auto* rtol = sub->add_option("--rtol", a.rtol, "Relative tolerance for --expect (default by precision: fp32 1e-4)")
                   ->check(CLI::NonNegativeNumber);
  auto* atol = sub->add_option("--atol", a.atol, "Absolute tolerance for --expect (default by precision: fp32 1e-5)")
                   ->check(CLI::NonNegativeNumber);
  sub->add_option("--l2", a.l2, "Compare float outputs by relative L2 error with this bound instead")
      ->check(CLI::NonNegativeNumber)
      ->excludes(rtol)
      ->excludes(atol);
  add_build_options(sub, a.b, false);
  return {sub, [args, sub] { return run_run(*args, *sub); }};
}

}  // namespace kiln_cli
