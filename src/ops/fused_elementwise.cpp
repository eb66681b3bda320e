// kiln.FusedElementwise (domain "kiln", opset 1): the program model of ops/fused_elementwise.h, its inference
// (numpy broadcast of the node's inputs, the last step's dtype) and its reference kernel, which runs every step with
// that ONNX op's own reference kernel on whole tensors (so a fused node equals the nodes it replaced, bit for bit),
// plus the compiler to the accumulator code the CUDA kernel interprets.
#include "ops/fused_elementwise.h"

#include <map>
#include <set>
#include <sstream>

#include "ir/dtype_codes.h"
#include "ops/common.h"

namespace kiln::ops::fused {
namespace {

enum class Kind { Unary, Binary, Where, Clip, Cast };

const std::map<std::string, Kind>& op_kinds() {
  static const std::map<std::string, Kind> m = {
      {"Add", Kind::Binary},       {"Sub", Kind::Binary},       {"Mul", Kind::Binary},      {"Div", Kind::Binary},
      {"Pow", Kind::Binary},       {"Max", Kind::Binary},       {"Min", Kind::Binary},      {"PRelu", Kind::Binary},
      {"Where", Kind::Where},      {"Clip", Kind::Clip},        {"Cast", Kind::Cast},       {"Relu", Kind::Unary},
      {"Sigmoid", Kind::Unary},    {"Tanh", Kind::Unary},       {"Erf", Kind::Unary},       {"Exp", Kind::Unary},
      {"Log", Kind::Unary},        {"Sqrt", Kind::Unary},       {"Neg", Kind::Unary},       {"Abs", Kind::Unary},
      {"Reciprocal", Kind::Unary}, {"Gelu", Kind::Unary},       {"HardSwish", Kind::Unary}, {"HardSigmoid", Kind::Unary},
      {"LeakyRelu", Kind::Unary},  {"Elu", Kind::Unary},        {"Softplus", Kind::Unary},  {"Mish", Kind::Unary},
      {"Ceil", Kind::Unary},       {"Floor", Kind::Unary},      {"Sign", Kind::Unary}};
  return m;
}

Kind kind_of(const std::string& op) { return op_kinds().at(op); }

// Operands a step of this kind must have (present) and may have.
size_t required_operands(Kind k) { return k == Kind::Binary ? 2 : k == Kind::Where ? 3 : 1; }
size_t max_operands(Kind k) { return k == Kind::Binary ? 2 : k == Kind::Unary || k == Kind::Cast ? 1 : 3; }

template <class T>
const std::vector<T>& attr_list(const ir::Node& n, const char* k) {
  auto it = n.attrs.find(k);
  if (it == n.attrs.end() || !std::holds_alternative<std::vector<T>>(it->second))
    KILN_THROW(InvalidModel, n.label() << ": attribute '" << k << "' is missing or has the wrong kind");
  return std::get<std::vector<T>>(it->second);
}

DType dtype_attr(const ir::Node& n, int64_t code, const char* what) {
  const auto dt = ir::dtype_from_onnx_code(code);
  if (!dt) KILN_THROW(InvalidModel, n.label() << ": " << what << " has unknown dtype code " << code);
  return *dt;
}

// A rank-0 tensor of dtype dt holding v (v is exact in dt: the pass only makes such constants).
Tensor scalar_tensor(DType dt, float v, const ir::Node& n) {
  Tensor t(dt, Shape{});
  dispatch(AllTypes{}, dt, n, "constant", [&](auto tag) {
    using T = DT<decltype(tag)::value>;
    t.mutable_as<typename T::S>()[0] = T::store(convert_value<typename T::C>(v));
  });
  return t;
}

// The one-node ONNX node a step stands for (inputs named a, b, c; "" for omitted ones).
ir::Node step_node(const ir::Node& fused, const Step& s, size_t j) {
  ir::Node n;
  n.name = fused.name + "/" + std::to_string(j) + ":" + s.op;
  n.op_type = s.op;
  n.opset = s.opset;
  size_t count = 0;
  for (size_t k = 0; k < 3; ++k)
    if (s.operands[k] >= 0) count = k + 1;
  for (size_t k = 0; k < count; ++k) n.inputs.push_back(s.operands[k] >= 0 ? std::string(1, char('a' + k)) : "");
  n.outputs = {"y"};
  if (s.op == "LeakyRelu" || s.op == "Elu") n.attrs["alpha"] = s.alpha;
  if (s.op == "HardSigmoid") {
    n.attrs["alpha"] = s.alpha;
    n.attrs["beta"] = s.beta;
  }
  if (s.op == "Gelu") n.attrs["approximate"] = std::string(s.mode == 1 ? "tanh" : "none");
  if (s.op == "Cast") n.attrs["to"] = ir::dtype_to_onnx_code(s.dtype);
  return n;
}

std::vector<ValueType> infer(const InferContext& ctx) {
  const ir::Node& n = ctx.node;
  const Program p = decode(n);
  if (n.outputs.size() != 1) KILN_THROW(InvalidModel, n.label() << ": expects 1 output, got " << n.outputs.size());
  for (size_t i = 0; i < p.num_inputs; ++i)
    if (!ctx.has(i)) KILN_THROW(InvalidModel, n.label() << ": input " << i << " is required");
  return {broadcast_types(ctx, p.steps.back().dtype)};
}

void reference(const ir::Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  const Program p = decode(n);
  std::vector<Tensor> slots;
  slots.reserve(p.first_step_slot() + p.steps.size());
  for (size_t i = 0; i < p.num_inputs; ++i) slots.push_back(in_tensor(n, in, i));
  for (size_t c = 0; c < p.constants.size(); ++c) slots.push_back(scalar_tensor(p.constant_dtypes[c], p.constants[c], n));
  for (size_t j = 0; j < p.steps.size(); ++j) {
    const Step& s = p.steps[j];
    const ir::Node sn = step_node(n, s, j);
    const ir::OpDef* def = ir::OpRegistry::instance().find("", s.op, s.opset);
    if (!def) KILN_THROW(Unsupported, n.label() << ": step " << j << " (" << s.op << "-" << s.opset << ") has no kernel");
    std::vector<const Tensor*> args;
    for (size_t k = 0; k < sn.inputs.size(); ++k)
      args.push_back(s.operands[k] >= 0 ? &slots[static_cast<size_t>(s.operands[k])] : nullptr);
    std::vector<Tensor> res(1);
    def->reference(sn, args, res);
    slots.push_back(std::move(res[0]));
  }
  out[0] = slots.back();
}

// ---- compiler ------------------------------------------------------------------------------------------------------
class Compiler {
 public:
  Compiler(const Program& p, std::vector<FusedInst>& code) : p_(p), code_(code) {}

  bool run(std::string* why) {
    const size_t S = p_.steps.size(), base = p_.first_step_slot();
    if (p_.num_inputs > static_cast<size_t>(kMaxInputs)) return fail(why, "more than 8 inputs");
    std::vector<int> uses(S, 0);
    for (const Step& s : p_.steps)
      for (int64_t o : s.operands)
        if (o >= static_cast<int64_t>(base)) ++uses[static_cast<size_t>(o) - base];
    // A step read more than once is computed first and kept in a register of its own for the whole program.
    shared_.assign(S, -1);
    int nshared = 0;
    for (size_t j = 0; j + 1 < S; ++j) {
      if (uses[j] == 0) return fail(why, "step " + std::to_string(j) + " is never read");
      if (uses[j] == 1) continue;
      if (nshared == kMaxSaved) return fail(why, "more than 3 saved registers");
      shared_[j] = nshared++;
    }
    code_.clear();
    for (size_t j = 0; j + 1 < S; ++j) {
      if (shared_[j] < 0) continue;
      if (!gen(j, nshared)) return fail(why, err_);
      emit(kOpSave, kSrcNone, 0, static_cast<uint8_t>(shared_[j]));
    }
    if (!gen(S - 1, nshared)) return fail(why, err_);
    if (code_.size() > static_cast<size_t>(kMaxInsts)) return fail(why, "more than 48 instructions");
    return true;
  }

 private:
  static bool fail(std::string* why, const std::string& w) {
    if (why) *why = w;
    return false;
  }
  // A step computed in place (read once); shared steps count as leaves (their register).
  bool is_step(int64_t slot) const {
    return slot >= static_cast<int64_t>(p_.first_step_slot()) && shared_[step_of(slot)] < 0;
  }
  size_t step_of(int64_t slot) const { return static_cast<size_t>(slot) - p_.first_step_slot(); }

  // Saved registers step j needs (Sethi-Ullman).
  int need(size_t j) const {
    const Step& s = p_.steps[j];
    const Kind k = kind_of(s.op);
    if (k == Kind::Binary || k == Kind::Where) {
      const int64_t a = s.operands[k == Kind::Where ? 1 : 0], b = s.operands[k == Kind::Where ? 2 : 1];
      const bool sa = is_step(a), sb = is_step(b);
      if (sa && sb) {
        const int na = need(step_of(a)), nb = need(step_of(b));
        return na == nb ? na + 1 : std::max(na, nb);
      }
      if (sa) return need(step_of(a));
      if (sb) return need(step_of(b));
      return 0;
    }
    return is_step(s.operands[0]) ? need(step_of(s.operands[0])) : 0;
  }

  // B as a leaf operand (a node input, a constant or a shared step's register).
  bool leaf(int64_t slot, FusedInst& in) {
    if (slot >= static_cast<int64_t>(p_.first_step_slot())) {
      in.src = kSrcSaved;
      in.idx = static_cast<uint8_t>(shared_[step_of(slot)]);
    } else if (slot < static_cast<int64_t>(p_.num_inputs)) {
      in.src = kSrcInput;
      in.idx = static_cast<uint8_t>(slot);
    } else {
      in.src = kSrcConst;
      in.imm = p_.constants[static_cast<size_t>(slot) - p_.num_inputs];
    }
    return true;
  }
  void emit(uint8_t op, uint8_t src = kSrcNone, uint8_t idx = 0, uint8_t aux = 0, float imm = 0, float imm2 = 0) {
    FusedInst in;
    in.op = op;
    in.src = src;
    in.idx = idx;
    in.aux = aux;
    in.imm = imm;
    in.imm2 = imm2;
    code_.push_back(in);
  }
  void emit_leaf(uint8_t op, int64_t slot, uint8_t aux = 0) {
    FusedInst in;
    in.op = op;
    in.aux = aux;
    leaf(slot, in);
    code_.push_back(in);
  }
  // Leaves operand `slot` in acc.
  bool value(int64_t slot, int depth) {
    if (is_step(slot)) return gen(step_of(slot), depth);
    emit_leaf(kOpLoad, slot);
    return true;
  }

  static uint8_t binary_op(const std::string& op, bool reversed) {
    if (op == "Add") return kOpAdd;
    if (op == "Mul") return kOpMul;
    if (op == "Max") return kOpMax;
    if (op == "Min") return kOpMin;
    if (op == "Sub") return reversed ? kOpRSub : kOpSub;
    if (op == "Div") return reversed ? kOpRDiv : kOpDiv;
    if (op == "Pow") return reversed ? kOpRPow : kOpPow;
    if (op == "PRelu") return reversed ? kOpRPRelu : kOpPRelu;
    return reversed ? kOpRWhere : kOpWhere;
  }
  static uint8_t unary_op(const Step& s) {
    static const std::map<std::string, uint8_t> m = {
        {"Relu", kOpRelu},       {"Sigmoid", kOpSigmoid},     {"Tanh", kOpTanh},        {"Erf", kOpErf},
        {"Exp", kOpExp},         {"Log", kOpLog},             {"Sqrt", kOpSqrt},        {"Neg", kOpNeg},
        {"Abs", kOpAbs},         {"Reciprocal", kOpReciprocal}, {"HardSwish", kOpHardSwish},
        {"HardSigmoid", kOpHardSigmoid}, {"LeakyRelu", kOpLeakyRelu}, {"Elu", kOpElu}, {"Softplus", kOpSoftplus},
        {"Mish", kOpMish},       {"Ceil", kOpCeil},           {"Floor", kOpFloor},      {"Sign", kOpSign}};
    if (s.op == "Gelu") return s.mode == 1 ? kOpGeluTanh : kOpGelu;
    return m.at(s.op);
  }

  bool gen(size_t j, int depth) {
    const Step& s = p_.steps[j];
    const Kind k = kind_of(s.op);
    switch (k) {
      case Kind::Unary:
        if (!value(s.operands[0], depth)) return false;
        emit(unary_op(s), kSrcNone, 0, 0, s.alpha, s.beta);
        return true;
      case Kind::Cast:
        if (!value(s.operands[0], depth)) return false;
        if (s.dtype == DType::Float16) emit(kOpRoundF16);
        else if (s.dtype == DType::BFloat16) emit(kOpRoundBF16);
        else if (s.dtype != DType::Float32) return bad("Cast to " + std::string(dtype_name(s.dtype)));
        return true;
      case Kind::Clip:
        if (!value(s.operands[0], depth)) return false;
        for (size_t b = 1; b < 3; ++b) {
          if (s.operands[b] < 0) continue;
          if (is_step(s.operands[b])) return bad("a Clip bound computed in the program");
          emit_leaf(b == 1 ? kOpClipLo : kOpClipHi, s.operands[b]);
        }
        return true;
      case Kind::Binary:
      case Kind::Where: break;
    }
    uint8_t cond = 0;
    if (k == Kind::Where) {
      const int64_t c = s.operands[0];
      if (c < 0 || c >= static_cast<int64_t>(p_.num_inputs)) return bad("a Where condition that is not a node input");
      cond = static_cast<uint8_t>(c);
    }
    const int64_t a = s.operands[k == Kind::Where ? 1 : 0], b = s.operands[k == Kind::Where ? 2 : 1];
    const bool sa = is_step(a), sb = is_step(b);
    if (sa && sb) {
      if (depth >= kMaxSaved) return bad("more than 3 saved registers");
      const bool a_first = need(step_of(a)) >= need(step_of(b));
      if (!gen(step_of(a_first ? a : b), depth)) return false;
      emit(kOpSave, kSrcNone, 0, static_cast<uint8_t>(depth));
      if (!gen(step_of(a_first ? b : a), depth + 1)) return false;
      // acc holds the operand evaluated second, the register the first.
      emit(binary_op(s.op, a_first), kSrcSaved, static_cast<uint8_t>(depth), cond);
      return true;
    }
    if (sb && !sa) {
      if (!gen(step_of(b), depth)) return false;
      emit_leaf(binary_op(s.op, true), a, cond);
      return true;
    }
    if (!value(a, depth)) return false;
    emit_leaf(binary_op(s.op, false), b, cond);
    return true;
  }
  bool bad(const std::string& w) {
    err_ = w;
    return false;
  }

  const Program& p_;
  std::vector<FusedInst>& code_;
  std::vector<int> shared_;  // per step: its register when read more than once, else -1
  std::string err_;
};

std::string slot_name(const Program& p, int64_t slot, std::vector<std::string>& done) {
  if (slot < static_cast<int64_t>(p.num_inputs)) return "x" + std::to_string(slot);
  if (slot < static_cast<int64_t>(p.first_step_slot())) {
    std::ostringstream s;
    s << p.constants[static_cast<size_t>(slot) - p.num_inputs];
    return s.str();
  }
  return done[static_cast<size_t>(slot) - p.first_step_slot()];
}

}  // namespace

bool fusable_op(const std::string& op) { return op_kinds().count(op) != 0; }

Program decode(const ir::Node& n) {
  Program p;
  p.num_inputs = n.inputs.size();
  const auto& ops = attr_list<std::string>(n, "ops");
  const auto& opsets = attr_list<int64_t>(n, "opsets");
  const auto& operands = attr_list<int64_t>(n, "operands");
  const auto& dtypes = attr_list<int64_t>(n, "dtypes");
  const auto& alphas = attr_list<float>(n, "alphas");
  const auto& betas = attr_list<float>(n, "betas");
  const auto& modes = attr_list<int64_t>(n, "modes");
  p.constants = attr_list<float>(n, "constants");
  const auto& cdt = attr_list<int64_t>(n, "constant_dtypes");
  const size_t S = ops.size();
  if (S == 0) KILN_THROW(InvalidModel, n.label() << ": the program has no steps");
  if (opsets.size() != S || operands.size() != 3 * S || dtypes.size() != S || alphas.size() != S ||
      betas.size() != S || modes.size() != S || cdt.size() != p.constants.size())
    KILN_THROW(InvalidModel, n.label() << ": program attributes have inconsistent lengths");
  for (int64_t c : cdt) p.constant_dtypes.push_back(dtype_attr(n, c, "a constant"));
  for (size_t j = 0; j < S; ++j) {
    Step s;
    s.op = ops[j];
    if (!fusable_op(s.op)) KILN_THROW(InvalidModel, n.label() << ": step " << j << ": op " << s.op << " cannot be fused");
    s.opset = opsets[j];
    s.dtype = dtype_attr(n, dtypes[j], "a step");
    s.alpha = alphas[j];
    s.beta = betas[j];
    s.mode = modes[j];
    const int64_t limit = static_cast<int64_t>(p.first_step_slot() + j);
    const Kind k = kind_of(s.op);
    for (size_t o = 0; o < 3; ++o) {
      const int64_t v = operands[3 * j + o];
      if (v < -1 || v >= limit || (v >= 0 && o >= max_operands(k)) || (v < 0 && o < required_operands(k)))
        KILN_THROW(InvalidModel, n.label() << ": step " << j << " (" << s.op << ") has an invalid operand " << o << ": "
                                           << v);
      s.operands[o] = v;
    }
    p.steps.push_back(s);
  }
  return p;
}

void encode(const Program& p, ir::Node& n) {
  std::vector<std::string> ops;
  std::vector<int64_t> opsets, operands, dtypes, modes, cdt;
  std::vector<float> alphas, betas;
  for (const Step& s : p.steps) {
    ops.push_back(s.op);
    opsets.push_back(s.opset);
    for (int64_t o : s.operands) operands.push_back(o);
    dtypes.push_back(ir::dtype_to_onnx_code(s.dtype));
    alphas.push_back(s.alpha);
    betas.push_back(s.beta);
    modes.push_back(s.mode);
  }
  for (DType d : p.constant_dtypes) cdt.push_back(ir::dtype_to_onnx_code(d));
  n.attrs["ops"] = ops;
  n.attrs["opsets"] = opsets;
  n.attrs["operands"] = operands;
  n.attrs["dtypes"] = dtypes;
  n.attrs["alphas"] = alphas;
  n.attrs["betas"] = betas;
  n.attrs["modes"] = modes;
  n.attrs["constants"] = p.constants;
  n.attrs["constant_dtypes"] = cdt;
}

bool compile(const Program& p, std::vector<FusedInst>& code, std::string* why) {
  return Compiler(p, code).run(why);
}

std::string describe(const Program& p) {
  std::vector<std::string> done;
  for (const Step& s : p.steps) {
    std::string e = s.op == "Cast" ? std::string("Cast<") + dtype_name(s.dtype) + ">" : s.op;
    e += "(";
    bool first = true;
    for (int64_t o : s.operands) {
      if (o < 0) continue;
      e += (first ? "" : ", ") + slot_name(p, o, done);
      first = false;
    }
    done.push_back(e + ")");
  }
  return done.back();
}

void register_fused_elementwise() {
  ir::OpDef def;
  def.op_type = kOpType;
  def.domain = kDomain;
  def.since = {1};
  def.infer = infer;
  def.reference = reference;
  ir::OpRegistry::instance().add(std::move(def));
}

}  // namespace kiln::ops::fused
