// Registers every op family with the registry (each family file defines one register_* function).
#include <mutex>

#include "ir/op_registry.h"
#include "ops/common.h"
#include "ops/fused_elementwise.h"
#include "ops/kiln_attention.h"
#include "ops/fused_ops.h"
#include "ops/nhwc.h"

namespace kiln::ir {
void register_all_ops() {
  static std::once_flag once;
  std::call_once(once, [] {
    ops::register_control_flow();  // ops3
    ops::register_rearrange();  // ops3
    ops::register_selection();  // ops3
    ops::register_gather_scatter_nd();  // ops3
    ops::register_pad();  // ops3
    ops::register_conv_transpose();  // ops3
    ops::register_resize();  // ops3
    ops::register_einsum();  // ops3
    ops::register_attention();  // ops3
    ops::register_elementwise_unary();
    ops::register_elementwise_binary();
    ops::register_conv();
    ops::register_pool();
    ops::register_normalization();
    ops::register_matmul();
    ops::register_shape_ops();
    ops::register_tensor_ops();
    ops::register_generators();
    ops::register_reduce();
    ops::register_variadic();
    ops::register_reduce_arg();
    ops::register_layer_norm();
    ops::register_split_tile();
    ops::fused::register_fused_elementwise();  // kiln.FusedElementwise (fuse_elementwise pass)
    ops::kattn::register_kiln_attention();     // kiln.Attention (fuse_attention pass)
    ops::fused_ops::register_fused_ops();  // kiln.FusedMatMul, kiln.AddLayerNormalization (CUDA fusion passes)
    ops::nhwc::register_nhwc_ops();  // kiln.Conv, kiln.Pool (layout_nhwc pass)
  });
}
}  // namespace kiln::ir
