// Host-side check of the CUDA elementwise broadcast planner (src/runtime/cuda/kernels/elementwise.cu), runnable
// without a device: on random shapes, plan_operands / plan_vectors plus the kernels' index arithmetic (the 32-bit
// FastDiv, the two-level and general indices, and load_vec's lane rules, replayed here on the host) must give the
// element naive numpy broadcasting gives, for every output element and every vector lane. Exit code 1 on a mismatch.
#include <cstdio>
#include <random>

#include "runtime/cuda/kernels/elementwise_impl.cuh"

namespace ew = kiln::runtime::cuda::ew;
using kiln::Shape;

namespace {

// FastDiv::div on the host (__umulhi is device-only).
uint32_t host_div(const ew::FastDiv& f, uint32_t n) {
  const uint32_t t = static_cast<uint32_t>((uint64_t(n) * f.m) >> 32);
  return (t + n) >> f.s;
}
int64_t two_level(const ew::Operand& o, int64_t i) {
  const uint32_t q = host_div(o.inner, static_cast<uint32_t>(i));
  return static_cast<int64_t>(q - host_div(o.mid, q) * o.mid.d);
}
// Operand::index on the host.
int64_t host_index(const ew::Operand& o, int64_t i) {
  switch (o.kind) {
    case ew::kFull: return i;
    case ew::kScalar: return 0;
    case ew::kTwoLevel: return two_level(o, i);
    default: return o.bi.map(i);
  }
}
// The input element output element i reads under numpy broadcasting.
int64_t naive(const Shape& in, const Shape& out, int64_t i) {
  int64_t off = 0, stride = 1;
  for (int d = static_cast<int>(out.size()) - 1; d >= 0; --d) {
    const int64_t idx = i % out[d];
    i /= out[d];
    const int id = d - static_cast<int>(out.size() - in.size());
    if (id < 0) continue;
    const int64_t dim = in[static_cast<size_t>(id)];
    if (dim != 1) off += idx * stride;
    stride *= dim;
  }
  return off;
}

long bad = 0;
void fail(const char* what, long a, long b) {
  if (bad++ < 10) std::printf("mismatch: %s (%ld, %ld)\n", what, a, b);
}

void check_fastdiv(std::mt19937_64& rng) {
  for (int t = 0; t < 100000; ++t) {
    uint32_t d = t < 1000 ? uint32_t(t + 1) : uint32_t(rng() % 0x7fffffffu) + 1;
    if (t % 3 == 0) d = uint32_t(1) << (rng() % 31);
    ew::FastDiv f;
    f.init(d);
    for (int k = 0; k < 16; ++k) {
      const uint32_t n = k == 0 ? 0u : k == 1 ? 0x7fffffffu : k == 2 ? d : k == 3 ? d - 1 : uint32_t(rng() % 0x80000000u);
      if (host_div(f, n) != n / d) fail("FastDiv", long(d), long(n));
    }
  }
}

void check_plans(std::mt19937_64& rng) {
  kiln::ir::Node node;
  node.name = "n0";
  node.op_type = "Add";
  long vector_cases = 0;
  for (int t = 0; t < 20000; ++t) {
    const int r = 1 + int(rng() % 5);
    Shape out(static_cast<size_t>(r));
    for (auto& d : out) d = 1 + int64_t(rng() % 6);
    const int k_count = 1 + int(rng() % 4);
    std::vector<Shape> shapes(static_cast<size_t>(k_count));
    std::vector<kiln::runtime::cuda::DTensor> ts(static_cast<size_t>(k_count));
    std::vector<const kiln::runtime::cuda::DTensor*> ins;
    for (int k = 0; k < k_count; ++k) {
      const int rk = int(rng() % uint64_t(r + 1));
      Shape s(static_cast<size_t>(rk));
      for (int d = 0; d < rk; ++d) s[size_t(d)] = (rng() % 3 == 0) ? 1 : out[size_t(r - rk + d)];
      shapes[size_t(k)] = s;
      ts[size_t(k)] = {kiln::DType::Float32, s, reinterpret_cast<void*>(uintptr_t(4096) * uintptr_t(k + 1))};
      ins.push_back(&ts[size_t(k)]);
    }
    ew::Operand ops[4];
    ew::plan_operands(node, out, ins, ops);
    const int V = 1 << (rng() % 5);
    const int es[4] = {4, 4, 4, 4};
    const int64_t n = kiln::shape_numel(out);
    const int64_t nvec = ew::plan_vectors(n, V, reinterpret_cast<void*>(uintptr_t(1) << 20), 4, ops, es, k_count);
    if (nvec) ++vector_cases;
    for (int64_t i = 0; i < n; ++i)
      for (int k = 0; k < k_count; ++k)
        if (host_index(ops[k], i) != naive(shapes[size_t(k)], out, i)) fail("scalar path", t, long(i));
    for (int64_t v = 0; v < nvec; ++v) {
      const int64_t base = v * V;
      for (int k = 0; k < k_count; ++k) {
        const ew::Operand& o = ops[k];
        if (o.kind == ew::kGeneral || (o.kind == ew::kTwoLevel && o.lanes == ew::kPerLane))
          fail("per-lane operand on the vector path", t, k);
        const int64_t j = o.kind == ew::kScalar ? 0 : o.kind == ew::kTwoLevel ? two_level(o, base) : base;
        const bool uniform = o.kind == ew::kScalar || o.lanes == ew::kUniform;
        if (!uniform && j % V != 0) fail("unaligned vector load", t, long(j));
        for (int l = 0; l < V; ++l)
          if ((uniform ? j : j + l) != naive(shapes[size_t(k)], out, base + l)) fail("vector lane", t, l);
      }
    }
  }
  if (vector_cases < 1000) fail("too few vector-path cases", vector_cases, 1000);
}

}  // namespace

int main() {
  std::mt19937_64 rng(1);
  check_fastdiv(rng);
  check_plans(rng);
  std::printf("elementwise plan check: %ld mismatches\n", bad);
  return bad == 0 ? 0 : 1;
}
