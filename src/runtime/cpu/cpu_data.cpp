// "fast" data-movement CPU tactics (every dtype: they move elements by size):
//  - Transpose: output dims of size 1 dropped and neighbours merged where the input walks them contiguously; when
//    the innermost input axis stays innermost, whole rows are copied with memcpy, otherwise one strided gather per
//    output row. Rows are split over kiln's threads.
#include <cstring>

#include "ops/common.h"
#include "runtime/cpu/cpu_tactics.h"
#include "runtime/cpu/cpu_util.h"
#include "runtime/cpu/thread_pool.h"

namespace kiln::runtime::cpu {
namespace cpu_data {

template <class E>
void gather_row(const E* x, int64_t stride, E* y, int64_t n) {
  for (int64_t j = 0; j < n; ++j) y[j] = x[j * stride];
}

void transpose_fast(const ir::Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  if (in.size() != 1 || !in[0]) return run_reference(n, in, out);
  const Tensor& x = *in[0];
  const size_t rank = static_cast<size_t>(x.rank());
  std::vector<int64_t> perm(rank);
  for (size_t i = 0; i < rank; ++i) perm[i] = static_cast<int64_t>(rank - 1 - i);
  if (n.has_attr("perm")) perm = n.attr_ints("perm", {});
  std::vector<bool> seen(rank, false);
  if (perm.size() != rank) return run_reference(n, in, out);  // the reference reports it
  for (int64_t p : perm) {
    if (p < 0 || p >= static_cast<int64_t>(rank) || seen[static_cast<size_t>(p)]) return run_reference(n, in, out);
    seen[static_cast<size_t>(p)] = true;
  }
  const std::vector<int64_t> cs = ops::contiguous_strides(x.shape());
  Shape ys;
  std::vector<int64_t> dims, st;  // merged output dims and their input strides
  for (int64_t p : perm) {
    const int64_t d = x.shape()[static_cast<size_t>(p)], s = cs[static_cast<size_t>(p)];
    ys.push_back(d);
    if (d == 1) continue;
    if (!dims.empty() && st.back() == s * d) {
      dims.back() *= d;
      st.back() = s;
    } else {
      dims.push_back(d);
      st.push_back(s);
    }
  }
  Tensor y = uninit_tensor(x.dtype(), ys);
  const int64_t total = x.numel();
  if (dims.empty()) dims = {1}, st = {1};
  const size_t esize = dtype_size(x.dtype());
  const size_t r = dims.size();
  const int64_t inner = dims[r - 1], rows = total == 0 ? 0 : total / inner, sl = st[r - 1];
  const auto* px = static_cast<const uint8_t*>(x.data());
  auto* py = static_cast<uint8_t*>(y.mutable_data());
  parallel_for(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, inner)), [&](int64_t lo, int64_t hi) {
    std::vector<int64_t> idx(r, 0);
    int64_t off = 0, rem = lo;
    for (size_t d = r - 1; d-- > 0;) {
      idx[d] = rem % dims[d];
      rem /= dims[d];
      off += idx[d] * st[d];
    }
    for (int64_t row = lo; row < hi; ++row) {
      uint8_t* dst = py + static_cast<size_t>(row * inner) * esize;
      const uint8_t* src = px + static_cast<size_t>(off) * esize;
      if (sl == 1) {
        std::memcpy(dst, src, static_cast<size_t>(inner) * esize);
      } else {
        switch (esize) {
          case 1: gather_row(src, sl, dst, inner); break;
          case 2: gather_row(reinterpret_cast<const uint16_t*>(src), sl, reinterpret_cast<uint16_t*>(dst), inner); break;
          case 4: gather_row(reinterpret_cast<const uint32_t*>(src), sl, reinterpret_cast<uint32_t*>(dst), inner); break;
          default: gather_row(reinterpret_cast<const uint64_t*>(src), sl, reinterpret_cast<uint64_t*>(dst), inner); break;
        }
      }
      for (size_t d = r - 1; d-- > 0;) {
        off += st[d];
        if (++idx[d] < dims[d]) break;
        off -= st[d] * dims[d];
        idx[d] = 0;
      }
    }
  });
  out[0] = y;
}

}  // namespace cpu_data

void register_data_tactics() { register_cpu_tactic("", "Transpose", {"fast", cpu_data::transpose_fast, nullptr}); }

}  // namespace kiln::runtime::cpu
