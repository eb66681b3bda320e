// kiln CLI — shared declarations. The CLI parses arguments, calls the public kiln API and prints;
// everything an engine does lives in the library.
#pragma once
#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "kiln/io.h"  // not in the umbrella header (yet)
#include "kiln/kiln.h"

namespace kiln_cli {

// ---- commands (cmd_*.cpp) -------------------------------------------------------------------------
// A registered subcommand and the function that runs it after parsing (returns the exit code).
struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};
Command register_build(CLI::App& parent);
Command register_run(CLI::App& parent);
Command register_bench(CLI::App& parent);
Command register_inspect(CLI::App& parent);
Command register_devices(CLI::App& parent);
// Inputs, outputs and profiles of an engine, indented, one per line (cmd_inspect.cpp; build uses it too).
void print_engine_io(std::ostream& os, const kiln::Engine& engine);

// ---- parsing (shapes.cpp) -------------------------------------------------------------------------
// Input name -> concrete shape, e.g. from "x:1x3x224x224,mask:1x128".
using ShapeMap = std::map<std::string, kiln::Shape>;

// Parses "name:DxDxD[,name:DxD...]" ("name:" alone is a scalar). The name is split at the last ':',
// so "input:0:1x3" names "input:0". Throws InvalidArgument naming `flag` and the bad token.
ShapeMap parse_shapes(const std::string& text, const std::string& flag);
// "1x3x224x224"
std::string dims_str(const kiln::Shape& s);
// "4096", "64K", "512MiB", "2G" (binary multiples). Throws InvalidArgument.
size_t parse_bytes(const std::string& text, const std::string& flag);
// "cpu", "cuda", "cuda:N" (the --target / --device flag). Throws InvalidArgument.
void parse_device(const std::string& text, kiln::Target* target, int* device);
// For a CUDA target, before any work (cmd_devices.cpp): Unsupported when this kiln was built without CUDA,
// InvalidArgument when no CUDA device is visible or `device` is not one of them. Nothing for the CPU.
void require_device(kiln::Target target, int device);

// The shape flags of one profile, before they are matched against a model's inputs.
struct ProfileSpec {
  ShapeMap min, opt, max, fixed;  // fixed: --shapes (min = opt = max)
};
// The CLI options whose occurrences are grouped into profiles; `shapes` may be null (run/bench, where
// --shapes gives the shapes to run with instead).
struct ShapeFlags {
  CLI::Option* min = nullptr;
  CLI::Option* opt = nullptr;
  CLI::Option* max = nullptr;
  CLI::Option* shapes = nullptr;
  CLI::Option* profile = nullptr;
};
// Walks the command line in order: shape flags before the first --profile form profile 0, each
// --profile starts a new profile. Throws InvalidArgument on bad strings, repeated inputs, empty profiles.
std::vector<ProfileSpec> collect_profiles(const CLI::App& sub, const ShapeFlags& flags);
// Turns specs into kiln::Profile for a model: missing opt = max (else min), missing min/max = opt;
// fully static inputs the user did not name get their fixed shape.
std::vector<kiln::Profile> make_profiles(const std::vector<ProfileSpec>& specs,
                                         const std::vector<kiln::TensorInfo>& inputs);

// ---- building (common.cpp) ------------------------------------------------------------------------
struct BuildOptions {
  std::vector<std::string> min_shapes, opt_shapes, max_shapes, shapes;
  bool fp16 = false, bf16 = false, fp32 = false, no_tf32 = false, freeze_defaults = false;
  bool low_precision_io = false;       // BuildConfig::keep_io_types = false
  std::vector<std::string> keep_fp32;  // BuildConfig::keep_fp32
  int opt_level = 3;
  std::string workspace, timing_cache, device = "cpu";
  ShapeFlags flags;
  std::vector<ProfileSpec> specs;  // filled by prepare()
  kiln::Target target = kiln::Target::Cpu;
  int device_index = 0;
  size_t workspace_bytes = 0;
  // Parses every string option (shapes, device, workspace) so syntax errors come before any work.
  void prepare(const CLI::App& sub);
};
// Registers the build flags on `sub`. With `shapes_define_profile` false, --shapes is not registered
// here (run/bench register it as the shapes to run with).
void add_build_options(CLI::App* sub, BuildOptions& o, bool shapes_define_profile);
// BuildConfig for `model`. `fallback` (run/bench: the shapes they will run with) becomes the single
// profile when no profile flags were given.
kiln::BuildConfig make_build_config(const BuildOptions& o, const kiln::Model& model, const ShapeMap* fallback);
// build_engine with a progress display on stderr; `seconds` receives the build time.
kiln::Engine build_with_progress(const kiln::Model& model, kiln::BuildConfig config, double* seconds);

// What run/bench/inspect were given: a plan, or an ONNX model that is built on the fly.
struct Source {
  std::string path;
  std::optional<kiln::Model> model;  // set for a .onnx file until built
  kiln::Engine engine;               // set for a plan, or after build()
  double build_seconds = -1;         // >= 0 when built here
  // Checks the file and loads the model or the plan.
  void open(const std::string& p);
  // The inputs as the model or the plan declares them.
  const std::vector<kiln::TensorInfo>& inputs() const;
  // For a model: builds it (progress on stderr); `shapes` are the shapes to run with. For a plan: warns
  // when build options were given, since they cannot change a built plan.
  void build(const CLI::App& sub, const BuildOptions& o, const ShapeMap& shapes);
};

// True when `path` names an ONNX model (".onnx", any case); anything else is read as a plan.
bool is_model_path(const std::string& path);
// Io error unless `path` is an existing regular file.
void require_file(const std::string& path);
// Io error unless a file can be created at `path` (its folder exists and is writable, the path is not
// a folder). Leaves nothing behind.
void require_writable(const std::string& path);
// Creates `dir` (and parents) or throws Io.
void ensure_dir(const std::string& dir);
size_t file_size_or_zero(const std::string& path);
std::string human_bytes(size_t n);

// ---- checkpoints (checkpoint.cpp) -----------------------------------------------------------------
struct CheckpointOptions {
  std::string checkpoint;                // --checkpoint DIR
  std::vector<std::string> sample_dirs;  // --sample DIR (repeatable)
  std::string cache_dir;                 // --cache-dir DIR ("" = a temporary folder, removed afterwards)
  bool samples_used = false;             // --samples-used: one exact profile per distinct sample shape
};
// One sample from a folder: input_N.pb (bound by TensorProto name, else by position) and <input>.npy files.
kiln::Sample load_sample_dir(const std::string& dir, const std::vector<kiln::TensorInfo>& inputs);
// Builds `model` through kiln::EngineBackend with the build flags as its config (profile flags -> a profile list,
// else Single or, with --samples-used, SamplesUsed from the samples) and saves the checkpoint. Without --sample,
// random samples at the profile shapes feed the correctness gate. Returns the backend (ACTIVE, or the checkpoint
// when the cache was temporary).
kiln::EngineBackend build_checkpoint(const kiln::Model& model, const BuildOptions& o, const CLI::App& sub,
                                     const CheckpointOptions& c);
void print_checkpoint_summary(std::ostream& os, const kiln::EngineBackend& b, const std::string& dir);

// ---- tensors (tensors.cpp) ------------------------------------------------------------------------
struct RandomSpec {
  uint64_t seed = 0;
  int64_t int_lo = 0, int_hi = 10;  // integer inputs uniform in [int_lo, int_hi)
};
// Deterministic across platforms: floats uniform in [-1, 1], integers in [lo, hi), bool 0/1.
kiln::Tensor random_tensor(kiln::DType dtype, const kiln::Shape& shape, std::mt19937_64& rng, const RandomSpec& spec);
// The shape an input runs with: `shapes` if it names the input (rank checked), else the profile's opt.
kiln::Shape run_shape(const kiln::TensorInfo& in, const kiln::Profile& p0, const ShapeMap& shapes);
// InvalidArgument when `shapes` names something that is not an input.
void check_input_names(const ShapeMap& shapes, const std::vector<kiln::TensorInfo>& inputs, const std::string& flag);
// Random tensors for every input not in `given`, in input order from one generator.
kiln::TensorMap complete_inputs(const kiln::Engine& engine, const kiln::TensorMap& given, const ShapeMap& shapes,
                                const RandomSpec& spec);
// "int_lo:int_hi" -> spec fields. Throws InvalidArgument.
void parse_int_range(const std::string& text, RandomSpec* spec);
// Statistics over all elements: count, min, max, mean, NaN/Inf counts, first values.
std::string tensor_summary(const kiln::Tensor& t, size_t first_n = 6);
// A file-name-safe version of a tensor name ([A-Za-z0-9._-], others -> '_').
std::string sanitize_name(const std::string& name);
// A float tensor converted to another float dtype (round to nearest even); InvalidArgument for non-float types.
kiln::Tensor convert_float(const kiln::Tensor& t, kiln::DType to);
// Reads a tensor from .npy or .pb (by extension).
kiln::Tensor load_tensor_file(const std::string& path, std::string* pb_name = nullptr);

}  // namespace kiln_cli
