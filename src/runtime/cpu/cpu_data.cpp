// "fast" data-movement CPU tactics (every dtype: they move elements by size):
//  - Transpose: output dims of size 1 dropped and neighbours merged where the input walks them contiguously; when
//    the innermost input axis stays innermost, whole rows are copied with memcpy, otherwise one strided gather per
//    output row. Rows are split over kiln's threads.
//  - Slice: the same row copy over the slice's strided view (any steps).
//  - Pad (constant mode, opset 11+, no axes input, pads >= 0): fill, then one memcpy per input block.
#include <algorithm>
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

// y (contiguous) = the elements of x at base + sum(idx[d] * st[d]) over the merged output dims `dims`: whole rows
// with memcpy when the innermost stride is 1, else one strided gather per row; rows split over kiln's threads.
void copy_rows(const Tensor& x, int64_t base, std::vector<int64_t> dims, std::vector<int64_t> st, Tensor& y) {
  const int64_t total = y.numel();
  if (dims.empty()) dims = {1}, st = {1};
  const size_t esize = dtype_size(x.dtype());
  const size_t r = dims.size();
  const int64_t inner = dims[r - 1], rows = total == 0 ? 0 : total / inner, sl = st[r - 1];
  const auto* px = static_cast<const uint8_t*>(x.data()) + static_cast<size_t>(base) * esize;
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
      const uint8_t* src = px + off * static_cast<int64_t>(esize);
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
  copy_rows(x, 0, dims, st, y);
  out[0] = y;
}


// Slice: the reference's strided view (ops::slice_view), output dims of size 1 dropped and neighbours merged where
// the view walks them contiguously, then copy_rows (any steps, negative ones included).
void slice_fast(const ir::Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  if (in.empty() || !in[0]) return run_reference(n, in, out);
  int64_t base = 0;
  std::vector<int64_t> st;
  Shape ys;
  ops::slice_view(n, in, base, st, ys);
  std::vector<int64_t> dims, mst;
  for (size_t d = 0; d < ys.size(); ++d) {
    if (ys[d] == 1) continue;
    if (!dims.empty() && mst.back() == st[d] * ys[d]) {
      dims.back() *= ys[d];
      mst.back() = st[d];
    } else {
      dims.push_back(ys[d]);
      mst.push_back(st[d]);
    }
  }
  Tensor y = uninit_tensor(in[0]->dtype(), ys);
  if (y.numel() > 0) copy_rows(*in[0], base, dims, mst, y);
  out[0] = y;
}

// Pad, constant mode, opset 11+ (pads, constant_value inputs; no axes), pads >= 0: the output filled with the value,
// then each input block copied in with memcpy (the trailing unpadded axes merged into one row). Other forms: `ref`.
void pad_fast(const ir::Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  if (n.opset < 11 || n.attr_string("mode", "constant") != "constant" || in.size() < 2 || !in[0] || !in[1] ||
      (in.size() > 3 && in[3]) || in[1]->dtype() != DType::Int64)
    return run_reference(n, in, out);
  const Tensor& x = *in[0];
  const int64_t rank = x.rank();
  const Tensor* cv = in.size() > 2 ? in[2] : nullptr;
  if (in[1]->numel() != 2 * rank || (cv && (cv->dtype() != x.dtype() || cv->numel() != 1)))
    return run_reference(n, in, out);
  std::vector<int64_t> b(static_cast<size_t>(rank)), e(static_cast<size_t>(rank));
  Shape ys = x.shape();
  for (int64_t d = 0; d < rank; ++d) {
    const size_t u = static_cast<size_t>(d);
    b[u] = in[1]->at_int64(d);
    e[u] = in[1]->at_int64(d + rank);
    if (b[u] < 0 || e[u] < 0 || b[u] > (1 << 24) || e[u] > (1 << 24)) return run_reference(n, in, out);
    ys[u] += b[u] + e[u];
  }
  Tensor y = uninit_tensor(x.dtype(), ys);
  const size_t esize = dtype_size(x.dtype());
  auto* py = static_cast<uint8_t*>(y.mutable_data());
  // The fill: zero bytes unless a constant_value with other bytes is given.
  std::vector<uint8_t> value(esize, 0);
  if (cv) std::memcpy(value.data(), cv->data(), esize);
  const bool zero = std::all_of(value.begin(), value.end(), [](uint8_t v) { return v == 0; });
  parallel_for(y.numel(), 1 << 15, [&](int64_t lo, int64_t hi) {
    if (zero)
      std::memset(py + static_cast<size_t>(lo) * esize, 0, static_cast<size_t>(hi - lo) * esize);
    else
      for (int64_t i = lo; i < hi; ++i) std::memcpy(py + static_cast<size_t>(i) * esize, value.data(), esize);
  });
  if (x.numel() == 0) {
    out[0] = y;
    return;
  }
  // Rows: the input from axis k on, where no axis after k is padded (one contiguous block in both).
  int64_t k = rank - 1;
  while (k > 0 && b[static_cast<size_t>(k)] == 0 && e[static_cast<size_t>(k)] == 0) --k;
  const std::vector<int64_t> xs = ops::contiguous_strides(x.shape()), yst = ops::contiguous_strides(ys);
  const int64_t row = rank == 0 ? 1 : x.shape()[static_cast<size_t>(k)] * xs[static_cast<size_t>(k)];
  const int64_t rows = x.numel() / row;
  const auto* px = static_cast<const uint8_t*>(x.data());
  parallel_for(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, row)), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      int64_t rem = r, off = rank == 0 ? 0 : b[static_cast<size_t>(k)] * yst[static_cast<size_t>(k)];
      for (int64_t d = k - 1; d >= 0; --d) {
        const size_t u = static_cast<size_t>(d);
        off += (rem % x.shape()[u] + b[u]) * yst[u];
        rem /= x.shape()[u];
      }
      std::memcpy(py + static_cast<size_t>(off) * esize, px + static_cast<size_t>(r * row) * esize,
                  static_cast<size_t>(row) * esize);
    }
  });
  out[0] = y;
}

}  // namespace cpu_data

void register_data_tactics() {
  register_cpu_tactic("", "Transpose", {"fast", cpu_data::transpose_fast, nullptr});
  register_cpu_tactic("", "Slice", {"fast", cpu_data::slice_fast, nullptr});
  register_cpu_tactic("", "Pad", {"fast", cpu_data::pad_fast, nullptr});
}

}  // namespace kiln::runtime::cpu
