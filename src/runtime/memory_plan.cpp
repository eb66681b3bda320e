#include "runtime/memory_plan.h"

#include <algorithm>
#include <numeric>

namespace kiln::runtime {

MemoryPlan plan_memory(const std::vector<BufferRequest>& requests) {
  MemoryPlan plan;
  const size_t n = requests.size();
  plan.offsets.assign(n, 0);
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (requests[a].bytes != requests[b].bytes) return requests[a].bytes > requests[b].bytes;
    return requests[a].first < requests[b].first;
  });
  struct Placed {
    size_t offset, size;
    int64_t first, last;
  };
  std::vector<Placed> placed;
  std::vector<std::pair<size_t, size_t>> busy;  // [begin, end) of placed buffers alive with the current one
  for (size_t idx : order) {
    const BufferRequest& r = requests[idx];
    const size_t size = align_up(r.bytes);
    plan.sum += size;
    if (size == 0) continue;
    busy.clear();
    for (const Placed& p : placed)
      if (p.first <= r.last && r.first <= p.last) busy.emplace_back(p.offset, p.offset + p.size);
    std::sort(busy.begin(), busy.end());
    // Best fit: the smallest gap between busy ranges that holds `size`; else the end of the last busy range.
    size_t best = SIZE_MAX, best_gap = SIZE_MAX, cursor = 0;
    for (const auto& [b, e] : busy) {
      if (b > cursor && b - cursor >= size && b - cursor < best_gap) {
        best = cursor;
        best_gap = b - cursor;
      }
      cursor = std::max(cursor, e);
    }
    if (best == SIZE_MAX) best = cursor;
    plan.offsets[idx] = best;
    placed.push_back({best, size, r.first, r.last});
    plan.total = std::max(plan.total, best + size);
  }
  return plan;
}

bool plan_is_valid(const std::vector<BufferRequest>& requests, const MemoryPlan& plan) {
  if (plan.offsets.size() != requests.size()) return false;
  for (size_t i = 0; i < requests.size(); ++i) {
    const size_t si = align_up(requests[i].bytes);
    if (plan.offsets[i] % kArenaAlignment != 0 || plan.offsets[i] + si > plan.total) return false;
    for (size_t j = i + 1; j < requests.size(); ++j) {
      const size_t sj = align_up(requests[j].bytes);
      if (si == 0 || sj == 0) continue;
      const bool live = requests[i].first <= requests[j].last && requests[j].first <= requests[i].last;
      const bool overlap = plan.offsets[i] < plan.offsets[j] + sj && plan.offsets[j] < plan.offsets[i] + si;
      if (live && overlap) return false;
    }
  }
  return true;
}

}  // namespace kiln::runtime
