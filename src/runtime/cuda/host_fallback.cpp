// The "host" tactic: runs a node with its reference kernel on the host, for ops without a CUDA kernel (yet).
#include <cuda_runtime_api.h>

#include "ir/op_registry.h"
#include "runtime/cuda/device_memory.h"
#include "runtime/cuda/instance.h"

namespace kiln::runtime::cuda {
namespace {

void run_on_host(const KernelContext& ctx, KernelArgs& args) {
  const ir::Node& n = args.node;
  const ir::OpDef* def = ir::OpRegistry::instance().find(n.domain, n.op_type, n.opset);
  if (!def || !def->reference) KILN_THROW(Unsupported, n.label() << ": no reference kernel for the host fallback");
  std::vector<Tensor> copies(args.in.size());
  std::vector<const Tensor*> ins(args.in.size(), nullptr);
  bool copied = false;
  for (size_t i = 0; i < args.in.size(); ++i) {
    if (i < args.host_in.size() && args.host_in[i]) {
      ins[i] = args.host_in[i];
      continue;
    }
    const DTensor* d = args.in[i];
    if (!d) continue;
    copies[i] = Tensor(d->dtype, d->shape);
    if (d->nbytes())
      KILN_CU(cudaMemcpyAsync(copies[i].mutable_data(), d->data, d->nbytes(), cudaMemcpyDeviceToHost, ctx.stream));
    ins[i] = &copies[i];
    copied = true;
  }
  if (copied) KILN_CU(cudaStreamSynchronize(ctx.stream));
  std::vector<Tensor> outs(n.outputs.size());
  def->reference(n, ins, outs);
  for (size_t o = 0; o < n.outputs.size() && o < args.out.size(); ++o) {
    if (n.outputs[o].empty()) continue;
    const Tensor& h = outs[o];
    DTensor& d = args.out[o];
    if (d.data) {
      if (d.shape != h.shape() || d.dtype != h.dtype())
        KILN_THROW(InvalidModel, n.label() << ": output " << o << " is " << h.type_str() << " on the host, but "
                                           << "inference planned " << dtype_name(d.dtype) << shape_str(d.shape));
    } else {
      d.dtype = h.dtype();
      d.shape = h.shape();
      d.data = ctx.alloc_dynamic(h.nbytes());
    }
    if (h.nbytes()) KILN_CU(cudaMemcpyAsync(d.data, h.data(), h.nbytes(), cudaMemcpyHostToDevice, ctx.stream));
  }
  // `outs` is pageable host memory that goes away on return: wait for the copies (this tactic syncs anyway).
  KILN_CU(cudaStreamSynchronize(ctx.stream));
}

}  // namespace

const CudaTactic& host_fallback_tactic() {
  static const CudaTactic t{"host", nullptr, run_on_host, nullptr, /*dynamic_output=*/true, /*capturable=*/false};
  return t;
}

bool is_host_fallback(const CudaTactic* t) { return t == &host_fallback_tactic(); }

}  // namespace kiln::runtime::cuda
