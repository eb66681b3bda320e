// EngineBackend: AITune's lifecycle state machine and thread-safe inference on pooled execution contexts.
#include "kiln/backend.h"

#include "backend/backend_impl.h"
#include "backend/device_spec.h"
#include "backend/engine_cache.h"
#include "backend/nvtx.h"
#include "backend/profile_derivation.h"
#include "backend/profile_json.h"
#include "backend/testing_hooks.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/log.h"

namespace kiln {

const char* backend_state_name(BackendState s) {
  switch (s) {
    case BackendState::Init: return "INIT";
    case BackendState::Active: return "ACTIVE";
    case BackendState::Inactive: return "INACTIVE";
    case BackendState::CheckpointLoaded: return "CHECKPOINT_LOADED";
    case BackendState::Deployed: return "DEPLOYED";
  }
  return "?";
}

EngineBackend::EngineBackend(EngineBackendConfig config) : impl_(std::make_unique<Impl>()) {
  config.validate();
  impl_->config = std::move(config);
}
EngineBackend::~EngineBackend() {
  if (impl_) {
    // Wait for inferences still running on other threads before the state goes away.
    std::unique_lock<std::mutex> lk(impl_->mu);
    impl_->idle_cv.wait(lk, [this] { return impl_->in_flight == 0; });
  }
}
EngineBackend::EngineBackend(EngineBackend&&) noexcept = default;
EngineBackend& EngineBackend::operator=(EngineBackend&&) noexcept = default;

#define KILN_BACKEND_IMPL() \
  if (!impl_) KILN_THROW(InvalidState, "EngineBackend was moved from")

void EngineBackend::Impl::start(Engine e, const std::string& dev) {
  backend::DeviceSpec d = backend::parse_device(dev);
  auto sampler = std::make_unique<backend::MemorySampler>(backend::memory_device(d), 2);
  std::lock_guard<std::mutex> lk(mu);
  engine = std::move(e);
  pool.clear();
  device = d.str();
  inferences = 0;
  infer_sampler = std::move(sampler);
}

void EngineBackend::Impl::load_and_start(const std::string& dev) {
  backend::DeviceSpec d = backend::parse_device(dev);
  backend::assert_device(d);
  Engine e;
  {
    backend::NvtxRange r("Loading engine file", backend::NvtxColor::Step);
    e = backend::load_plan_verified(engine_path, engine_sha256, nullptr);
  }
  const bool plan_cpu = e.target() == "cpu";
  if (plan_cpu != (d.target == Target::Cpu))
    KILN_THROW(InvalidArgument, "the plan '" << engine_path << "' was built for target " << e.target()
                                             << " and cannot run on device " << d.str());
  // profiles.json as AITune reloads it: unreadable means an empty list (the engine keeps its own profiles).
  try {
    profiles = backend::profiles_from_json(backend::pyjson::parse(util::read_file(profiles_path), profiles_path),
                                           profiles_path);
  } catch (const Error& err) {
    KILN_DEBUG("profiles.json not loaded (" << err.what() << "): using the engine's profiles for selection");
    profiles.clear();
  }
  start(std::move(e), d.str());
}

void EngineBackend::activate() {
  KILN_BACKEND_IMPL();
  Impl& m = *impl_;
  std::lock_guard<std::mutex> life(m.life_mu);
  backend::NvtxRange r("activate", backend::NvtxColor::Activate);
  BackendState s = state();
  if (s == BackendState::Init) KILN_THROW(InvalidState, "Cannot activate backend " << name() << ", backend should be built first");
  if (s == BackendState::Deployed) KILN_THROW(InvalidState, "Cannot activate backend " << name() << ", backend is already deployed");
  if (s == BackendState::Active) return;
  m.load_and_start(m.device);
  std::lock_guard<std::mutex> lk(m.mu);
  m.state = BackendState::Active;
}

void EngineBackend::deactivate() {
  KILN_BACKEND_IMPL();
  Impl& m = *impl_;
  std::lock_guard<std::mutex> life(m.life_mu);
  backend::NvtxRange r("deactivate", backend::NvtxColor::Deactivate);
  std::unique_ptr<backend::MemorySampler> sampler;
  {
    std::unique_lock<std::mutex> lk(m.mu);
    switch (m.state) {
      case BackendState::Init:
        KILN_THROW(InvalidState, "Cannot deactivate backend " << name() << ", backend should be built first");
      case BackendState::Deployed:
        KILN_THROW(InvalidState, "Cannot deactivate backend " << name() << ", backend is already deployed");
      case BackendState::CheckpointLoaded:
        // AITune says "has already been deployed" here, which misstates the state.
        KILN_THROW(InvalidState, "Cannot deactivate backend " << name()
                                                              << ", backend is loaded from a checkpoint and not active "
                                                                 "(deploy or activate it first)");
      case BackendState::Inactive: return;
      case BackendState::Active: break;
    }
    m.state = BackendState::Inactive;  // new infer() calls are refused from here on
    m.idle_cv.wait(lk, [&m] { return m.in_flight == 0; });
    m.pool.clear();
    m.engine.reset();
    if (m.infer_sampler) {
      m.infer_peak_rss = m.infer_sampler->peak_rss();
      m.infer_peak_device = m.infer_sampler->peak_device();
    }
    sampler = std::move(m.infer_sampler);
  }
  sampler.reset();  // joins the sampler thread outside the lock
}

void EngineBackend::deploy(const std::optional<std::string>& device) {
  KILN_BACKEND_IMPL();
  Impl& m = *impl_;
  std::lock_guard<std::mutex> life(m.life_mu);
  backend::NvtxRange r("deploy", backend::NvtxColor::Activate);
  if (state() != BackendState::CheckpointLoaded)
    KILN_THROW(InvalidState, "Cannot deploy backend " << name() << ", backend should be loaded from a checkpoint");
  const std::string dev = device ? *device : m.device;
  if (dev.empty()) KILN_THROW(InvalidArgument, "Device is not set. Please set the device before deploying.");
  m.load_and_start(dev);
  std::lock_guard<std::mutex> lk(m.mu);
  m.state = BackendState::Deployed;
}

TensorMap EngineBackend::infer(const TensorMap& inputs) {
  KILN_BACKEND_IMPL();
  Impl& m = *impl_;
  std::unique_ptr<ExecutionContext> ctx;
  std::optional<Engine> engine;
  ContextOptions context_options;  // the backend's device cuda:N and use_cuda_graphs
  backend::MemorySampler* sampler = nullptr;
  {
    std::lock_guard<std::mutex> lk(m.mu);
    if (m.state != BackendState::Active && m.state != BackendState::Deployed)
      KILN_THROW(InvalidState, "Cannot run inference, backend " << name() << " should be activated first");
    if (!m.pool.empty()) {
      ctx = std::move(m.pool.back());
      m.pool.pop_back();
    } else {
      engine = m.engine;
      if (m.device.rfind("cuda:", 0) == 0) {
        context_options.device = std::stoi(m.device.substr(5));
        context_options.use_cuda_graphs = m.config.use_cuda_graphs;
      }
    }
    sampler = m.infer_sampler.get();
    m.max_in_flight = std::max(m.max_in_flight, ++m.in_flight);
  }
  // Returns the context to the pool and ends the in-flight count, also when the run throws. deactivate() waits for
  // in_flight == 0, so the engine and the sampler outlive every running call.
  struct Done {
    Impl& m;
    std::unique_ptr<ExecutionContext>& ctx;
    bool ok = false;
    ~Done() {
      std::lock_guard<std::mutex> lk(m.mu);
      if (ctx && m.engine) m.pool.push_back(std::move(ctx));
      --m.in_flight;
      if (ok) ++m.inferences;
      m.idle_cv.notify_all();
    }
  } done{m, ctx};
  backend::NvtxRange range("infer", backend::NvtxColor::Infer);
  if (!ctx) ctx = std::make_unique<ExecutionContext>(engine->create_context(context_options));
  backend::SampledScope scope(*sampler);
  backend::testing::run_infer_hook();
  TensorMap out = ctx->run(inputs);
  done.ok = true;
  return out;
}

std::vector<Profile> EngineBackend::get_profiles(const GraphSpec& spec, const std::vector<Sample>& samples) const {
  KILN_BACKEND_IMPL();
  return backend::derive_profiles(impl_->config, spec, samples);
}

std::string EngineBackend::key() const {
  KILN_BACKEND_IMPL();
  return name() + "_" + impl_->config.key();
}
std::string EngineBackend::describe() const {
  KILN_BACKEND_IMPL();
  return name() + "(" + impl_->config.describe() + ")";
}
std::string EngineBackend::device() const {
  KILN_BACKEND_IMPL();
  std::lock_guard<std::mutex> lk(impl_->mu);
  return impl_->device;
}
bool EngineBackend::is_active() const { return state() == BackendState::Active || state() == BackendState::Deployed; }
BackendState EngineBackend::state() const {
  KILN_BACKEND_IMPL();
  std::lock_guard<std::mutex> lk(impl_->mu);
  return impl_->state;
}
const EngineBackendConfig& EngineBackend::config() const {
  KILN_BACKEND_IMPL();
  return impl_->config;
}
const GraphSpec& EngineBackend::graph_spec() const {
  KILN_BACKEND_IMPL();
  return impl_->spec;
}
Engine EngineBackend::engine() const {
  KILN_BACKEND_IMPL();
  std::lock_guard<std::mutex> lk(impl_->mu);
  if (!impl_->engine) KILN_THROW(InvalidState, "backend " << name() << " has no engine loaded (state " << backend_state_name(impl_->state) << ")");
  return *impl_->engine;
}
std::string EngineBackend::engine_path() const {
  KILN_BACKEND_IMPL();
  return impl_->engine_path;
}
std::string EngineBackend::profiles_path() const {
  KILN_BACKEND_IMPL();
  return impl_->profiles_path;
}
const std::vector<Profile>& EngineBackend::profiles() const {
  KILN_BACKEND_IMPL();
  return impl_->profiles;
}

MemoryStats EngineBackend::memory_stats() const {
  KILN_BACKEND_IMPL();
  const Impl& m = *impl_;
  MemoryStats s;
  std::lock_guard<std::mutex> lk(m.mu);
  s.build_peak_rss_bytes = m.build_peak_rss;
  s.build_peak_device_bytes = m.build_peak_device;
  s.infer_peak_rss_bytes = m.infer_sampler ? m.infer_sampler->peak_rss() : m.infer_peak_rss;
  s.infer_peak_device_bytes = m.infer_sampler ? m.infer_sampler->peak_device() : m.infer_peak_device;
  s.process_peak_rss_bytes = backend::process_peak_rss_bytes();
  s.inferences = m.inferences;
  s.max_in_flight = m.max_in_flight;
  return s;
}

std::string EngineBackend::build_report() const {
  KILN_BACKEND_IMPL();
  std::lock_guard<std::mutex> lk(impl_->mu);
  return impl_->report_json;
}

}  // namespace kiln
