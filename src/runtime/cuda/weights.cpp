#include "runtime/cuda/weights.h"

#include <algorithm>
#include <vector>

#include "runtime/memory_plan.h"
#include "util/log.h"

namespace kiln::runtime::cuda {

void* DeviceWeights::find(const Tensor& t) const {
  auto it = by_host.find(t.data());
  return it == by_host.end() ? nullptr : it->second;
}

namespace {

void collect(const ir::Graph& g, std::vector<const Tensor*>& out) {
  for (const auto& [name, t] : g.initializers) out.push_back(&t);
  for (const auto& [name, t] : g.input_defaults) out.push_back(&t);
  for (const auto& n : g.nodes)
    for (const auto& [k, a] : n.attrs)
      if (const auto* sub = std::get_if<ir::GraphPtr>(&a))
        if (*sub) collect(**sub, out);
}

std::shared_ptr<DeviceWeights> upload(const detail::EngineImpl& e, int device) {
  auto w = std::make_shared<DeviceWeights>();
  w->device = device;
  std::vector<const Tensor*> all;
  collect(e.graph, all);
  // One device copy per host buffer; two tensors starting at the same address get the longer one's bytes.
  std::unordered_map<const void*, size_t> longest;
  std::vector<const void*> order;
  for (const Tensor* t : all) {
    if (t->empty() || t->nbytes() == 0) continue;
    auto [it, fresh] = longest.emplace(t->data(), t->nbytes());
    if (fresh) order.push_back(t->data());
    else it->second = std::max(it->second, t->nbytes());
  }
  std::vector<std::pair<const void*, size_t>> placed;
  size_t total = 0;
  for (const void* p : order) {
    placed.emplace_back(p, total);
    total += align_up(longest.at(p));
  }
  w->bytes = total;
  w->block.allocate(total, "the engine's weights");
  for (const auto& [p, off] : placed) {
    KILN_CU(cudaMemcpy(w->block.bytes() + off, p, longest.at(p), cudaMemcpyHostToDevice));
    w->by_host.emplace(p, w->block.bytes() + off);
  }
  KILN_DEBUG("cuda:" << device << ": uploaded " << placed.size() << " weights, " << total << " bytes");
  return w;
}

}  // namespace

std::shared_ptr<const DeviceWeights> engine_weights(const detail::EngineImpl& e, int device) {
  std::lock_guard<std::mutex> lock(e.device_cache.mu);
  auto& slot = e.device_cache.per_device[device];
  if (!slot) slot = upload(e, device);
  return std::static_pointer_cast<const DeviceWeights>(slot);
}

}  // namespace kiln::runtime::cuda
