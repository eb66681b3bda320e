// Plan metadata section: the graph (recursively, with subgraphs), tensor infos, profiles, model hash, per-profile
// tactics (format 3).
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

// `format_version` 2 has no per-profile tactics (InvalidArgument when `e` has some); 3 adds them.
void write_engine_body(codec::Writer& w, const detail::EngineImpl& e, TensorSink& sink, uint32_t format_version);
// Fills graph, inputs, outputs, profiles, model_hash and (format 3) profile_tactics of `e`. Integrity on any
// inconsistency.
void read_engine_body(codec::Reader& r, const Blob& blob, detail::EngineImpl& e, uint32_t format_version);

}  // namespace kiln::plan::body
