// Static memory planning for an activation arena: buffers with a size and a lifetime (the first and last step that
// touch them) get offsets in one block so that buffers alive at the same time never overlap. Pure host code (the
// CUDA executor plans its arena with it; tests run it on the CPU).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace kiln::runtime {

constexpr size_t kArenaAlignment = 256;

inline size_t align_up(size_t n, size_t a = kArenaAlignment) { return (n + a - 1) / a * a; }

struct BufferRequest {
  size_t bytes = 0;   // 0: needs no memory (gets offset 0)
  int64_t first = 0;  // first step that writes or reads it
  int64_t last = 0;   // last step that reads it (>= first)
};

struct MemoryPlan {
  std::vector<size_t> offsets;  // one per request, multiples of kArenaAlignment
  size_t total = 0;             // arena bytes the plan needs (a multiple of kArenaAlignment)
  size_t sum = 0;               // sum of every request's aligned size (what no reuse would need)
};

// Greedy by size: requests are placed largest first, each at the lowest aligned offset where it overlaps no
// already placed request whose lifetime intersects its own (best fit among the gaps). Deterministic.
MemoryPlan plan_memory(const std::vector<BufferRequest>& requests);

// True when no two requests with intersecting lifetimes overlap in memory and every one fits in `total`.
bool plan_is_valid(const std::vector<BufferRequest>& requests, const MemoryPlan& plan);

}  // namespace kiln::runtime
