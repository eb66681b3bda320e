// Internal to the C API (src/capi/): the handles behind the opaque C types and the exception barrier.
#pragma once
#include <chrono>
#include <set>
#include <string>
#include <vector>

#include "kiln/builder.h"
#include "kiln/c_api.h"
#include "kiln/engine.h"
#include "util/error.h"

struct kiln_build_config {
  kiln::BuildConfig config;
};

struct kiln_engine {
  kiln::Engine engine;
  kiln_build_stats stats{};
  std::string timing_cache;  // stats.timing_cache points here
  std::string target, precision;
  std::vector<std::vector<int64_t>> in_dims, out_dims;
};

struct kiln_context {
  explicit kiln_context(kiln::ExecutionContext c) : ctx(std::move(c)) {}
  kiln::ExecutionContext ctx;
  kiln::TensorMap last;         // the last host run's outputs
  mutable std::string device;  // kiln_context_get_stats' device string
};

namespace kiln::capi {

// This thread's last error message (kiln_last_error).
std::string& last_error();

// Runs `f`; a kiln::Error becomes its exit code, anything else KILN_ERR_INTERNAL (bad_alloc: out of memory).
// The message is prefixed with the entry point's name.
template <typename F>
int guarded(const char* fn, F&& f) noexcept {
  try {
    f();
    return KILN_OK;
  } catch (const kiln::Error& e) {
    last_error() = std::string(fn) + ": " + e.what();
    return kiln::exit_code(e.code());
  } catch (const std::bad_alloc&) {
    last_error() = std::string(fn) + ": out of host memory";
    return KILN_ERR_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    last_error() = std::string(fn) + ": internal error: " + e.what();
    return KILN_ERR_INTERNAL;
  } catch (...) {
    last_error() = std::string(fn) + ": internal error (unknown exception)";
    return KILN_ERR_INTERNAL;
  }
}

template <typename T>
void need(const T* p, const char* what) {
  if (p == nullptr) KILN_THROW(InvalidArgument, what << " is NULL");
}

bool valid_dtype(int d);
// Names of `infos`, comma-separated, for messages.
std::string names_of(const std::vector<kiln::TensorInfo>& infos);

}  // namespace kiln::capi
