// Profile derivation, in AITune's order of precedence: declared dimension ranges, a user list, Single, SamplesUsed.
#include "backend/profile_derivation.h"

#include <set>
#include <sstream>

#include "util/error.h"
#include "util/log.h"

namespace kiln::backend {
namespace profile_derivation_impl {

std::string name_list(const std::vector<std::string>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + ("'" + v[i] + "'");
  return s + "]";
}

void check_user_profiles(const std::vector<Profile>& list, const GraphSpec& spec) {
  std::vector<std::string> want;
  for (const auto& t : spec.inputs) want.push_back(t.name);
  std::set<std::string> want_set(want.begin(), want.end());
  for (size_t i = 0; i < list.size(); ++i) {
    std::vector<std::string> have = list[i].input_names(), missing, unknown;
    std::set<std::string> have_set(have.begin(), have.end());
    for (const auto& n : want)
      if (!have_set.count(n)) missing.push_back(n);
    for (const auto& n : have)
      if (!want_set.count(n)) unknown.push_back(n);
    if (!missing.empty() || !unknown.empty())
      KILN_THROW(InvalidArgument, "profile " << i << " inputs " << name_list(have) << " do not match the model's tensor inputs "
                                             << name_list(want) << " (missing: " << name_list(missing)
                                             << ", unknown: " << name_list(unknown) << ").");
    for (const auto& t : spec.inputs)
      if (list[i].at(t.name).min.size() != t.axes.size())
        KILN_THROW(InvalidArgument, "profile " << i << ": input '" << t.name << "' has rank " << list[i].at(t.name).min.size()
                                               << ", the model's input has rank " << t.axes.size());
  }
}

bool uses_declared_dims(const GraphSpec& spec) {
  for (const auto& t : spec.inputs)
    for (size_t a = 0; a < t.axes.size(); ++a)
      if (t.axes[a] != AxisKind::Static && spec.declared(t.dims[a])) return true;
  return false;
}

Profile single_profile(const GraphSpec& spec) {
  Profile p;
  for (const auto& t : spec.inputs) {
    Shape mn, opt, mx;
    for (size_t a = 0; a < t.axes.size(); ++a) {
      if (t.axes[a] == AxisKind::Static) {
        mn.push_back(t.min_shape[a]), opt.push_back(t.min_shape[a]), mx.push_back(t.min_shape[a]);
        continue;
      }
      if (const DynamicDim* d = spec.declared(t.dims[a])) {
        if (t.min_shape[a] >= 0 && (t.min_shape[a] < d->min || t.max_shape[a] > d->max))
          KILN_THROW(InvalidArgument, "input '" << t.name << "' axis " << a << " ('" << d->name << "'): the samples have sizes "
                                                << t.min_shape[a] << ".." << t.max_shape[a]
                                                << ", outside the declared range " << d->min << ".." << d->max);
        mn.push_back(d->min), opt.push_back(d->opt ? *d->opt : d->max), mx.push_back(d->max);
        continue;
      }
      if (t.min_shape[a] < 0)
        KILN_THROW(InvalidArgument, "input '" << t.name << "' axis " << a << " ('" << t.dims[a]
                                              << "') is dynamic, and neither a sample nor a declared range gives its size");
      // AITune's rule: opt = max, the largest shape seen.
      mn.push_back(t.min_shape[a]), opt.push_back(t.max_shape[a]), mx.push_back(t.max_shape[a]);
    }
    p.add_input_shape(t.name, mn, opt, mx);
  }
  return p;
}

}  // namespace profile_derivation_impl

std::vector<Profile> derive_profiles(const EngineBackendConfig& config, const GraphSpec& spec,
                                     const std::vector<Sample>& samples) {
  using namespace profile_derivation_impl;
  const bool declared = uses_declared_dims(spec);
  if (const auto* list = std::get_if<std::vector<Profile>>(&config.profiles)) {
    if (declared)
      KILN_THROW(InvalidArgument, "profiles cannot be provided together with declared dynamic dimension ranges.");
    check_user_profiles(*list, spec);
    return *list;
  }
  if (spec.inputs.empty()) return {};
  const ProfileMode mode = std::get<ProfileMode>(config.profiles);
  if (declared || mode == ProfileMode::Single) {
    if (declared && mode == ProfileMode::SamplesUsed)
      KILN_INFO("profiles=samples_used is ignored: the graph spec declares dimension ranges, which make one profile");
    return {single_profile(spec)};
  }
  if (samples.empty())
    KILN_THROW(InvalidArgument, "profiles=samples_used needs at least one sample to take shapes from");
  std::vector<Profile> out;
  for (size_t s = 0; s < samples.size(); ++s) {
    Profile p;
    for (const auto& t : spec.inputs) {
      auto it = samples[s].find(t.name);
      if (it == samples[s].end()) KILN_THROW(InvalidArgument, "sample " << s << ": input '" << t.name << "' is missing");
      const Shape& sh = it->second.shape();
      p.add_input_shape(t.name, sh, sh, sh);
    }
    bool dup = false;
    for (const auto& q : out) dup |= q == p;
    if (!dup) out.push_back(p);
  }
  return out;
}

}  // namespace kiln::backend
