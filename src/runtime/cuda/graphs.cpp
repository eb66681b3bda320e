// CUDA graphs per input-shape key: the first run at a key runs normally (a warm-up that also produces its
// results) and is then captured; later runs at the key replay the graph. At most opts.max_cuda_graphs are kept,
// least recently used evicted. The graph reads the inputs' arena slots and writes the outputs' arena buffers,
// so callers' pointers may change between runs (they are copied in and out around the replay).
#include <string>

#include "runtime/cuda/executor_impl.h"
#include "util/log.h"

namespace kiln::runtime::cuda {

void CudaExecutor::Impl::clear_graphs() {
  for (auto& [key, g] : graphs)
    if (g.exec) cudaGraphExecDestroy(g.exec);
  graphs.clear();
}

bool CudaExecutor::Impl::run_with_graph(Frame& f, const ShapeKey& key) {
  auto it = graphs.find(key);
  if (it != graphs.end()) {
    // The replay skips execute(): point the views at their inputs' buffers here (outputs may be views).
    const GraphIndex& idx = *f.inst->idx;
    for (size_t i = 0; i < f.inst->steps.size(); ++i)
      if (f.inst->steps[i].kind == Step::Alias)
        f.dv[static_cast<size_t>(idx.node_out[i][0])].data = f.dv[static_cast<size_t>(idx.node_in[i][0])].data;
    KILN_CU(cudaGraphLaunch(it->second.exec, stream));
    it->second.last_use = ++use_clock;
    ++st.cuda_graph_replays;
    return true;
  }
  execute(f);  // the warm-up run produces this call's outputs
  if (not_captured.count(key)) {
    ++st.cuda_graph_fallbacks;
    return true;
  }
  std::string why;
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  cudaError_t e = cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal);
  if (e != cudaSuccess) {
    why = std::string("cudaStreamBeginCapture: ") + cudaGetErrorString(e);
  } else {
    try {
      execute(f);
    } catch (const std::exception& ex) {
      why = ex.what();
    }
    e = cudaStreamEndCapture(stream, &graph);
    if (why.empty() && e != cudaSuccess) why = std::string("cudaStreamEndCapture: ") + cudaGetErrorString(e);
    if (why.empty()) {
      e = cudaGraphInstantiate(&exec, graph, 0);
      if (e != cudaSuccess) why = std::string("cudaGraphInstantiate: ") + cudaGetErrorString(e);
    }
    if (graph) cudaGraphDestroy(graph);
  }
  if (!why.empty()) {
    cudaGetLastError();
    if (exec) cudaGraphExecDestroy(exec);
    not_captured.insert(key);
    ++st.cuda_graph_fallbacks;
    KILN_WARN("cuda:" << device << ": CUDA graph capture failed (" << why << "); these input shapes run without a graph");
    return true;
  }
  if (graphs.size() >= opts.max_cuda_graphs) {
    auto oldest = graphs.begin();
    for (auto g = graphs.begin(); g != graphs.end(); ++g)
      if (g->second.last_use < oldest->second.last_use) oldest = g;
    cudaGraphExecDestroy(oldest->second.exec);
    graphs.erase(oldest);
  }
  graphs[key] = CapturedGraph{exec, ++use_clock};
  ++st.cuda_graph_captures;
  return true;
}

}  // namespace kiln::runtime::cuda
