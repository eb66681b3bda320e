#include "ops/common.h"
namespace kiln::ops {
void register_conv() {}
void register_pool() {}
void register_normalization() {}
void register_matmul() {}
void register_shape_ops() {}
void register_tensor_ops() {}
void register_generators() {}
void register_reduce() {}
}
