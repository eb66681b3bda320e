// kiln CLI — build flags, build progress display and file helpers shared by the commands.
#include "common.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iomanip>
#include <sstream>

namespace fs = std::filesystem;

namespace kiln_cli {
namespace {
[[noreturn]] void io_error(const std::string& msg) {
  throw kiln::Error(kiln::ErrorCode::Io, msg);
}
}  // namespace

// ---- build flags ------------------------------------------------------------------------------------

void add_build_options(CLI::App* sub, BuildOptions& o, bool shapes_define_profile) {
  const std::string g = "Build options";
  o.flags.min = sub->add_option("--min-shapes", o.min_shapes,
                                "Smallest shapes of the current profile, e.g. x:1x3x224x224,mask:1x8")
                    ->allow_extra_args(false)
                    ->group(g);
  o.flags.opt = sub->add_option("--opt-shapes", o.opt_shapes, "Shapes the current profile is tuned for (default: max)")
                    ->allow_extra_args(false)
                    ->group(g);
  o.flags.max = sub->add_option("--max-shapes", o.max_shapes, "Largest shapes of the current profile")
                    ->allow_extra_args(false)
                    ->group(g);
  if (shapes_define_profile)
    o.flags.shapes = sub->add_option("--shapes", o.shapes, "Fixed shapes of the current profile (min = opt = max)")
                         ->allow_extra_args(false)
                         ->group(g);
  o.flags.profile = sub->add_flag("--profile")
                        ->description(
                            "Start a new optimization profile; the shape flags that follow "
                            "belong to it (flags before the first --profile form profile 0)")
                        ->group(g);
  auto* f16 = sub->add_flag("--fp16", o.fp16, "Build an FP16 engine (autocast)")->group(g);
  auto* b16 = sub->add_flag("--bf16", o.bf16, "Build a BF16 engine (autocast)")->group(g);
  auto* f32 = sub->add_flag("--fp32", o.fp32, "Build an FP32 engine (default)")->group(g);
  f16->excludes(b16)->excludes(f32);
  b16->excludes(f32);
  sub->add_option("--keep-fp32", o.keep_fp32,
                  "With --fp16/--bf16: op types or node names kept in FP32 (comma-separated, repeatable)")
      ->delimiter(',')
      ->allow_extra_args(false)
      ->group(g);
  sub->add_flag("--low-precision-io", o.low_precision_io,
                "With --fp16/--bf16: FP32 inputs and outputs take the low type too (default: they stay FP32)")
      ->group(g);
  sub->add_flag("--no-tf32", o.no_tf32, "Keep FP32 GEMM-like ops out of TF32 on CUDA")->group(g);
  sub->add_flag("--freeze-input-defaults", o.freeze_defaults,
                "Treat IR>=4 inputs that have initializer defaults as constants (they stop being inputs)")
      ->group(g);
  sub->add_option("--opt-level", o.opt_level, "Optimization level 0..5 (default 3)")->group(g);
  sub->add_option("--workspace", o.workspace, "Per-node scratch memory cap in bytes (K/M/G suffixes; 0 = none)")
      ->group(g);
  sub->add_option("--timing-cache", o.timing_cache, "Timing cache file to load and update")->group(g);
  sub->add_option("--target,--device", o.device,
                  "Where the engine runs: cpu (default), cuda (= cuda:0) or cuda:N (see `kiln devices`)")
      ->group(g);
}

void BuildOptions::prepare(const CLI::App& sub) {
  if ((low_precision_io || !keep_fp32.empty()) && !fp16 && !bf16)
    throw kiln::Error(kiln::ErrorCode::InvalidArgument, "--keep-fp32 and --low-precision-io need --fp16 or --bf16");
  specs = collect_profiles(sub, flags);
  parse_device(device, &target, &device_index);
  require_device(target, device_index);
  workspace_bytes = workspace.empty() ? 0 : parse_bytes(workspace, "--workspace");
}

kiln::BuildConfig make_build_config(const BuildOptions& o, const kiln::Model& model, const ShapeMap* fallback) {
  kiln::BuildConfig c;
  c.target = o.target;
  c.device = o.device_index;
  c.precision = o.fp16 ? kiln::Precision::FP16 : o.bf16 ? kiln::Precision::BF16 : kiln::Precision::FP32;
  c.enable_tf32 = !o.no_tf32;
  c.keep_io_types = !o.low_precision_io;
  c.keep_fp32 = o.keep_fp32;
  c.freeze_input_defaults = o.freeze_defaults;
  c.optimization_level = o.opt_level;
  c.workspace_size = o.workspace_bytes;
  c.timing_cache_path = o.timing_cache;
  if (!o.specs.empty()) {
    c.profiles = make_profiles(o.specs, model.inputs());
  } else if (fallback && !fallback->empty()) {
    ProfileSpec s;
    s.fixed = *fallback;
    c.profiles = make_profiles({s}, model.inputs());
  }
  return c;
}

// ---- progress ---------------------------------------------------------------------------------------
namespace {
// One updating line on a terminal; on a pipe or file, a line once a build has taken 2 s, then every 5 s.
class Progress {
 public:
  Progress() : tty_(::isatty(::fileno(stderr)) != 0), start_(Clock::now()), last_(start_) {}
  void update(double f, const std::string& step) {
    auto now = Clock::now();
    double elapsed = std::chrono::duration<double>(now - start_).count();
    int pct = static_cast<int>(std::clamp(f, 0.0, 1.0) * 100.0 + 0.5);
    const double since_last = std::chrono::duration<double>(now - last_).count();
    if (tty_) {
      // Quick builds show nothing; slower ones redraw at most ten times a second.
      if (elapsed < 0.25 || (shown_ && since_last < 0.1 && pct < 100)) return;
      last_ = now;
      const int width = 24;
      int fill = pct * width / 100;
      std::fprintf(stderr, "\r\033[Kkiln: building [%s%s] %3d%% %s (%.1f s)", std::string(fill, '=').c_str(),
                   std::string(width - fill, ' ').c_str(), pct, step.c_str(), elapsed);
      std::fflush(stderr);
      shown_ = true;
    } else if (elapsed >= 2.0 && (!printed_ || since_last >= 5.0)) {
      std::fprintf(stderr, "kiln: building %3d%% %s (%.1f s)\n", pct, step.c_str(), elapsed);
      last_ = now;
      printed_ = true;
    }
  }
  // Erases the progress line so a log message or the summary starts on a clean line.
  void clear() {
    if (shown_) {
      std::fprintf(stderr, "\r\033[K");
      std::fflush(stderr);
      shown_ = false;
    }
  }

 private:
  using Clock = std::chrono::steady_clock;
  bool tty_, shown_ = false, printed_ = false;
  Clock::time_point start_, last_;
};

// Restores the default log sink when a build ends (or throws).
struct SinkGuard {
  ~SinkGuard() { kiln::set_log_sink(nullptr); }
};
}  // namespace

kiln::Engine build_with_progress(const kiln::Model& model, kiln::BuildConfig config, double* seconds) {
  Progress progress;
  config.progress = [&progress](double f, const std::string& step) { progress.update(f, step); };
  SinkGuard guard;
  kiln::set_log_sink([&progress](kiln::LogLevel l, const std::string& msg) {
    progress.clear();
    std::fprintf(stderr, "kiln [%s] %s\n", kiln::log_level_name(l), msg.c_str());
  });
  auto t0 = std::chrono::steady_clock::now();
  try {
    kiln::Engine e = kiln::build_engine(model, config);
    progress.clear();
    if (seconds) *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return e;
  } catch (...) {
    progress.clear();
    throw;
  }
}

// ---- plan or model ----------------------------------------------------------------------------------

void Source::open(const std::string& p) {
  path = p;
  require_file(path);
  if (is_model_path(path))
    model.emplace(kiln::Model::load(path));
  else
    engine = kiln::Engine::load(path);
}

const std::vector<kiln::TensorInfo>& Source::inputs() const {
  return model ? model->inputs() : engine.inputs();
}

void Source::build(const CLI::App& sub, const BuildOptions& o, const ShapeMap& shapes) {
  if (!model) {
    auto given =
        sub.get_options([](const CLI::Option* opt) { return opt->get_group() == "Build options" && opt->count() > 0; });
    if (!given.empty())
      kiln::log(kiln::LogLevel::Warning, "build options (" + given.front()->get_name() +
                                             (given.size() > 1 ? ", ..." : "") + ") are ignored: '" + path +
                                             "' is an already built plan");
    return;
  }
  double s = 0;
  engine = build_with_progress(*model, make_build_config(o, *model, &shapes), &s);
  build_seconds = s;
  model.reset();
}

// ---- files ------------------------------------------------------------------------------------------

bool is_model_path(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".onnx";
}

void require_file(const std::string& path) {
  std::error_code ec;
  auto st = fs::status(path, ec);
  if (ec || !fs::exists(st)) io_error("cannot open '" + path + "': no such file");
  if (fs::is_directory(st)) io_error("cannot read '" + path + "': is a directory");
  if (::access(path.c_str(), R_OK) != 0) io_error("cannot read '" + path + "': " + std::strerror(errno));
}

void require_writable(const std::string& path) {
  if (path.empty()) io_error("output path is empty");
  std::error_code ec;
  if (fs::is_directory(path, ec)) io_error("cannot write '" + path + "': is a directory");
  fs::path dir = fs::path(path).parent_path();
  if (dir.empty()) dir = ".";
  if (!fs::exists(dir, ec)) io_error("cannot write '" + path + "': folder '" + dir.string() + "' does not exist");
  if (!fs::is_directory(dir, ec)) io_error("cannot write '" + path + "': '" + dir.string() + "' is not a folder");
  // Probe with a temporary file: permission bits alone do not tell (root, read-only mounts, /proc).
  std::string probe = path + ".tmp." + std::to_string(::getpid()) + ".probe";
  int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) io_error("cannot write '" + path + "': " + std::strerror(errno));
  ::close(fd);
  ::unlink(probe.c_str());
}

void ensure_dir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir))
    io_error("cannot create folder '" + dir + "': " + (ec ? ec.message() : std::string("not a folder")));
}

size_t file_size_or_zero(const std::string& path) {
  std::error_code ec;
  auto n = fs::file_size(path, ec);
  return ec ? 0 : static_cast<size_t>(n);
}

std::string human_bytes(size_t n) {
  std::ostringstream os;
  if (n < 1024) {
    os << n << " B";
  } else {
    const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
    double v = static_cast<double>(n) / 1024.0;
    int u = 0;
    while (v >= 1024.0 && u < 3) v /= 1024.0, ++u;
    os << std::fixed << std::setprecision(v < 10 ? 2 : 1) << v << " " << units[u] << " (" << n << " B)";
  }
  return os.str();
}

}  // namespace kiln_cli
