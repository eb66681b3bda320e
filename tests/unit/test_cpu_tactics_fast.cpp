// The "fast" elementwise and pooling CPU tactics against the reference kernels: broadcasting layouts, special values
// (NaN, +-inf, overflow and underflow of exp), dense ranges for the vectorized exp / tanh / erf, and pooling with
// pads, strides, dilations, ceil_mode and count_include_pad; at 1, 2 and 3 threads.
#include <cmath>
#include <limits>

#include "cpu_tactics_test_util.h"

namespace kiln::test_ops {
namespace {

using namespace cpu_tactics_test;

// -20 .. 20 in steps of 1/64, then special values.
Tensor special_values() {
  std::vector<float> v;
  for (int i = -1280; i <= 1280; ++i) v.push_back(static_cast<float>(i) / 64.0f);
  const float inf = std::numeric_limits<float>::infinity();
  for (float s : {std::nanf(""), inf, -inf, 88.0f, 88.7f, 88.8f, 100.0f, -87.0f, -88.5f, -100.0f, 1e-6f, -1e-6f,
                  3e-4f, -3e-4f, 0.0f, -0.0f, 7.9f, 8.5f, -8.5f, 3.99f, 4.5f, -4.5f, 1e30f, -1e30f})
    v.push_back(s);
  return f32({static_cast<int64_t>(v.size())}, v);
}

TEST(CpuTacticsFast, UnaryOpsIncludingSpecialValues) {
  const Tensor x = special_values();
  for_thread_counts([&](int) {
    for (const char* op : {"Relu", "Sigmoid", "Tanh", "Exp", "Erf", "Neg", "Abs", "HardSwish"})
      check_tactics(op, 14, {x}, {}, {"fast"});
    for (const char* op : {"Sqrt", "Reciprocal"}) check_tactics(op, 13, {x}, {}, {"fast"});
    check_tactics("LeakyRelu", 16, {x}, {{"alpha", 0.2f}}, {"fast"});
    check_tactics("HardSigmoid", 6, {x}, {{"alpha", 0.3f}, {"beta", 0.4f}}, {"fast"});
    check_tactics("Gelu", 20, {x}, {}, {"fast"});
    check_tactics("Gelu", 20, {x}, {{"approximate", std::string("tanh")}}, {"fast"});
    check_tactics("Clip", 13, {x, f32({}, {-1.5f}), f32({}, {2.25f})}, {}, {"fast"});
    check_tactics("Clip", 13, {x, Omit(), f32({}, {0.5f})}, {}, {"fast"});
    check_tactics("Clip", 6, {x}, {{"min", 0.0f}, {"max", 6.0f}}, {"fast"});
    // A big tensor, split over the threads.
    check_tactics("Sigmoid", 13, {rand_f32({3, 70000}, 3)}, {}, {"fast"});
  });
}

TEST(CpuTacticsFast, IsNanIsInfAndWhere) {
  const Tensor x = special_values();
  const int64_t n = x.numel();
  for_thread_counts([&](int) {
    check_tactics("IsNaN", 20, {x}, {}, {"fast"});
    check_tactics("IsInf", 20, {x}, {}, {"fast"});
    check_tactics("IsInf", 20, {x}, {{"detect_negative", int64_t(0)}}, {"fast"});
    check_tactics("IsInf", 20, {x}, {{"detect_positive", int64_t(0)}}, {"fast"});
    std::vector<uint8_t> c(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) c[static_cast<size_t>(i)] = static_cast<uint8_t>((i * 7) % 3 == 0);
    Tensor cond = Tensor::from_vector(DType::Bool, {n}, c);
    const Tensor y = rand_f32({n}, 5);
    check_tactics("Where", 16, {cond, x, y}, {}, {"fast"});
    check_tactics("Where", 16, {cond, f32({}, {0.0f}), x}, {}, {"fast"});  // the SDPA guard's form
    check_tactics("Where", 16, {Tensor::from_vector(DType::Bool, {1}, std::vector<uint8_t>{1}), x, y}, {}, {"fast"});
    // Broadcasting other than one element: the reference runs behind the fast tactic.
    check_tactics("Where", 16, {Tensor::from_vector(DType::Bool, {2, 1}, std::vector<uint8_t>{1, 0}), rand_f32({2, 3}, 6),
                                rand_f32({3}, 7)},
                  {}, {"fast"});
  });
}

TEST(CpuTacticsFast, UnaryOtherDtypesHaveOnlyRef) {
  EXPECT_EQ(check_tactics("Relu", 14, {f16({3}, {-1.f, 0.f, 2.f})}, {}, {}), std::vector<std::string>{"ref"});
  EXPECT_EQ(check_tactics("Relu", 14, {i64({3}, {-1, 0, 2})}, {}, {}), std::vector<std::string>{"ref"});
}

TEST(CpuTacticsFast, BinaryOpsBroadcastLayouts) {
  for_thread_counts([](int) {
    const std::vector<std::pair<Shape, Shape>> shapes = {
        {{2, 3, 5, 7}, {2, 3, 5, 7}},       // same shape
        {{2, 3, 5, 7}, {}},                 // scalar right
        {{1}, {4, 9}},                      // one-element left
        {{2, 3, 5, 7}, {2, 3, 1, 1}},       // per-channel (squeeze-excitation)
        {{3, 17, 33}, {33}},                // bias over the last axis
        {{4, 1, 6}, {1, 5, 1}},             // both broadcast
        {{2, 1, 3, 1, 5}, {1, 4, 3, 2, 1}}, // alternating
        {{1, 1, 1}, {1, 1, 1}},             // all ones
        {{2, 0, 3}, {3}},                   // empty
        {{64, 768}, {64, 768}},             // big enough to split over threads
        {{8, 12, 128, 128}, {8, 1, 1, 128}},
    };
    for (const auto& [sa, sb] : shapes)
      for (const char* op : {"Add", "Sub", "Mul", "Div"}) {
        SCOPED_TRACE(std::string(op) + " " + shape_str(sa) + " " + shape_str(sb));
        check_tactics(op, 14, {rand_f32(sa, 1), rand_f32(sb, 2)}, {}, {"fast"});
        check_tactics(op, 14, {Const(rand_f32(sb, 3)), rand_f32(sa, 4)}, {}, {"fast"});
      }
    check_tactics("Div", 14, {special_values(), f32({}, {0.0f})}, {}, {"fast"});
    check_tactics("Mul", 14, {special_values(), special_values()}, {}, {"fast"});
  });
  EXPECT_EQ(check_tactics("Add", 14, {i32({2}, {1, 2}), i32({2}, {3, 4})}, {}, {}), std::vector<std::string>{"ref"});
}

Attrs pool_attrs(std::vector<int64_t> k, std::vector<int64_t> s, std::vector<int64_t> pads) {
  return Attrs{{"kernel_shape", k}, {"strides", s}, {"pads", pads}};
}

TEST(CpuTacticsFast, PoolingPadsStridesDilationsCeil) {
  for_thread_counts([](int) {
    Tensor x = rand_f32({2, 3, 13, 11}, 1);
    for (const char* op : {"MaxPool", "AveragePool"}) {
      SCOPED_TRACE(op);
      check_tactics(op, 11, {x}, pool_attrs({3, 3}, {2, 2}, {1, 1, 1, 1}), {"fast"});
      check_tactics(op, 11, {x}, pool_attrs({2, 3}, {1, 2}, {0, 1, 1, 0}), {"fast"});
      Attrs ceil = pool_attrs({3, 2}, {2, 3}, {1, 0, 1, 1});
      ceil["ceil_mode"] = int64_t(1);
      check_tactics(op, 11, {x}, ceil, {"fast"});
      Attrs same = {{"kernel_shape", std::vector<int64_t>{4, 4}}, {"auto_pad", std::string("SAME_UPPER")}};
      check_tactics(op, 11, {x}, same, {"fast"});
      check_tactics(op, 11, {rand_f32({2, 4, 9}, 2)}, pool_attrs({3}, {2}, {1, 1}), {"fast"});
      // Rows of 37: two 16-column vector blocks and a tail.
      check_tactics(op, 11, {rand_f32({2, 3, 7, 37}, 4)}, pool_attrs({3, 3}, {2, 2}, {1, 1, 1, 1}), {"fast"});
      check_tactics(op, 11, {rand_f32({1, 2, 6, 37}, 5)}, pool_attrs({2, 4}, {1, 3}, {1, 0, 0, 2}), {"fast"});
      check_tactics(op, 11, {rand_f32({1, 2, 5, 6, 7}, 3)}, pool_attrs({2, 3, 2}, {1, 2, 2}, {0, 1, 1, 1, 0, 1}),
                    {"fast"});
      // Stride 2 across the columns: the register path (taps 2 o - 1 .. 2 o + 2) over widths with one block, several
      // blocks and a tail, odd widths, ceil mode; and the memory path (pad 2, dilation).
      for (int64_t wd : {8, 33, 64, 70}) {
        SCOPED_TRACE(wd);
        Tensor xw = rand_f32({1, 3, 6, wd}, 6);
        check_tactics(op, 11, {xw}, pool_attrs({3, 3}, {2, 2}, {1, 1, 1, 1}), {"fast"});
        check_tactics(op, 11, {xw}, pool_attrs({2, 2}, {2, 2}, {0, 0, 0, 0}), {"fast"});
        check_tactics(op, 11, {xw}, pool_attrs({3, 3}, {2, 2}, {0, 0, 0, 0}), {"fast"});
        check_tactics(op, 11, {xw}, pool_attrs({1, 4}, {1, 2}, {0, 1, 0, 2}), {"fast"});
        check_tactics(op, 11, {xw}, pool_attrs({1, 1}, {1, 2}, {0, 0, 0, 0}), {"fast"});
        Attrs c2 = pool_attrs({3, 3}, {2, 2}, {1, 0, 1, 0});
        c2["ceil_mode"] = int64_t(1);
        check_tactics(op, 11, {xw}, c2, {"fast"});
        check_tactics(op, 11, {xw}, pool_attrs({1, 5}, {1, 2}, {0, 2, 0, 2}), {"fast"});
      }
    }
    Attrs dil = pool_attrs({3, 2}, {1, 2}, {2, 1, 2, 0});
    dil["dilations"] = std::vector<int64_t>{2, 3};
    check_tactics("MaxPool", 12, {x}, dil, {"fast"});
    check_tactics("AveragePool", 19, {x}, dil, {"fast"});
    Attrs incl = pool_attrs({3, 3}, {2, 2}, {2, 2, 2, 2});
    incl["count_include_pad"] = int64_t(1);
    check_tactics("AveragePool", 11, {x}, incl, {"fast"});
    incl["ceil_mode"] = int64_t(1);
    check_tactics("AveragePool", 11, {x}, incl, {"fast"});
    check_tactics("GlobalAveragePool", 1, {x}, {}, {"fast"});
    check_tactics("GlobalMaxPool", 1, {x}, {}, {"fast"});
    check_tactics("GlobalAveragePool", 1, {rand_f32({2, 5, 3, 4, 2}, 4)}, {}, {"fast"});
    // NaN: MaxPool keeps it only where it is the first valid tap, as the reference does.
    std::vector<float> v(25, 0.5f);
    v[0] = std::nanf("");
    v[7] = std::nanf("");
    check_tactics("MaxPool", 11, {f32({1, 1, 5, 5}, v)}, pool_attrs({2, 2}, {1, 1}, {1, 1, 0, 0}), {"fast"});
    check_tactics("GlobalMaxPool", 1, {f32({1, 1, 5, 5}, v)}, {}, {"fast"});
  });
}

TEST(CpuTacticsFast, MaxPoolWithIndicesUsesTheReference) {
  // The Indices output is left to "ref": the fast kernel hands such nodes over (same outputs).
  ir::Graph g = make_graph("MaxPool", 12, {rand_f32({1, 2, 6, 6}, 1)}, pool_attrs({2, 2}, {2, 2}, {0, 0, 0, 0}), 2);
  ir::infer_types(g);
  auto cands = runtime::cpu::tactics_for(g, g.nodes[0]);
  ASSERT_EQ(cands.front().name, "fast");
  Tensor x = rand_f32({1, 2, 6, 6}, 1);
  std::vector<Tensor> a(2), b(2);
  cands.front().run(g.nodes[0], {&x}, a);
  cands.back().run(g.nodes[0], {&x}, b);
  EXPECT_TRUE(a[0].bit_equal(b[0]));
  EXPECT_TRUE(a[1].bit_equal(b[1]));
}

TEST(CpuTacticsFast, PowWithOneExponent) {
  const Tensor x = special_values();
  for_thread_counts([&](int) {
    for (float e : {2.0f, 3.0f, 1.0f, 0.5f, -1.0f, 0.0f, -2.5f, 1.7f})
      check_tactics("Pow", 15, {x, Const(f32({}, {e}))}, {}, {"fast"});
    check_tactics("Pow", 15, {x, i64({1}, {3})}, {}, {"fast"});
    check_tactics("Pow", 15, {x, f64({}, {2.0})}, {}, {"fast"});
    check_tactics("Pow", 15, {rand_f32({4, 50000}, 2), f32({}, {2.0f})}, {}, {"fast"});
  });
  // A broadcast exponent is not one value: the reference only.
  EXPECT_EQ(check_tactics("Pow", 15, {rand_f32({3, 4}, 3), rand_f32({4}, 4)}, {}, {}),
            std::vector<std::string>{"ref"});
  // An exponent of higher rank broadcasts the output: the fast kernel hands it to the reference.
  check_tactics("Pow", 15, {rand_f32({3}, 5), f32({1, 1}, {2.0f})}, {}, {"fast"});
}

TEST(CpuTacticsFast, ReductionsOverTrailingAxes) {
  for_thread_counts([](int) {
    Tensor x = rand_f32({3, 5, 7, 129}, 1);
    for (const char* op : {"ReduceMean", "ReduceSumSquare"}) {
      SCOPED_TRACE(op);
      check_tactics(op, 13, {x}, {{"axes", std::vector<int64_t>{-1}}}, {"fast"});
      check_tactics(op, 13, {x}, {{"axes", std::vector<int64_t>{3, 2}}, {"keepdims", int64_t(0)}}, {"fast"});
      check_tactics(op, 13, {x}, {}, {"fast"});                                            // all axes
      check_tactics(op, 13, {x}, {{"axes", std::vector<int64_t>{1}}}, {"fast"});           // not trailing: ref
      check_tactics(op, 18, {x, Const(i64({1}, {-1}))}, {}, {"fast"});
      check_tactics(op, 18, {x, Const(i64({2}, {-2, -1}))}, {{"keepdims", int64_t(0)}}, {"fast"});
      check_tactics(op, 18, {x, Const(i64({0}, {}))}, {{"noop_with_empty_axes", int64_t(1)}}, {"fast"});
    }
    check_tactics("ReduceSum", 13, {x, Const(i64({1}, {-1}))}, {}, {"fast"});
    check_tactics("ReduceSum", 11, {x}, {{"axes", std::vector<int64_t>{2, 3}}}, {"fast"});
    check_tactics("ReduceMean", 18, {rand_f32({2, 0, 3}, 2), Const(i64({1}, {-1}))}, {}, {"fast"});
    check_tactics("ReduceMean", 18, {rand_f32({2, 3, 0}, 2), Const(i64({1}, {-1}))}, {}, {"fast"});  // NaN
    check_tactics("ReduceMean", 18, {special_values(), Const(i64({1}, {0}))}, {}, {"fast"});
  });
}

TEST(CpuTacticsFast, SoftmaxAndLogSoftmaxAlongAnyAxis) {
  for_thread_counts([](int) {
    for (const char* op : {"Softmax", "LogSoftmax"}) {
      SCOPED_TRACE(op);
      Tensor x = rand_f32({2, 3, 7, 130}, 1);
      check_tactics(op, 13, {x}, {}, {"fast"});
      check_tactics(op, 13, {x}, {{"axis", int64_t(1)}}, {"fast"});
      check_tactics(op, 13, {x}, {{"axis", int64_t(-2)}}, {"fast"});
      check_tactics(op, 11, {x}, {{"axis", int64_t(2)}}, {"fast"});  // coerced to 2-D
      check_tactics(op, 1, {x}, {}, {"fast"});
      check_tactics(op, 13, {rand_f32({64, 12, 128}, 2)}, {}, {"fast"});
      // Large magnitudes, -inf (masked attention) and NaN.
      const float inf = std::numeric_limits<float>::infinity();
      check_tactics(op, 13, {f32({3, 4}, {1000.f, 999.f, -1000.f, 0.f, -inf, 1.f, 2.f, -inf, -inf, -inf, -inf, -inf})},
                    {}, {"fast"});
      check_tactics(op, 13, {f32({2, 3}, {std::nanf(""), 1.f, 2.f, 3.f, 4.f, 5.f})}, {}, {"fast"});
    }
  });
}

TEST(CpuTacticsFast, LayerNormalizationCommonForms) {
  for_thread_counts([](int) {
    Tensor x = rand_f32({4, 33, 96}, 1);
    check_tactics("LayerNormalization", 17, {x, Const(rand_f32({96}, 2)), Const(rand_f32({96}, 3))}, {}, {"fast"});
    check_tactics("LayerNormalization", 17, {x, rand_f32({96}, 2)}, {{"epsilon", 1e-3f}}, {"fast"});
    check_tactics("LayerNormalization", 17, {x, rand_f32({33, 96}, 4), rand_f32({1, 33, 96}, 5)},
                  {{"axis", int64_t(1)}}, {"fast"});
    // Forms the fast kernel leaves to the reference: broadcast scale, bias over fewer dims.
    check_tactics("LayerNormalization", 17, {x, rand_f32({1}, 6), rand_f32({96}, 7)}, {}, {"fast"});
    check_tactics("LayerNormalization", 17, {x, rand_f32({33, 96}, 8), rand_f32({96}, 9)}, {{"axis", int64_t(-2)}},
                  {"fast"});
    // Constant rows (variance 0).
    check_tactics("LayerNormalization", 17, {f32({2, 4}, {1, 1, 1, 1, 2, 3, 4, 5}), f32({4}, {1, 2, 3, 4})}, {},
                  {"fast"});
  });
}

TEST(CpuTacticsFast, TransposeAnyDtypeAndPermutation) {
  for_thread_counts([](int) {
    const std::vector<std::vector<int64_t>> perms = {{0, 2, 1, 3}, {0, 2, 3, 1}, {3, 2, 1, 0}, {0, 1, 2, 3},
                                                     {1, 0, 3, 2}, {2, 0, 3, 1}};
    Tensor x = rand_f32({2, 33, 4, 17}, 1);
    for (const auto& p : perms) check_tactics("Transpose", 13, {x}, {{"perm", p}}, {"fast"});
    check_tactics("Transpose", 13, {x}, {}, {"fast"});  // default: reversed axes
    check_tactics("Transpose", 13, {rand_f32({1, 128, 12, 64}, 2)}, {{"perm", std::vector<int64_t>{0, 2, 1, 3}}},
                  {"fast"});
    check_tactics("Transpose", 13, {rand_f32({3, 1, 5, 1}, 3)}, {{"perm", std::vector<int64_t>{3, 2, 0, 1}}},
                  {"fast"});
    check_tactics("Transpose", 13, {rand_f32({0, 3}, 4)}, {}, {"fast"});
    check_tactics("Transpose", 13, {f32({}, {2.5f})}, {}, {"fast"});
  });
  // Every element size: bool / int8 (1), float16 (2), int32 (4), int64 (8).
  std::vector<int64_t> v(60);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int64_t>(i * 7919 % 61);
  std::vector<int32_t> v32(v.begin(), v.end());
  std::vector<uint8_t> vb;
  for (int64_t e : v) vb.push_back(e % 2);
  std::vector<float> vf(v.begin(), v.end());
  const std::vector<int64_t> perm = {2, 0, 1};
  for (const Tensor& t : {i64({3, 4, 5}, v), i32({3, 4, 5}, v32), boolean({3, 4, 5}, vb), f16({3, 4, 5}, vf)}) {
    SCOPED_TRACE(t.type_str());
    ir::Graph g = make_graph("Transpose", 13, {t}, {{"perm", perm}}, 1);
    ir::infer_types(g);
    auto cands = runtime::cpu::tactics_for(g, g.nodes[0]);
    ASSERT_EQ(cands.front().name, "fast");
    std::vector<Tensor> a(1), b(1);
    cands.front().run(g.nodes[0], {&t}, a);
    cands.back().run(g.nodes[0], {&t}, b);
    EXPECT_TRUE(a[0].bit_equal(b[0]));
  }
}


// Runs "fast" and "ref" of a one-node graph; the outputs must be bit-equal (data movement: any dtype).
void fast_is_ref(const std::string& op, int64_t opset, const std::vector<In>& inputs, const Attrs& attrs) {
  ir::Graph g = make_graph(op, opset, inputs, attrs, 1);
  ir::infer_types(g);
  auto cands = runtime::cpu::tactics_for(g, g.nodes[0]);
  ASSERT_EQ(cands.front().name, "fast");
  std::vector<const Tensor*> ins;
  for (const auto& i : inputs) ins.push_back(i.t.empty() ? nullptr : &i.t);
  std::vector<Tensor> a(1), b(1);
  cands.front().run(g.nodes[0], ins, a);
  cands.back().run(g.nodes[0], ins, b);
  EXPECT_TRUE(a[0].bit_equal(b[0])) << op << " " << a[0].type_str() << " vs " << b[0].type_str();
}

TEST(CpuTacticsFast, SliceStepsAxesAndDtypes) {
  for_thread_counts([](int) {
    Tensor x = rand_f32({2, 33, 4, 17}, 1);
    auto sl = [&](const Tensor& t, std::vector<int64_t> st, std::vector<int64_t> en, std::vector<int64_t> ax,
                  std::vector<int64_t> sp) {
      const int64_t k = static_cast<int64_t>(st.size());
      fast_is_ref("Slice", 13,
                  {t, Const(i64({k}, st)), Const(i64({k}, en)), Const(i64({k}, ax)), Const(i64({k}, sp))}, {});
    };
    sl(x, {0}, {16}, {1}, {1});                           // one axis, contiguous rows
    sl(x, {1, 2}, {30, 4}, {1, 3}, {1, 1});               // the innermost axis cut: row pieces
    sl(x, {-1, 0}, {-100, 100}, {1, 2}, {-2, 3});         // negative and large steps, clamped bounds
    sl(x, {0, 5}, {1, 3}, {0, 3}, {1, -1});               // negative step on the innermost axis: gathers
    sl(x, {0}, {0}, {2}, {1});                            // empty
    sl(rand_f32({1, 64, 4, 4, 8}, 2), {0, 1}, {64, 3}, {1, 3}, {1, 1});  // size-1 dims merged away
    // Opset 10 without axes / steps, and opset 1's attributes.
    fast_is_ref("Slice", 10, {x, Const(i64({2}, {1, 3})), Const(i64({2}, {2, 20}))}, {});
    fast_is_ref("Slice", 1, {x},
                {{"starts", std::vector<int64_t>{2, 1}}, {"ends", std::vector<int64_t>{9, 3}},
                 {"axes", std::vector<int64_t>{1, 2}}});
  });
  std::vector<int64_t> v(60);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int64_t>(i * 7919 % 61);
  std::vector<float> vf(v.begin(), v.end());
  for (const Tensor& t : {i64({3, 4, 5}, v), f16({3, 4, 5}, vf)})
    fast_is_ref("Slice", 13, {t, Const(i64({2}, {1, 4})), Const(i64({2}, {3, 0})), Const(i64({2}, {0, 2})),
                              Const(i64({2}, {1, -2}))},
                {});
}

TEST(CpuTacticsFast, PadConstantFormsAndFallbacks) {
  for_thread_counts([](int) {
    Tensor x = rand_f32({2, 7, 9, 12}, 1);
    auto pad = [&](const Tensor& t, std::vector<int64_t> p, const Tensor* value = nullptr) {
      std::vector<In> ins = {t, Const(i64({static_cast<int64_t>(p.size())}, p))};
      if (value) ins.push_back(Const(*value));
      fast_is_ref("Pad", 13, ins, {});
    };
    pad(x, {0, 0, 1, 2, 0, 0, 3, 4});  // H and W (Swin's window padding form)
    pad(x, {0, 0, 0, 0, 0, 0, 0, 5});  // only the end of the last axis
    pad(x, {0, 3, 0, 0, 1, 0, 0, 0});  // channels and batch: whole planes copied
    pad(x, {0, 0, 0, 0, 0, 0, 0, 0});  // nothing
    const Tensor v = f32({}, {-2.5f});
    pad(x, {1, 1, 1, 1, 1, 1, 1, 1}, &v);  // a non-zero value
    pad(rand_f32({4, 0, 3}, 2), {0, 1, 0, 0, 2, 0});  // empty input
    pad(rand_f32({1, 300, 200}, 3), {0, 2, 3, 0, 2, 3});  // large enough for the threads
  });
  std::vector<int64_t> v(60);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int64_t>(i * 7919 % 61);
  const Tensor vi = i64({}, {7});
  fast_is_ref("Pad", 13, {i64({3, 4, 5}, v), Const(i64({6}, {1, 0, 2, 0, 3, 1})), Const(vi)}, {});
  // Reflect mode, negative pads (cropping) and an axes input run the reference through the fast tactic.
  Tensor x = rand_f32({2, 5, 6}, 4);
  fast_is_ref("Pad", 13, {x, Const(i64({6}, {0, 1, 2, 0, 1, 2}))}, {{"mode", std::string("reflect")}});
  fast_is_ref("Pad", 13, {x, Const(i64({6}, {0, -1, 2, 0, 1, -2}))}, {});
  fast_is_ref("Pad", 18, {x, Const(i64({2}, {1, 2})), In(Tensor()), Const(i64({1}, {2}))}, {});
}


// Malformed Slice / Pad nodes are typed errors through the fast tactics too (they share the reference's parameter
// reading, or hand the node to it).
TEST(CpuTacticsFast, SliceAndPadBadParametersAreInvalidModel) {
  auto expect_invalid = [](const std::string& op, const std::vector<In>& inputs, const Attrs& attrs) {
    SCOPED_TRACE(op);
    ir::Graph g = make_graph(op, 13, inputs, attrs, 1);
    auto cands = runtime::cpu::tactics_for(g, g.nodes[0]);
    ASSERT_EQ(cands.front().name, "fast");
    std::vector<const Tensor*> ins;
    for (const auto& i : inputs) ins.push_back(i.t.empty() ? nullptr : &i.t);
    std::vector<Tensor> out(1);
    try {
      cands.front().run(g.nodes[0], ins, out);
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::InvalidModel) << e.what();
      EXPECT_NE(std::string(e.what()).find("n0"), std::string::npos) << e.what();
    }
  };
  Tensor x = rand_f32({2, 5, 6}, 1);
  expect_invalid("Slice", {x, Const(i64({1}, {0})), Const(i64({1}, {3})), Const(i64({1}, {1})), Const(i64({1}, {0}))},
                 {});  // step 0
  expect_invalid("Slice", {x, Const(i64({2}, {0, 1})), Const(i64({1}, {3}))}, {});  // starts / ends lengths differ
  expect_invalid("Slice", {x, Const(i64({1}, {0})), Const(i64({1}, {3})), Const(i64({1}, {5}))}, {});  // axis 5
  expect_invalid("Pad", {x, Const(i64({4}, {0, 1, 0, 1}))}, {});  // 4 pads for rank 3
  expect_invalid("Pad", {x, Const(i64({6}, {0, 1, 0, 0, 1, 0})), Const(i64({}, {3}))}, {});  // int64 value, float data
}

}  // namespace
}  // namespace kiln::test_ops
