// CUDA Einsum kernel (src/runtime/cuda/kernels/einsum.cu) against the CPU reference: contractions that route to
// cuBLASLt (plain, batched, transposed operands, transposed output, outer product), and ones that need the generic
// kernel (diagonals, broadcast ellipsis, one input, three inputs, sums over one operand), in float32, float16,
// bfloat16, float64 and the integer types. Skips without a CUDA device.
#if KILN_WITH_CUDA
#include <iterator>

#include "cuda_op_test_util.h"

namespace kiln {
namespace {

using ir::Attr;
using test_cuda::check_cuda_op;
using test_cuda::precision_of;
using test_cuda::rand_tensor;
using test_ops::In;

struct EinsumCase {
  const char* eq;
  std::vector<Shape> shapes;
};

const EinsumCase kCases[] = {
    {"ij,jk->ik", {{5, 7}, {7, 3}}},
    {"bij,bjk->bik", {{3, 5, 9}, {3, 9, 4}}},
    {"bhqd,bhkd->bhqk", {{2, 3, 5, 8}, {2, 3, 6, 8}}},
    {"bhqk,bhkd->bqhd", {{2, 3, 5, 6}, {2, 3, 6, 8}}},
    {"ij,kj->ik", {{4, 6}, {5, 6}}},
    {"ji,jk->ik", {{6, 4}, {6, 5}}},
    {"ik,kj->ji", {{4, 6}, {6, 5}}},
    {"i,j->ij", {{7}, {5}}},
    {"i,i->", {{33}, {33}}},
    {"bij,bjk", {{3, 4, 5}, {3, 5, 2}}},
    {"...ij,...jk->...ik", {{2, 1, 3, 4}, {5, 4, 6}}},
    {"...ij,...jk->...ik", {{2, 5, 3, 4}, {5, 4, 6}}},
    {"ii->i", {{6, 6}}},
    {"ij->ji", {{5, 7}}},
    {"ij->", {{5, 7}}},
    {"bii,bij->bj", {{2, 4, 4}, {2, 4, 3}}},
    {"ab,bc,cd->ad", {{3, 4}, {4, 5}, {5, 2}}},
    {"abc,ab->c", {{3, 4, 5}, {3, 4}}},
    {"ij,jk->ik", {{0, 7}, {7, 3}}},
    {"ij,jk->ik", {{4, 0}, {0, 3}}},
};

void run_cases(const DType* types, size_t ntypes) {
  uint32_t seed = 1;
  for (size_t t = 0; t < ntypes; ++t)
    for (const EinsumCase& c : kCases) {
      std::vector<In> in;
      for (const Shape& s : c.shapes) in.push_back(rand_tensor(types[t], s, seed++));
      check_cuda_op("Einsum", 12, in, {{"equation", Attr{std::string(c.eq)}}}, 1, "cuda", precision_of(types[t]), false,
                    std::string(dtype_name(types[t])) + " " + c.eq);
    }
}

TEST(CudaEinsum, TacticIsRegistered) {
  ir::Graph g = test_ops::make_graph("Einsum", 12, {rand_tensor(DType::Int8, {2, 3}, 1), rand_tensor(DType::Int8, {3, 4}, 2)},
                                     {{"equation", Attr{std::string("ij,jk->ik")}}}, 1);
  EXPECT_EQ(test_cuda::tactic_names(g), (std::vector<std::string>{"cuda"}));
}

TEST(CudaEinsum, FloatTypes) {
  KILN_SKIP_WITHOUT_CUDA();
  const DType types[] = {DType::Float32, DType::Float16, DType::BFloat16, DType::Float64};
  run_cases(types, std::size(types));
}

TEST(CudaEinsum, IntegerTypes) {
  KILN_SKIP_WITHOUT_CUDA();
  const DType types[] = {DType::Int64, DType::Int32, DType::Int16, DType::Int8, DType::UInt8};
  run_cases(types, std::size(types));
}

TEST(CudaEinsum, Tf32Contraction) {
  KILN_SKIP_WITHOUT_CUDA();
  check_cuda_op("Einsum", 12, {rand_tensor(DType::Float32, {4, 64, 128}, 1), rand_tensor(DType::Float32, {4, 128, 48}, 2)},
                {{"equation", Attr{std::string("bij,bjk->bik")}}}, 1, "cuda", "tf32", true, "tf32 bij,bjk->bik");
}

}  // namespace
}  // namespace kiln
#endif  // KILN_WITH_CUDA
