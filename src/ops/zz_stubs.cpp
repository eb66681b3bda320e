#include "ops/common.h"
namespace kiln::ops {
void register_shape_ops() {}
void register_tensor_ops() {}
void register_generators() {}
void register_reduce() {}
}
