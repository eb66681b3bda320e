// Helpers shared by the fast CPU tactics: output tensors without zero-fill, float32 views of float16 / bfloat16
// data (tactics compute in float32 and round once when storing), and type checks for SupportsFn.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "ir/op_registry.h"
#include "kiln/tensor.h"

namespace kiln::runtime::cpu {

// Output positions o in [lo, hi) of one axis whose input index o*s + base lies in [0, in).
inline void valid_range(int64_t s, int64_t base, int64_t in, int64_t lo, int64_t hi, int64_t& vlo, int64_t& vhi) {
  // o*s + base >= 0  <=>  o >= ceil(-base / s);  o*s + base < in  <=>  o <= floor((in - 1 - base) / s)
  auto floor_div = [](int64_t p, int64_t q) { return p >= 0 ? p / q : -((-p + q - 1) / q); };
  vlo = std::max(lo, -floor_div(base, s));
  vhi = std::min(hi, floor_div(in - 1 - base, s) + 1);
  if (vhi < vlo) vhi = vlo;
}

// Runs the node's reference kernel (a fast tactic's fallback for inputs it does not handle).
void run_reference(const ir::Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out);

// A tensor whose 64-byte-aligned buffer is not initialized: the kernel must write every element. Buffers of 64 KiB
// and more come from (and return to) a process-wide cache of freed buffers, at most 512 MiB in all.
Tensor uninit_tensor(DType dt, Shape s);

// float32, float16 or bfloat16.
inline bool is_f32_like(DType t) { return t == DType::Float32 || t == DType::Float16 || t == DType::BFloat16; }
// Every present input of `in` has a float32-like dtype (and at least `min_present` are present).
bool all_f32_like(const std::vector<const ir::ValueType*>& in, size_t min_present = 1);

// Converts n float16 / bfloat16 / float32 values to float32 and back (round to nearest even).
void to_f32(DType src_type, const void* src, float* dst, int64_t n);
void from_f32(const float* src, DType dst_type, void* dst, int64_t n);

// Float32 data of a float-like tensor: the tensor's own buffer when it is float32, else a converted copy in `store`.
const float* f32_data(const Tensor& t, std::vector<float>& store);

// A float32 buffer for writing an output of dtype t.dtype(): the tensor's own buffer for float32, else scratch that
// commit() rounds into the tensor.
class F32Out {
 public:
  explicit F32Out(Tensor& t);
  float* data() { return p_; }
  void commit();

 private:
  Tensor& t_;
  std::vector<float> scratch_;
  float* p_;
};

}  // namespace kiln::runtime::cpu
