#include "runtime/cpu/cpu_util.h"

#include <cstring>
#include <map>
#include <mutex>
#include <new>

#include "runtime/cpu/thread_pool.h"
#include "util/error.h"
#include "util/half.h"

namespace kiln::runtime::cpu {

void run_reference(const ir::Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  const ir::OpDef* def = ir::OpRegistry::instance().find(n.domain, n.op_type, n.opset);
  if (!def || !def->reference) KILN_THROW(Unsupported, n.label() << ": no reference kernel");
  def->reference(n, in, out);
}

namespace {

// Freed output buffers of >= 64 KiB are kept for reuse (by size class, <= 12.5% slack), up to 512 MiB in all, so a
// model run after run does not map and fault in fresh pages for every large activation (malloc hands such sizes
// to mmap and back). Never destroyed: tensors may outlive static destruction.
class BufferCache {
 public:
  static constexpr size_t kMinBytes = size_t(64) << 10;
  static constexpr size_t kCapBytes = size_t(512) << 20;

  static size_t size_class(size_t bytes) {
    if (bytes < kMinBytes) return (bytes + 63) / 64 * 64;
    size_t p = 1;
    while (p * 2 <= bytes) p *= 2;
    const size_t step = p / 8;
    return (bytes + step - 1) / step * step;
  }
  void* get(size_t bytes) {
    if (bytes >= kMinBytes) {
      std::lock_guard<std::mutex> lk(m_);
      auto it = free_.find(bytes);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_ -= bytes;
        return p;
      }
    }
    void* p = ::operator new(bytes, std::align_val_t(64), std::nothrow);
    if (!p) KILN_THROW(OutOfMemory, "host allocation of " << bytes << " bytes failed");
    return p;
  }
  void put(void* p, size_t bytes) {
    if (bytes >= kMinBytes) {
      std::lock_guard<std::mutex> lk(m_);
      if (cached_ + bytes <= kCapBytes) {
        free_[bytes].push_back(p);
        cached_ += bytes;
        return;
      }
    }
    ::operator delete(p, std::align_val_t(64));
  }

 private:
  std::mutex m_;
  std::map<size_t, std::vector<void*>> free_;
  size_t cached_ = 0;
};

BufferCache& buffer_cache() {
  static BufferCache* c = new BufferCache();
  return *c;
}

}  // namespace

Tensor uninit_tensor(DType dt, Shape s) {
  const int64_t n = shape_numel(s);
  if (n > static_cast<int64_t>((size_t(1) << 62) / dtype_size(dt)))
    KILN_THROW(OutOfMemory, "tensor of " << n << " elements is too large to allocate");
  const size_t bytes = BufferCache::size_class(std::max<size_t>(64, static_cast<size_t>(n) * dtype_size(dt)));
  void* p = buffer_cache().get(bytes);
  std::shared_ptr<void> owner(p, [bytes](void* q) { buffer_cache().put(q, bytes); });
  return Tensor::view(dt, std::move(s), std::move(owner), p);
}

bool all_f32_like(const std::vector<const ir::ValueType*>& in, size_t min_present) {
  size_t present = 0;
  for (const ir::ValueType* t : in) {
    if (!t) continue;
    if (!is_f32_like(t->dtype)) return false;
    ++present;
  }
  return present >= min_present;
}

void to_f32(DType src_type, const void* src, float* dst, int64_t n) {
  if (src_type == DType::Float32) {
    if (n) std::memcpy(dst, src, static_cast<size_t>(n) * 4);
    return;
  }
  const auto* s = static_cast<const uint16_t*>(src);
  const bool half = src_type == DType::Float16;
  parallel_for(n, 1 << 16, [&](int64_t lo, int64_t hi) {
    if (half)
      for (int64_t i = lo; i < hi; ++i) dst[i] = util::half_to_float(s[i]);
    else
      for (int64_t i = lo; i < hi; ++i) dst[i] = util::bf16_to_float(s[i]);
  });
}

void from_f32(const float* src, DType dst_type, void* dst, int64_t n) {
  if (dst_type == DType::Float32) {
    if (n && dst != src) std::memcpy(dst, src, static_cast<size_t>(n) * 4);
    return;
  }
  auto* d = static_cast<uint16_t*>(dst);
  const bool half = dst_type == DType::Float16;
  parallel_for(n, 1 << 16, [&](int64_t lo, int64_t hi) {
    if (half)
      for (int64_t i = lo; i < hi; ++i) d[i] = util::float_to_half(src[i]);
    else
      for (int64_t i = lo; i < hi; ++i) d[i] = util::float_to_bf16(src[i]);
  });
}

const float* f32_data(const Tensor& t, std::vector<float>& store) {
  if (t.dtype() == DType::Float32) return t.as<float>();
  store.resize(static_cast<size_t>(t.numel()));
  to_f32(t.dtype(), t.data(), store.data(), t.numel());
  return store.data();
}

F32Out::F32Out(Tensor& t) : t_(t) {
  if (t.dtype() == DType::Float32) {
    p_ = t.mutable_as<float>();
  } else {
    scratch_.resize(static_cast<size_t>(t.numel()));
    p_ = scratch_.data();
  }
}

void F32Out::commit() {
  if (t_.dtype() != DType::Float32) from_f32(p_, t_.dtype(), t_.mutable_data(), t_.numel());
}

}  // namespace kiln::runtime::cpu
