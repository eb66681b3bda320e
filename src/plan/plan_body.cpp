#include "plan/plan_body.h"

#include <cstdint>
#include <limits>
#include <sstream>

#include "plan/plan.h"
#include "util/error.h"

namespace kiln::plan::body {

namespace plan_body_detail {

// Smallest encodings, used to bound counts before anything is allocated.
constexpr size_t kMinStr = 4;
constexpr size_t kMinDim = 8 + kMinStr;                                  // value + symbol
constexpr size_t kMinNode = 3 * kMinStr + 8 + 3 * 4 + kMinStr;           // names, opset, 3 counts, tactic
constexpr size_t kMinValueType = kMinStr + 1 + 1 + 4;                    // name, dtype, has_rank, ndims
constexpr size_t kMinTensorRef = 1;                                      // "absent" flag
constexpr size_t kMinInit = kMinStr + kMinTensorRef;
constexpr size_t kMinAttr = kMinStr + 1 + 1;                             // key, kind, smallest payload
constexpr size_t kMinTensorInfo = kMinStr + 1 + 4;
constexpr size_t kMinProfileEntry = kMinStr + 4;

enum AttrKind : uint8_t { kInt = 0, kFloat, kString, kInts, kFloats, kStrings, kTensor, kGraph, kNumKinds };
static_assert(std::variant_size_v<ir::Attr> == kNumKinds, "plan attribute kinds must cover ir::Attr");

uint64_t align_up(uint64_t v) { return (v + kWeightAlignment - 1) / kWeightAlignment * kWeightAlignment; }

// ---- writing -------------------------------------------------------------------------------------

void put_strings(codec::Writer& w, const std::vector<std::string>& v, const char* what) {
  w.count(v.size(), what);
  for (const auto& s : v) w.str(s);
}

void put_dims(codec::Writer& w, const std::vector<Dim>& dims) {
  w.count(dims.size(), "dims");
  for (const Dim& d : dims) {
    w.i64(d.value);
    w.str(d.symbol);
  }
}

void put_tensor(codec::Writer& w, const Tensor& t, TensorSink& sink) {
  if (t.empty()) {
    w.u8(0);
    return;
  }
  w.u8(1);
  w.u8(static_cast<uint8_t>(t.dtype()));
  w.count(t.shape().size(), "tensor dims");
  for (int64_t d : t.shape()) w.i64(d);
  w.u64(sink.add(t));
  w.u64(t.nbytes());
}

void put_graph(codec::Writer& w, const ir::Graph& g, TensorSink& sink, int depth);

void put_attr(codec::Writer& w, const ir::Attr& a, TensorSink& sink, int depth) {
  w.u8(static_cast<uint8_t>(a.index()));
  switch (a.index()) {
    case kInt: w.i64(std::get<int64_t>(a)); break;
    case kFloat: w.f32(std::get<float>(a)); break;
    case kString: w.str(std::get<std::string>(a)); break;
    case kInts: {
      const auto& v = std::get<std::vector<int64_t>>(a);
      w.count(v.size(), "ints");
      for (int64_t x : v) w.i64(x);
      break;
    }
    case kFloats: {
      const auto& v = std::get<std::vector<float>>(a);
      w.count(v.size(), "floats");
      for (float x : v) w.f32(x);
      break;
    }
    case kStrings: put_strings(w, std::get<std::vector<std::string>>(a), "strings"); break;
    case kTensor: put_tensor(w, std::get<Tensor>(a), sink); break;
    case kGraph: {
      const ir::GraphPtr& g = std::get<ir::GraphPtr>(a);
      w.u8(g ? 1 : 0);
      if (g) put_graph(w, *g, sink, depth + 1);
      break;
    }
  }
}

void put_graph(codec::Writer& w, const ir::Graph& g, TensorSink& sink, int depth) {
  if (depth > kMaxGraphDepth)
    KILN_THROW(InvalidArgument, "plan: subgraphs nested deeper than " << kMaxGraphDepth << " (graph '" << g.name
                                                                      << "'; a graph that contains itself?)");
  w.str(g.name);
  w.count(g.nodes.size(), "nodes");
  for (const ir::Node& n : g.nodes) {
    w.str(n.name);
    w.str(n.op_type);
    w.str(n.domain);
    w.i64(n.opset);
    put_strings(w, n.inputs, "node inputs");
    put_strings(w, n.outputs, "node outputs");
    w.count(n.attrs.size(), "attributes");
    for (const auto& [k, a] : n.attrs) {
      w.str(k);
      put_attr(w, a, sink, depth);
    }
    w.str(n.tactic);
  }
  put_strings(w, g.inputs, "graph inputs");
  put_strings(w, g.outputs, "graph outputs");
  w.count(g.types.size(), "value types");
  for (const auto& [name, t] : g.types) {
    w.str(name);
    w.u8(static_cast<uint8_t>(t.dtype));
    w.u8(t.has_rank ? 1 : 0);
    put_dims(w, t.has_rank ? t.dims : std::vector<Dim>{});
  }
  w.count(g.initializers.size(), "initializers");
  for (const auto& [name, t] : g.initializers) {
    w.str(name);
    put_tensor(w, t, sink);
  }
  w.count(g.input_defaults.size(), "input defaults");
  for (const auto& [name, t] : g.input_defaults) {
    w.str(name);
    put_tensor(w, t, sink);
  }
}

void put_infos(codec::Writer& w, const std::vector<TensorInfo>& v) {
  w.count(v.size(), "tensor infos");
  for (const TensorInfo& ti : v) {
    w.str(ti.name);
    w.u8(static_cast<uint8_t>(ti.dtype));
    put_dims(w, ti.dims);
  }
}

void put_shape(codec::Writer& w, const Shape& s) {
  for (int64_t d : s) w.i64(d);
}

// ---- reading -------------------------------------------------------------------------------------

std::string describe(const std::string& a, const std::string& b) { return a + " '" + b + "'"; }

DType get_dtype(codec::Reader& r, const char* what) {
  uint8_t v = r.u8(what);
  if (v >= all_dtypes().size()) r.fail(std::string(what) + ": unknown dtype code " + std::to_string(v));
  return static_cast<DType>(v);
}

std::vector<std::string> get_strings(codec::Reader& r, const char* what) {
  size_t n = r.count(what, kMinStr);
  std::vector<std::string> v;
  v.reserve(n);
  for (size_t i = 0; i < n; ++i) v.push_back(r.str(what));
  return v;
}

size_t get_rank(codec::Reader& r, const char* what, size_t min_elem) {
  size_t n = r.count(what, min_elem);
  if (n > kMaxRank) r.fail(std::string(what) + ": rank " + std::to_string(n) + " exceeds " + std::to_string(kMaxRank));
  return n;
}

std::vector<Dim> get_dims(codec::Reader& r) {
  size_t n = get_rank(r, "dims", kMinDim);
  std::vector<Dim> dims(n);
  for (Dim& d : dims) {
    d.value = r.i64("dim value");
    d.symbol = r.str("dim symbol");
  }
  return dims;
}

// Element count of `shape`, Integrity on negative dims or overflow of the byte size.
uint64_t checked_nbytes(codec::Reader& r, const Shape& shape, DType dt) {
  uint64_t n = 1;
  const uint64_t limit = std::numeric_limits<uint64_t>::max() / dtype_size(dt);
  for (int64_t d : shape) {
    if (d < 0) r.fail("tensor has negative dimension " + std::to_string(d) + " in " + shape_str(shape));
    uint64_t ud = static_cast<uint64_t>(d);
    if (ud != 0 && n > limit / ud) r.fail("tensor shape " + shape_str(shape) + " overflows");
    n *= ud;
  }
  return n * dtype_size(dt);
}

Tensor get_tensor(codec::Reader& r, const Blob& blob, const std::string& what) {
  uint8_t present = r.u8("tensor flag");
  if (present == 0) return Tensor();
  if (present != 1) r.fail(what + ": bad tensor flag " + std::to_string(present));
  DType dt = get_dtype(r, "tensor dtype");
  size_t rank = get_rank(r, "tensor dims", 8);
  Shape shape(rank);
  for (int64_t& d : shape) d = r.i64("tensor dim");
  uint64_t offset = r.u64("tensor offset");
  uint64_t nbytes = r.u64("tensor size");
  uint64_t want = checked_nbytes(r, shape, dt);
  std::ostringstream os;
  if (nbytes != want) {
    os << what << ": " << dtype_name(dt) << shape_str(shape) << " needs " << want << " bytes, table says " << nbytes;
  } else if (offset % kWeightAlignment != 0) {
    os << what << ": weight offset " << offset << " is not a multiple of " << kWeightAlignment;
  } else if (offset > blob.size || nbytes > blob.size - offset) {
    os << what << ": weights [" << offset << ", +" << nbytes << ") lie outside the " << blob.size << "-byte blob";
  }
  if (!os.str().empty()) r.fail(os.str());
  const char* p = blob.data + offset;
  if (reinterpret_cast<uintptr_t>(p) % dtype_size(dt) != 0)  // plan bytes not suitably aligned in memory: copy
    return Tensor::from_bytes(dt, std::move(shape), p, static_cast<size_t>(nbytes));
  return Tensor::view(dt, std::move(shape), blob.owner, p);
}

ir::GraphPtr get_graph(codec::Reader& r, const Blob& blob, int depth);

ir::Attr get_attr(codec::Reader& r, const Blob& blob, const std::string& what, int depth) {
  uint8_t kind = r.u8("attribute kind");
  switch (kind) {
    case kInt: return r.i64("int attribute");
    case kFloat: return r.f32("float attribute");
    case kString: return r.str("string attribute");
    case kInts: {
      size_t n = r.count("ints", 8);
      std::vector<int64_t> v(n);
      for (int64_t& x : v) x = r.i64("ints");
      return v;
    }
    case kFloats: {
      size_t n = r.count("floats", 4);
      std::vector<float> v(n);
      for (float& x : v) x = r.f32("floats");
      return v;
    }
    case kStrings: return get_strings(r, "strings");
    case kTensor: return get_tensor(r, blob, what);
    case kGraph: {
      uint8_t present = r.u8("graph flag");
      if (present == 0) return ir::GraphPtr();
      if (present != 1) r.fail(what + ": bad graph flag " + std::to_string(present));
      return get_graph(r, blob, depth + 1);
    }
    default: break;
  }
  r.fail(what + ": unknown attribute kind " + std::to_string(kind));
}

ir::Node get_node(codec::Reader& r, const Blob& blob, int depth) {
  ir::Node n;
  n.name = r.str("node name");
  n.op_type = r.str("node op_type");
  n.domain = r.str("node domain");
  n.opset = r.i64("node opset");
  n.inputs = get_strings(r, "node inputs");
  n.outputs = get_strings(r, "node outputs");
  size_t na = r.count("attributes", kMinAttr);
  for (size_t i = 0; i < na; ++i) {
    std::string key = r.str("attribute name");
    if (n.attrs.count(key)) r.fail(describe("node", n.name) + ": duplicate attribute '" + key + "'");
    ir::Attr a = get_attr(r, blob, describe("node", n.name) + " attribute '" + key + "'", depth);
    n.attrs.emplace(std::move(key), std::move(a));
  }
  n.tactic = r.str("node tactic");
  return n;
}

ir::GraphPtr get_graph(codec::Reader& r, const Blob& blob, int depth) {
  if (depth > kMaxGraphDepth) r.fail("subgraphs nested deeper than " + std::to_string(kMaxGraphDepth));
  auto g = std::make_shared<ir::Graph>();
  g->name = r.str("graph name");
  size_t nn = r.count("nodes", kMinNode);
  g->nodes.reserve(nn);
  for (size_t i = 0; i < nn; ++i) g->nodes.push_back(get_node(r, blob, depth));
  g->inputs = get_strings(r, "graph inputs");
  g->outputs = get_strings(r, "graph outputs");
  size_t nt = r.count("value types", kMinValueType);
  for (size_t i = 0; i < nt; ++i) {
    std::string name = r.str("value name");
    if (g->types.count(name)) r.fail(describe("graph", g->name) + ": duplicate value type for '" + name + "'");
    ir::ValueType t;
    t.dtype = get_dtype(r, "value dtype");
    uint8_t has_rank = r.u8("value has_rank");
    if (has_rank > 1) r.fail(describe("value", name) + ": bad has_rank flag " + std::to_string(has_rank));
    t.has_rank = has_rank == 1;
    t.dims = get_dims(r);
    if (!t.has_rank && !t.dims.empty()) r.fail(describe("value", name) + ": dims given for an unknown rank");
    g->types.emplace(std::move(name), std::move(t));
  }
  size_t ni = r.count("initializers", kMinInit);
  for (size_t i = 0; i < ni; ++i) {
    std::string name = r.str("initializer name");
    if (g->initializers.count(name)) r.fail(describe("graph", g->name) + ": duplicate initializer '" + name + "'");
    Tensor t = get_tensor(r, blob, describe("initializer", name));
    g->initializers.emplace(std::move(name), std::move(t));
  }
  size_t nd = r.count("input defaults", kMinInit);
  for (size_t i = 0; i < nd; ++i) {
    std::string name = r.str("input default name");
    if (g->input_defaults.count(name)) r.fail(describe("graph", g->name) + ": duplicate input default '" + name + "'");
    Tensor t = get_tensor(r, blob, describe("input default", name));
    g->input_defaults.emplace(std::move(name), std::move(t));
  }
  return g;
}

std::vector<TensorInfo> get_infos(codec::Reader& r) {
  size_t n = r.count("tensor infos", kMinTensorInfo);
  std::vector<TensorInfo> v(n);
  for (TensorInfo& ti : v) {
    ti.name = r.str("tensor info name");
    ti.dtype = get_dtype(r, "tensor info dtype");
    ti.dims = get_dims(r);
  }
  return v;
}

Shape get_shape(codec::Reader& r, size_t rank) {
  Shape s(rank);
  for (int64_t& d : s) d = r.i64("profile dim");
  return s;
}

std::vector<Profile> get_profiles(codec::Reader& r) {
  size_t np = r.count("profiles", 4);
  std::vector<Profile> v(np);
  for (size_t pi = 0; pi < np; ++pi) {
    size_t ne = r.count("profile inputs", kMinProfileEntry);
    for (size_t i = 0; i < ne; ++i) {
      std::string name = r.str("profile input name");
      size_t rank = get_rank(r, "profile rank", 3 * 8);
      Shape mn = get_shape(r, rank), opt = get_shape(r, rank), mx = get_shape(r, rank);
      if (v[pi].has(name)) r.fail("profile " + std::to_string(pi) + ": duplicate input '" + name + "'");
      try {
        v[pi].add_input_shape(name, mn, opt, mx);
      } catch (const Error& err) {
        r.fail("profile " + std::to_string(pi) + ": " + err.what());
      }
    }
  }
  return v;
}

}  // namespace plan_body_detail

uint64_t TensorSink::add(const Tensor& t) {
  uint64_t off = plan_body_detail::align_up(blob_size);
  tensors.push_back(t);
  offsets.push_back(off);
  blob_size = off + t.nbytes();
  return off;
}

void write_engine_body(codec::Writer& w, const detail::EngineImpl& e, TensorSink& sink, uint32_t format_version) {
  namespace d = plan_body_detail;
  d::put_graph(w, e.graph, sink, 0);
  d::put_infos(w, e.inputs);
  d::put_infos(w, e.outputs);
  w.count(e.profiles.size(), "profiles");
  for (const Profile& p : e.profiles) {
    w.count(p.shapes().size(), "profile inputs");
    for (const auto& [name, range] : p.shapes()) {
      w.str(name);
      w.count(range.min.size(), "profile dims");
      d::put_shape(w, range.min);
      d::put_shape(w, range.opt);
      d::put_shape(w, range.max);
    }
  }
  w.str(e.model_hash);
  if (format_version < 3) {
    if (!e.profile_tactics.empty())
      KILN_THROW(InvalidArgument, "plan format " << format_version << " cannot hold per-profile tactics");
    return;
  }
  // Format 3: per-profile tactics, none (every profile runs node.tactic) or one list per profile, one name per node.
  if (!e.profile_tactics.empty() && e.profile_tactics.size() != e.profiles.size())
    KILN_THROW(InvalidArgument, "plan: " << e.profile_tactics.size() << " per-profile tactic lists for "
                                         << e.profiles.size() << " profiles");
  w.count(e.profile_tactics.size(), "profile tactic lists");
  for (const auto& per : e.profile_tactics) {
    if (per.size() != e.graph.nodes.size())
      KILN_THROW(InvalidArgument, "plan: a per-profile tactic list has " << per.size() << " names for "
                                                                          << e.graph.nodes.size() << " nodes");
    d::put_strings(w, per, "profile tactics");
  }
}

void read_engine_body(codec::Reader& r, const Blob& blob, detail::EngineImpl& e, uint32_t format_version) {
  namespace d = plan_body_detail;
  ir::GraphPtr g = d::get_graph(r, blob, 0);
  e.graph = std::move(*g);
  e.inputs = d::get_infos(r);
  for (TensorInfo& ti : e.inputs) ti.has_default = e.graph.input_defaults.count(ti.name) != 0;
  e.outputs = d::get_infos(r);
  e.profiles = d::get_profiles(r);
  e.model_hash = r.str("model hash");
  if (format_version >= 3) {
    const size_t lists = r.count("profile tactic lists", 4);
    if (lists != 0 && lists != e.profiles.size())
      r.fail(std::to_string(lists) + " per-profile tactic lists for " + std::to_string(e.profiles.size()) +
             " profiles");
    e.profile_tactics.resize(lists);
    for (size_t p = 0; p < lists; ++p) {
      const size_t n = r.count("profile tactics", d::kMinStr);
      if (n != e.graph.nodes.size())
        r.fail("profile " + std::to_string(p) + ": " + std::to_string(n) + " tactics for " +
               std::to_string(e.graph.nodes.size()) + " nodes");
      std::vector<std::string>& per = e.profile_tactics[p];
      per.reserve(n);
      for (size_t i = 0; i < n; ++i) per.push_back(r.str("profile tactic"));
    }
    if (lists)
      for (size_t i = 0; i < e.graph.nodes.size(); ++i)
        if (e.profile_tactics[0][i] != e.graph.nodes[i].tactic)
          r.fail("profile 0's tactic of node " + std::to_string(i) + " ('" + e.profile_tactics[0][i] +
                 "') differs from the node's ('" + e.graph.nodes[i].tactic + "')");
  }
  r.expect_end();
}

}  // namespace kiln::plan::body
