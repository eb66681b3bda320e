// The C API (include/kiln/c_api.h), part 2: execution contexts — host runs, enqueue on device pointers, output
// shapes and stats (docs/c-api.md).
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>

#include "capi/c_api_internal.h"

namespace {

using kiln::capi::guarded;
using kiln::capi::names_of;
using kiln::capi::need;
using kiln::capi::valid_dtype;

kiln::DType to_dtype(int d, const std::string& what) {
  if (!valid_dtype(d)) KILN_THROW(InvalidArgument, what << ": unknown dtype " << d);
  return static_cast<kiln::DType>(d);
}

// A named tensor of an input / output list: name, dtype, shape (dims >= 0) and its bytes.
struct Named {
  std::string name;
  kiln::DType dtype = kiln::DType::Float32;
  kiln::Shape shape;
  size_t bytes = 0;
};

Named read_tensor(const kiln_tensor& t, const char* list, int i, bool read_dtype) {
  std::ostringstream where;
  where << list << "[" << i << "]";
  if (t.name == nullptr) KILN_THROW(InvalidArgument, where.str() << ": name is NULL");
  Named n;
  n.name = t.name;
  where << " ('" << n.name << "')";
  if (read_dtype) n.dtype = to_dtype(t.dtype, where.str());
  if (t.rank < 0 || t.rank > KILN_MAX_DIMS)
    KILN_THROW(InvalidArgument, where.str() << ": rank " << t.rank << " is outside 0.." << KILN_MAX_DIMS);
  uint64_t bytes = kiln::dtype_size(n.dtype);
  for (int d = 0; d < t.rank; ++d) {
    if (t.shape[d] < 0) KILN_THROW(InvalidArgument, where.str() << ": dimension " << d << " is " << t.shape[d]);
    if (__builtin_mul_overflow(bytes, static_cast<uint64_t>(t.shape[d]), &bytes) || bytes > (uint64_t{1} << 48))
      KILN_THROW(InvalidArgument, where.str() << ": shape " << kiln::shape_str(kiln::Shape(t.shape, t.shape + t.rank))
                                              << " is too large");
    n.shape.push_back(t.shape[d]);
  }
  n.bytes = static_cast<size_t>(bytes);
  return n;
}

// Inputs: a non-zero `capacity` is the bytes the caller has at `data`; the shape must fit in it.
void check_input_capacity(const kiln_tensor& t, const Named& n) {
  if (t.capacity != 0 && t.capacity < n.bytes)
    KILN_THROW(InvalidArgument, "input '" << n.name << "' is " << kiln::dtype_name(n.dtype) << kiln::shape_str(n.shape)
                                          << " (" << n.bytes << " bytes) but its buffer holds " << t.capacity
                                          << " bytes");
}

void check_list(const void* p, int n, const char* what) {
  if (n < 0) KILN_THROW(InvalidArgument, what << ": count " << n << " is negative");
  if (n > 0 && p == nullptr) KILN_THROW(InvalidArgument, what << " is NULL but its count is " << n);
}

const kiln::TensorInfo& find_output(const kiln::Engine& e, const std::string& name) {
  for (const auto& o : e.outputs())
    if (o.name == name) return o;
  KILN_THROW(InvalidArgument, "unknown output '" << name << "'; the engine's outputs are: " << names_of(e.outputs()));
}

void check_unique(std::set<std::string>& seen, const std::string& name, const char* list) {
  if (!seen.insert(name).second) KILN_THROW(InvalidArgument, list << ": '" << name << "' is given twice");
}

// Sets dtype, rank and shape of `t` (the actual output); -1 stays -1.
void write_shape(kiln_tensor& t, kiln::DType dtype, const kiln::Shape& shape) {
  if (shape.size() > KILN_MAX_DIMS)
    KILN_THROW(Unsupported, "output '" << t.name << "' has rank " << shape.size() << ", more than KILN_MAX_DIMS ("
                                       << KILN_MAX_DIMS << ")");
  t.dtype = static_cast<int32_t>(dtype);
  t.rank = static_cast<int32_t>(shape.size());
  for (size_t d = 0; d < shape.size(); ++d) t.shape[d] = shape[d];
  for (size_t d = shape.size(); d < KILN_MAX_DIMS; ++d) t.shape[d] = 0;
}

// The bytes of `t`'s shape as the caller gave it (0 when the rank or a dimension is invalid).
size_t given_bytes(const kiln_tensor& t, kiln::DType dtype) {
  if (t.rank < 0 || t.rank > KILN_MAX_DIMS) return 0;
  size_t n = kiln::dtype_size(dtype);
  for (int d = 0; d < t.rank; ++d) {
    if (t.shape[d] < 0) return 0;
    n *= static_cast<size_t>(t.shape[d]);
  }
  return n;
}

}  // namespace

extern "C" {

// ---- execution contexts -------------------------------------------------------------------------------------------
int kiln_context_create(const kiln_engine* engine, int device, int use_cuda_graphs, kiln_context** out) {
  return guarded("kiln_context_create", [&] {
    need(engine, "engine");
    need(out, "out");
    *out = nullptr;
    if (device < -1) KILN_THROW(InvalidArgument, "device " << device << " is not an ordinal (or -1)");
    kiln::ContextOptions o;
    o.device = device;
    o.use_cuda_graphs = use_cuda_graphs != 0;
    *out = new kiln_context(engine->engine.create_context(o));
  });
}

void kiln_context_destroy(kiln_context* context) { delete context; }

int kiln_context_run(kiln_context* context, const kiln_tensor* inputs, int n_inputs, kiln_tensor* outputs,
                     int n_outputs) {
  return guarded("kiln_context_run", [&] {
    need(context, "context");
    check_list(inputs, n_inputs, "inputs");
    check_list(outputs, n_outputs, "outputs");
    const kiln::Engine& e = context->ctx.engine();
    std::set<std::string> seen;
    kiln::TensorMap in;
    for (int i = 0; i < n_inputs; ++i) {
      Named n = read_tensor(inputs[i], "inputs", i, true);
      check_unique(seen, n.name, "inputs");
      check_input_capacity(inputs[i], n);
      const size_t bytes = n.bytes;
      if (bytes && inputs[i].data == nullptr) KILN_THROW(InvalidArgument, "input '" << n.name << "': data is NULL");
      // A view without a copy: run() is synchronous and keeps no reference to its inputs.
      std::shared_ptr<const void> none(inputs[i].data, [](const void*) {});
      kiln::Tensor t = bytes ? kiln::Tensor::view(n.dtype, n.shape, none, inputs[i].data)
                             : kiln::Tensor(n.dtype, n.shape);
      in.emplace(n.name, t);
    }
    seen.clear();
    for (int i = 0; i < n_outputs; ++i) {
      if (outputs[i].name == nullptr) KILN_THROW(InvalidArgument, "outputs[" << i << "]: name is NULL");
      find_output(e, outputs[i].name);
      check_unique(seen, outputs[i].name, "outputs");
    }
    context->last.clear();
    context->last = context->ctx.run(in);
    for (int i = 0; i < n_outputs; ++i) {
      kiln_tensor& o = outputs[i];
      const kiln::Tensor& t = context->last.at(o.name);
      const size_t cap = o.capacity ? o.capacity : given_bytes(o, t.dtype());
      write_shape(o, t.dtype(), t.shape());
      if (o.data == nullptr) continue;
      if (cap < t.nbytes())
        KILN_THROW(InvalidArgument, "output '" << o.name << "' is " << t.type_str() << " (" << t.nbytes()
                                               << " bytes) but its buffer holds " << cap << " bytes");
      if (t.nbytes()) std::memcpy(o.data, t.data(), t.nbytes());
    }
  });
}

int kiln_context_output(kiln_context* context, const char* name, kiln_tensor* out) {
  return guarded("kiln_context_output", [&] {
    need(context, "context");
    need(name, "name");
    need(out, "out");
    const kiln::TensorInfo& info = find_output(context->ctx.engine(), name);
    auto it = context->last.find(info.name);
    if (it == context->last.end())
      KILN_THROW(InvalidState, "output '" << name << "': no host run has finished on this context yet");
    out->name = it->first.c_str();
    write_shape(*out, it->second.dtype(), it->second.shape());
    out->data = it->second.mutable_data();
    out->capacity = it->second.nbytes();
  });
}

int kiln_context_enqueue(kiln_context* context, const kiln_tensor* inputs, int n_inputs, kiln_tensor* outputs,
                         int n_outputs, void* stream) {
  return guarded("kiln_context_enqueue", [&] {
    need(context, "context");
    check_list(inputs, n_inputs, "inputs");
    check_list(outputs, n_outputs, "outputs");
    const kiln::Engine& e = context->ctx.engine();
    if (e.target().rfind("cuda", 0) != 0)
      KILN_THROW(InvalidState, "enqueue needs a CUDA engine; this engine's target is '" << e.target()
                                                                                       << "' (use kiln_context_run)");
    std::set<std::string> seen;
    kiln::DeviceTensorMap in, out;
    for (int i = 0; i < n_inputs; ++i) {
      Named n = read_tensor(inputs[i], "inputs", i, true);
      check_unique(seen, n.name, "inputs");
      check_input_capacity(inputs[i], n);
      if (n.bytes && inputs[i].data == nullptr) KILN_THROW(InvalidArgument, "input '" << n.name << "': data is NULL");
      in[n.name] = kiln::DeviceTensor{n.dtype, n.shape, inputs[i].data, 0};
    }
    seen.clear();
    for (int i = 0; i < n_outputs; ++i) {
      Named n = read_tensor(outputs[i], "outputs", i, true);
      check_unique(seen, n.name, "outputs");
      const kiln::TensorInfo& info = find_output(e, n.name);
      if (n.dtype != info.dtype)
        KILN_THROW(InvalidArgument, "output '" << n.name << "' is given as " << kiln::dtype_name(n.dtype)
                                               << ", the engine's is " << info.str());
      if (outputs[i].data == nullptr) KILN_THROW(InvalidArgument, "output '" << n.name << "': data is NULL");
      out[n.name] = kiln::DeviceTensor{n.dtype, n.shape, outputs[i].data, outputs[i].capacity};
    }
    for (const auto& o : e.outputs())
      if (!out.count(o.name))
        KILN_THROW(InvalidArgument, "output '" << o.name << "' (" << o.str() << ") is not given; enqueue needs every "
                                               << "output: " << names_of(e.outputs()));
    context->ctx.enqueue(in, out, stream);
    for (int i = 0; i < n_outputs; ++i) {
      const kiln::DeviceTensor& d = out.at(outputs[i].name);
      write_shape(outputs[i], d.dtype, d.shape);
    }
  });
}

int kiln_context_output_shapes(kiln_context* context, const kiln_tensor* inputs, int n_inputs, kiln_tensor* outputs,
                               int n_outputs) {
  return guarded("kiln_context_output_shapes", [&] {
    need(context, "context");
    check_list(inputs, n_inputs, "inputs");
    check_list(outputs, n_outputs, "outputs");
    const kiln::Engine& e = context->ctx.engine();
    std::set<std::string> seen;
    std::map<std::string, kiln::Shape> shapes;
    for (int i = 0; i < n_inputs; ++i) {
      Named n = read_tensor(inputs[i], "inputs", i, false);
      check_unique(seen, n.name, "inputs");
      shapes[n.name] = n.shape;
    }
    seen.clear();
    for (int i = 0; i < n_outputs; ++i) {
      if (outputs[i].name == nullptr) KILN_THROW(InvalidArgument, "outputs[" << i << "]: name is NULL");
      find_output(e, outputs[i].name);
      check_unique(seen, outputs[i].name, "outputs");
    }
    const std::map<std::string, kiln::Shape> res = context->ctx.output_shapes(shapes);
    for (int i = 0; i < n_outputs; ++i) {
      const kiln::TensorInfo& info = find_output(e, outputs[i].name);
      auto it = res.find(info.name);
      write_shape(outputs[i], info.dtype, it == res.end() ? kiln::Shape{} : it->second);
    }
  });
}

int kiln_context_get_stats(const kiln_context* context, kiln_context_stats* out) {
  return guarded("kiln_context_get_stats", [&] {
    need(context, "context");
    need(out, "out");
    const kiln::ContextStats s = context->ctx.stats();
    context->device = s.device;
    out->device = context->device.c_str();
    out->weight_bytes = s.weight_bytes;
    out->arena_bytes = s.arena_bytes;
    out->planned_arena_bytes = s.planned_arena_bytes;
    out->activation_bytes = s.activation_bytes;
    out->arena_growths = s.arena_growths;
    out->dynamic_pool_bytes = s.dynamic_pool_bytes;
    out->host_fallback_nodes = s.host_fallback_nodes;
    out->cuda_graph_captures = s.cuda_graph_captures;
    out->cuda_graph_replays = s.cuda_graph_replays;
    out->cuda_graph_fallbacks = s.cuda_graph_fallbacks;
  });
}

int kiln_context_last_profile(const kiln_context* context, int* index) {
  return guarded("kiln_context_last_profile", [&] {
    need(context, "context");
    need(index, "index");
    *index = context->ctx.last_profile();
  });
}

}  // extern "C"
