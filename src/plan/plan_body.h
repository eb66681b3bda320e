// Plan metadata section: the graph (recursively, with subgraphs), tensor infos, profiles, model hash.
// Tensors (initializers and tensor attributes, at any subgraph depth) are written as references into
// the weights blob; their bytes go to the blob in the order they are met.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "plan/plan_codec.h"
#include "runtime/engine_impl.h"

namespace kiln::plan::body {

// Collects the tensors the metadata refers to and assigns their blob offsets.
struct TensorSink {
  std::vector<Tensor> tensors;
  std::vector<uint64_t> offsets;  // relative to the blob start, multiples of kWeightAlignment
  uint64_t blob_size = 0;
  uint64_t add(const Tensor& t);
};

// The weights blob as the reader sees it.
struct Blob {
  const char* data = nullptr;  // blob start (file offset `file_offset`)
  uint64_t size = 0;
  size_t file_offset = 0;
  std::shared_ptr<const void> owner;  // keeps the plan bytes alive for the tensor views
};

void write_engine_body(codec::Writer& w, const detail::EngineImpl& e, TensorSink& sink);
// Fills graph, inputs, outputs, profiles and model_hash of `e`. Integrity on any inconsistency.
void read_engine_body(codec::Reader& r, const Blob& blob, detail::EngineImpl& e);

}  // namespace kiln::plan::body
