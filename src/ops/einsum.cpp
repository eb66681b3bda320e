// Einsum (opset 12): the general form. The equation is parsed into labels per input dim: letters, and the
// dims an ellipsis stands for (right-aligned across inputs and broadcast like numpy). A label repeated in one
// term takes the diagonal; labels missing from the output are summed over. Implicit output (no "->"): the
// ellipsis dims, then the letters used exactly once, in ASCII order. The reference kernel is one generic loop
// over every label combination (float64 accumulation for floats, int64 for integers).
#include <algorithm>
#include <cctype>

#include "ops/common.h"

namespace kiln::ops::einsum_detail {

constexpr int kLetters = 52;  // a-z -> 0..25, A-Z -> 26..51; ellipsis dims from 52

struct Term {
  std::vector<int> letters;  // label per explicit position, -1 where the ellipsis stands
  bool ellipsis = false;
};

struct Spec {
  std::vector<std::vector<int>> in;  // label per input dim
  std::vector<int> out;              // label per output dim
  int num_labels = kLetters;
};

int letter_id(char c) { return c >= 'a' && c <= 'z' ? c - 'a' : 26 + (c - 'A'); }

Term parse_term(const Node& n, const std::string& s, const std::string& eq) {
  Term t;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (std::isspace(static_cast<unsigned char>(c))) continue;
    if (c == '.') {
      if (t.ellipsis || s.compare(i, 3, "...") != 0)
        KILN_THROW(InvalidModel, n.label() << ": malformed ellipsis in equation '" << eq << "'");
      t.ellipsis = true;
      t.letters.push_back(-1);
      i += 2;
      continue;
    }
    if (!std::isalpha(static_cast<unsigned char>(c)))
      KILN_THROW(InvalidModel, n.label() << ": invalid character '" << c << "' in equation '" << eq << "'");
    t.letters.push_back(letter_id(c));
  }
  return t;
}

// ranks: per input rank, or -1 when unknown (then parse fails soft: returns false).
bool parse(const Node& n, const std::vector<int64_t>& ranks, Spec& spec) {
  const std::string eq = n.attr_string("equation", "");
  if (!n.has_attr("equation")) KILN_THROW(InvalidModel, n.label() << ": required attribute 'equation' is missing");
  const size_t arrow = eq.find("->");
  const std::string lhs = eq.substr(0, arrow);
  std::vector<Term> terms;
  size_t pos = 0;
  while (true) {
    const size_t comma = lhs.find(',', pos);
    terms.push_back(parse_term(n, lhs.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos), eq));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  if (terms.size() != ranks.size())
    KILN_THROW(InvalidModel, n.label() << ": equation '" << eq << "' has " << terms.size() << " input terms, the node has "
                                       << ranks.size() << " inputs");
  // Ellipsis ranks.
  std::vector<int64_t> ell(terms.size(), 0);
  int64_t ell_rank = 0;
  bool unknown = false;
  for (size_t i = 0; i < terms.size(); ++i) {
    const int64_t explicit_dims = static_cast<int64_t>(terms[i].letters.size()) - (terms[i].ellipsis ? 1 : 0);
    if (ranks[i] < 0) {
      unknown |= terms[i].ellipsis;
      continue;
    }
    if (terms[i].ellipsis ? ranks[i] < explicit_dims : ranks[i] != explicit_dims)
      KILN_THROW(InvalidModel, n.label() << ": input " << i << " has rank " << ranks[i] << ", equation '" << eq
                                         << "' gives it " << explicit_dims << (terms[i].ellipsis ? "+" : "") << " dims");
    ell[i] = terms[i].ellipsis ? ranks[i] - explicit_dims : 0;
    ell_rank = std::max(ell_rank, ell[i]);
  }
  if (unknown) return false;
  spec.num_labels = kLetters + static_cast<int>(ell_rank);
  spec.in.assign(terms.size(), {});
  std::vector<int> count(static_cast<size_t>(spec.num_labels), 0);
  for (size_t i = 0; i < terms.size(); ++i)
    for (int l : terms[i].letters) {
      if (l >= 0) {
        spec.in[i].push_back(l), ++count[static_cast<size_t>(l)];
        continue;
      }
      for (int64_t j = 0; j < ell[i]; ++j) spec.in[i].push_back(kLetters + static_cast<int>(ell_rank - ell[i] + j));
    }
  if (arrow == std::string::npos) {
    for (int64_t j = 0; j < ell_rank; ++j) spec.out.push_back(kLetters + static_cast<int>(j));
    std::vector<int> once;
    for (int l = 0; l < kLetters; ++l)
      if (count[static_cast<size_t>(l)] == 1) once.push_back(l);
    // ASCII order: upper case before lower case.
    std::stable_sort(once.begin(), once.end(), [](int a, int b) { return (a >= 26) > (b >= 26); });
    spec.out.insert(spec.out.end(), once.begin(), once.end());
    return true;
  }
  const Term ot = parse_term(n, eq.substr(arrow + 2), eq);
  std::vector<bool> used(static_cast<size_t>(spec.num_labels), false);
  for (int l : ot.letters) {
    if (l < 0) {
      for (int64_t j = 0; j < ell_rank; ++j) spec.out.push_back(kLetters + static_cast<int>(j));
      continue;
    }
    if (count[static_cast<size_t>(l)] == 0)
      KILN_THROW(InvalidModel, n.label() << ": output label '" << (l < 26 ? char('a' + l) : char('A' + l - 26))
                                         << "' of equation '" << eq << "' is in no input");
    if (used[static_cast<size_t>(l)]) KILN_THROW(InvalidModel, n.label() << ": output of '" << eq << "' repeats a label");
    used[static_cast<size_t>(l)] = true;
    spec.out.push_back(l);
  }
  return true;
}

// Size of every label (ellipsis dims broadcast, letters must agree). dims: per input dims (-1 unknown).
std::vector<int64_t> label_sizes(const Node& n, const Spec& spec, const std::vector<std::vector<int64_t>>& dims) {
  std::vector<int64_t> size(static_cast<size_t>(spec.num_labels), -2);  // -2: unseen
  for (size_t i = 0; i < spec.in.size(); ++i)
    for (size_t d = 0; d < spec.in[i].size(); ++d) {
      const int l = spec.in[i][d];
      const int64_t v = dims[i][d];
      int64_t& s = size[static_cast<size_t>(l)];
      if (v < 0) {
        if (s == -2) s = -1;
        continue;
      }
      if (s < 0 || (l >= kLetters && s == 1)) {
        s = v;
      } else if (s != v && !(l >= kLetters && v == 1)) {
        KILN_THROW(InvalidModel, n.label() << ": dimension " << d << " of input " << i << " is " << v
                                           << ", the same label has size " << s << " elsewhere");
      }
    }
  return size;
}

std::vector<ValueType> einsum_infer(const InferContext& ctx) {
  const Node& n = ctx.node;
  if (n.num_inputs() < 1 || n.outputs.size() != 1) KILN_THROW(InvalidModel, n.label() << ": expects >= 1 input and 1 output");
  const ValueType& first = ctx.input(0);
  check_dtype(NumericTypes{}, first.dtype, n, "input");
  std::vector<int64_t> ranks;
  std::vector<std::vector<int64_t>> dims;
  for (size_t i = 0; i < n.inputs.size(); ++i) {
    const ValueType& t = ctx.input(i);
    if (t.dtype != first.dtype) KILN_THROW(InvalidModel, n.label() << ": all inputs must share a dtype");
    ranks.push_back(t.has_rank ? static_cast<int64_t>(t.dims.size()) : -1);
    std::vector<int64_t> d;
    for (const Dim& x : t.dims) d.push_back(x.is_static() ? x.value : -1);
    dims.push_back(d);
  }
  Spec spec;
  if (!parse(n, ranks, spec)) return {ValueType::unknown(first.dtype)};
  for (size_t i = 0; i < ranks.size(); ++i)
    if (ranks[i] < 0) return {rank_only(first.dtype, static_cast<int64_t>(spec.out.size()))};
  const std::vector<int64_t> size = label_sizes(n, spec, dims);
  // A label of unknown size keeps the symbol of its first dim (unless broadcast ellipsis dims could differ).
  std::vector<Dim> out;
  for (int l : spec.out) {
    Dim d = unknown_dim();
    if (size[static_cast<size_t>(l)] >= 0) {
      d = static_dim(size[static_cast<size_t>(l)]);
    } else if (l < kLetters) {
      for (size_t i = 0; i < spec.in.size() && d.symbol.empty(); ++i)
        for (size_t k = 0; k < spec.in[i].size(); ++k)
          if (spec.in[i][k] == l && !ctx.in[i]->dims[k].symbol.empty()) {
            d = ctx.in[i]->dims[k];
            break;
          }
    }
    out.push_back(d);
  }
  return {make_type(first.dtype, out)};
}

void einsum_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  if (n.num_inputs() < 1 || n.outputs.size() != 1) KILN_THROW(InvalidModel, n.label() << ": expects >= 1 input and 1 output");
  std::vector<int64_t> ranks;
  std::vector<std::vector<int64_t>> dims;
  for (size_t i = 0; i < n.inputs.size(); ++i) {
    const Tensor& t = in_tensor(n, in, i);
    if (t.dtype() != in_tensor(n, in, 0).dtype()) KILN_THROW(InvalidModel, n.label() << ": all inputs must share a dtype");
    ranks.push_back(t.rank());
    dims.push_back(t.shape());
  }
  Spec spec;
  parse(n, ranks, spec);
  const std::vector<int64_t> size = label_sizes(n, spec, dims);
  // Loop order: output labels, then the summed ones.
  std::vector<int> loop = spec.out;
  for (int l = 0; l < spec.num_labels; ++l)
    if (size[static_cast<size_t>(l)] >= 0 && std::find(loop.begin(), loop.end(), l) == loop.end()) loop.push_back(l);
  Shape ys;
  for (int l : spec.out) ys.push_back(size[static_cast<size_t>(l)]);
  // Per input, the stride each loop label contributes (sum for repeated labels: the diagonal; 0 when broadcast).
  std::vector<std::vector<int64_t>> stride(in.size(), std::vector<int64_t>(loop.size(), 0));
  for (size_t i = 0; i < in.size(); ++i) {
    const std::vector<int64_t> cs = contiguous_strides(dims[i]);
    for (size_t d = 0; d < spec.in[i].size(); ++d) {
      if (dims[i][d] == 1 && size[static_cast<size_t>(spec.in[i][d])] != 1) continue;
      const size_t k = static_cast<size_t>(std::find(loop.begin(), loop.end(), spec.in[i][d]) - loop.begin());
      stride[i][k] += cs[d];
    }
  }
  const DType dt = in_tensor(n, in, 0).dtype();
  check_output_size(n, dt, ys);
  Tensor y(dt, ys);
  const int64_t out_total = shape_numel(ys);
  int64_t red_total = 1;
  for (size_t k = spec.out.size(); k < loop.size(); ++k) red_total *= size[static_cast<size_t>(loop[k])];
  if (red_total == 0) {  // an empty summed label: every output is the empty sum, 0
    out[0] = y;
    return;
  }
  dispatch(NumericTypes{}, dt, n, "input", [&](auto tag) {
    using T = DT<decltype(tag)::value>;
    using Acc = std::conditional_t<std::is_floating_point_v<typename T::C>, double, int64_t>;
    auto* py = y.mutable_as<typename T::S>();
    std::vector<int64_t> idx(loop.size(), 0), off(in.size(), 0);
    // Odometer over all loop labels; each output element is finished after red_total steps.
    for (int64_t o = 0; o < out_total; ++o) {
      Acc acc = 0;
      for (int64_t r = 0; r < red_total; ++r) {
        Acc prod = 1;
        for (size_t i = 0; i < in.size(); ++i) prod *= static_cast<Acc>(T::load(in[i]->as<typename T::S>()[off[i]]));
        acc += prod;
        for (size_t k = loop.size(); k-- > 0;) {
          const int64_t lim = size[static_cast<size_t>(loop[k])];
          for (size_t i = 0; i < in.size(); ++i) off[i] += stride[i][k];
          if (++idx[k] < lim) break;
          for (size_t i = 0; i < in.size(); ++i) off[i] -= stride[i][k] * lim;
          idx[k] = 0;
        }
      }
      py[o] = T::store(static_cast<typename T::C>(acc));
    }
  });
  out[0] = y;
}

}  // namespace kiln::ops::einsum_detail

namespace kiln::ops {
void register_einsum() {
  ir::OpRegistry::instance().add(ir::OpDef{"Einsum", "", {12, 28}, einsum_detail::einsum_infer, einsum_detail::einsum_kernel});
}
}  // namespace kiln::ops
