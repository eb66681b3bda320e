// ONNX AttributeProto -> ir::Attr, including attribute references inside function bodies and subgraphs.
#include <memory>

#include "onnx/import_impl.h"
#include "util/error.h"

namespace kiln::onnx_import {

namespace attributes_impl {

using AP = ::onnx::AttributeProto;

// The kind of an attribute; very old models (IR 1) leave `type` unset, so it is inferred from the fields.
AP::AttributeType attr_kind(const AP& a) {
  if (a.type() != AP::UNDEFINED) return a.type();
  if (a.has_g()) return AP::GRAPH;
  if (a.has_t()) return AP::TENSOR;
  if (a.has_sparse_tensor()) return AP::SPARSE_TENSOR;
  if (a.has_tp()) return AP::TYPE_PROTO;
  if (a.has_s()) return AP::STRING;
  if (a.has_i()) return AP::INT;
  if (a.has_f()) return AP::FLOAT;
  if (a.graphs_size()) return AP::GRAPHS;
  if (a.tensors_size()) return AP::TENSORS;
  if (a.sparse_tensors_size()) return AP::SPARSE_TENSORS;
  if (a.type_protos_size()) return AP::TYPE_PROTOS;
  if (a.strings_size()) return AP::STRINGS;
  if (a.ints_size()) return AP::INTS;
  if (a.floats_size()) return AP::FLOATS;
  return AP::UNDEFINED;
}

const char* kind_name(AP::AttributeType t) {
  switch (t) {
    case AP::UNDEFINED: return "UNDEFINED";
    case AP::FLOAT: return "FLOAT";
    case AP::INT: return "INT";
    case AP::STRING: return "STRING";
    case AP::TENSOR: return "TENSOR";
    case AP::GRAPH: return "GRAPH";
    case AP::SPARSE_TENSOR: return "SPARSE_TENSOR";
    case AP::TYPE_PROTO: return "TYPE_PROTO";
    case AP::FLOATS: return "FLOATS";
    case AP::INTS: return "INTS";
    case AP::STRINGS: return "STRINGS";
    case AP::TENSORS: return "TENSORS";
    case AP::GRAPHS: return "GRAPHS";
    case AP::SPARSE_TENSORS: return "SPARSE_TENSORS";
    case AP::TYPE_PROTOS: return "TYPE_PROTOS";
  }
  return "?";
}

}  // namespace attributes_impl

ir::Attr Importer::convert_attr_value(const ::onnx::AttributeProto& a, const Scope& s, const std::string& label,
                                      const std::string& attr_name) {
  using namespace attributes_impl;
  const std::string where = label + ": attribute '" + attr_name + "'";
  switch (attr_kind(a)) {
    case AP::FLOAT: return a.f();
    case AP::INT: return static_cast<int64_t>(a.i());
    case AP::STRING: return a.s();
    case AP::INTS: return std::vector<int64_t>(a.ints().begin(), a.ints().end());
    case AP::FLOATS: return std::vector<float>(a.floats().begin(), a.floats().end());
    case AP::STRINGS: return std::vector<std::string>(a.strings().begin(), a.strings().end());
    case AP::TENSOR: return onnx_tensor::tensor_from_proto(a.t(), &ext_, where);
    case AP::GRAPH: {
      if (nesting_ >= kMaxNesting) KILN_THROW(InvalidModel, where << ": subgraphs nested deeper than " << kMaxNesting);
      auto sub = std::make_shared<ir::Graph>();
      ++nesting_;
      try {
        convert_graph(a.g(), s, *sub, false);
      } catch (...) {
        --nesting_;
        throw;
      }
      --nesting_;
      if (sub->name.empty()) sub->name = attr_name;
      return sub;
    }
    case AP::UNDEFINED: KILN_THROW(InvalidModel, where << " has no value");
    default:
      KILN_THROW(Unsupported, where << " has kind " << kind_name(attr_kind(a)) << ", which kiln does not support");
  }
}

void Importer::convert_attrs(const ::onnx::NodeProto& np, const Scope& s, const std::string& label,
                             std::map<std::string, ir::Attr>& out) {
  for (const auto& a : np.attribute()) {
    const std::string& name = a.name();
    if (name.empty()) KILN_THROW(InvalidModel, label << ": an attribute has no name");
    if (out.count(name)) KILN_THROW(InvalidModel, label << ": attribute '" << name << "' is given twice");
    if (!a.ref_attr_name().empty()) {
      if (!s.attrs)
        KILN_THROW(InvalidModel, label << ": attribute '" << name << "' refers to '" << a.ref_attr_name()
                                       << "', but references are only allowed inside functions");
      auto it = s.attrs->find(a.ref_attr_name());
      if (it == s.attrs->end()) continue;  // not given by the call and no default: the attribute is absent
      out.emplace(name, convert_attr_value(*it->second.proto, *it->second.scope, label, name));
      continue;
    }
    out.emplace(name, convert_attr_value(a, s, label, name));
  }
}

}  // namespace kiln::onnx_import
