// Conv: checked against an independent scatter-form convolution written here, plus hand-computed cases.
#include "test_ops_util.h"

namespace kiln::test_ops {
namespace {

struct ConvCfg {
  Shape x, w;  // x [N, C, spatial...], w [M, C/group, k...]
  int64_t group = 1;
  std::vector<int64_t> strides, dilations, pads;  // pads: begin..., end...
  bool bias = false;
};

// Scatter form: every (input element, kernel tap) pair adds into the output position it reaches.
std::vector<double> conv_scatter(const ConvCfg& c, const Tensor& x, const Tensor& w, const Tensor* b, Shape& ys) {
  const size_t nsp = c.x.size() - 2;
  const int64_t N = c.x[0], C = c.x[1], M = c.w[0], Cg = C / c.group, Mg = M / c.group;
  ys = {N, M};
  for (size_t i = 0; i < nsp; ++i) {
    int64_t eff = c.dilations[i] * (c.w[2 + i] - 1) + 1;
    ys.push_back((c.x[2 + i] + c.pads[i] + c.pads[i + nsp] - eff) / c.strides[i] + 1);
  }
  std::vector<double> y(static_cast<size_t>(shape_numel(ys)), 0.0);
  int64_t osp = 1, isp = 1, ksp = 1;
  for (size_t i = 0; i < nsp; ++i) osp *= ys[2 + i], isp *= c.x[2 + i], ksp *= c.w[2 + i];
  for (int64_t n = 0; n < N; ++n)
    for (int64_t m = 0; m < M; ++m) {
      if (b)
        for (int64_t o = 0; o < osp; ++o) y[static_cast<size_t>((n * M + m) * osp + o)] += b->at_double(m);
      const int64_t g = m / Mg;
      for (int64_t cc = 0; cc < Cg; ++cc)
        for (int64_t ii = 0; ii < isp; ++ii)
          for (int64_t kk = 0; kk < ksp; ++kk) {
            // Decode input and kernel positions, find the output position (if any).
            int64_t rem_i = ii, rem_k = kk, opos = 0;
            bool ok = true;
            std::vector<int64_t> ipos(nsp), kpos(nsp);
            for (size_t d = nsp; d-- > 0;) {
              ipos[d] = rem_i % c.x[2 + d], rem_i /= c.x[2 + d];
              kpos[d] = rem_k % c.w[2 + d], rem_k /= c.w[2 + d];
            }
            for (size_t d = 0; d < nsp; ++d) {
              int64_t t = ipos[d] + c.pads[d] - kpos[d] * c.dilations[d];
              if (t < 0 || t % c.strides[d] != 0 || t / c.strides[d] >= ys[2 + d]) { ok = false; break; }
              opos = opos * ys[2 + d] + t / c.strides[d];
            }
            if (!ok) continue;
            y[static_cast<size_t>((n * M + m) * osp + opos)] +=
                x.at_double((n * C + g * Cg + cc) * isp + ii) * w.at_double((m * Cg + cc) * ksp + kk);
          }
    }
  return y;
}

Attrs conv_attrs(const ConvCfg& c) {
  Attrs a;
  if (c.group != 1) a["group"] = c.group;
  if (!c.strides.empty()) a["strides"] = c.strides;
  if (!c.dilations.empty()) a["dilations"] = c.dilations;
  if (!c.pads.empty()) a["pads"] = c.pads;
  return a;
}

void check_conv(ConvCfg c, uint32_t seed) {
  const size_t nsp = c.x.size() - 2;
  Attrs attrs = conv_attrs(c);
  if (c.strides.empty()) c.strides.assign(nsp, 1);
  if (c.dilations.empty()) c.dilations.assign(nsp, 1);
  if (c.pads.empty()) c.pads.assign(2 * nsp, 0);
  Tensor x = rand_f32(c.x, seed), w = rand_f32(c.w, seed + 1), b = rand_f32({c.w[0]}, seed + 2);
  Shape ys;
  std::vector<double> want = conv_scatter(c, x, w, c.bias ? &b : nullptr, ys);
  std::vector<In> ins = {x, Const(w)};
  if (c.bias) ins.push_back(Const(b));
  Tensor y = run1("Conv", 11, ins, attrs);
  expect_tensor(y, DType::Float32, ys, want);
}

TEST(OpsConv, MatchesScatterReference2D) {
  check_conv({{1, 3, 7, 6}, {4, 3, 3, 3}, 1, {}, {}, {}, false}, 1);
  check_conv({{2, 3, 7, 6}, {4, 3, 3, 3}, 1, {}, {}, {1, 1, 1, 1}, true}, 2);
  check_conv({{1, 2, 9, 8}, {3, 2, 3, 2}, 1, {2, 3}, {}, {1, 0, 2, 1}, true}, 3);    // strides, asym pads
  check_conv({{1, 2, 9, 9}, {2, 2, 3, 3}, 1, {1, 1}, {2, 3}, {2, 1, 0, 3}, false}, 4);  // dilations
  check_conv({{2, 4, 5, 5}, {6, 2, 3, 3}, 2, {1, 2}, {}, {1, 1, 1, 1}, true}, 5);     // group 2
  check_conv({{1, 4, 6, 6}, {4, 1, 3, 3}, 4, {2, 2}, {1, 1}, {1, 1, 1, 1}, true}, 6);  // depthwise
  check_conv({{1, 3, 5, 5}, {2, 3, 1, 1}, 1, {}, {}, {}, true}, 7);                    // 1x1
}

TEST(OpsConv, OneAndThreeDimensional) {
  check_conv({{2, 3, 11}, {4, 3, 3}, 1, {2}, {2}, {1, 2}, true}, 10);
  check_conv({{1, 2, 4, 5, 6}, {3, 2, 2, 3, 2}, 1, {1, 2, 1}, {2, 1, 1}, {1, 0, 1, 0, 1, 1}, true}, 11);
  check_conv({{1, 4, 3, 4, 4}, {2, 2, 3, 3, 3}, 2, {}, {}, {1, 1, 1, 1, 1, 1}, false}, 12);
}

TEST(OpsConv, HandComputedBoxFilter) {
  // 3x3 ones kernel over 1..9 with pad 1: corners sum 4 neighbours, centre sums all.
  Tensor x = f32({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  Tensor w = f32({1, 1, 3, 3}, std::vector<float>(9, 1.f));
  Tensor y = run1("Conv", 11, {x, w, f32({1}, {0.5f})}, {{"pads", std::vector<int64_t>{1, 1, 1, 1}}});
  expect_tensor(y, DType::Float32, {1, 1, 3, 3}, {12.5, 21.5, 16.5, 27.5, 45.5, 33.5, 24.5, 39.5, 28.5});
}

TEST(OpsConv, AutoPad) {
  Tensor x = rand_f32({1, 2, 7, 6}, 20), w = rand_f32({3, 2, 4, 3}, 21);
  // Stride 2: out = ceil(7/2) = 4, ceil(6/2) = 3; total pads 3 (H) and 1 (W).
  // SAME_UPPER puts the odd pad at the end, SAME_LOWER at the beginning.
  ConvCfg c{{1, 2, 7, 6}, {3, 2, 4, 3}, 1, {2, 2}, {1, 1}, {1, 0, 2, 1}, false};
  Shape ys;
  auto upper = conv_scatter(c, x, w, nullptr, ys);
  ASSERT_EQ(ys, (Shape{1, 3, 4, 3}));
  Attrs a = {{"auto_pad", std::string("SAME_UPPER")}, {"strides", std::vector<int64_t>{2, 2}}};
  expect_tensor(run1("Conv", 11, {x, w}, a), DType::Float32, ys, upper);
  c.pads = {2, 1, 1, 0};
  auto lower = conv_scatter(c, x, w, nullptr, ys);
  ASSERT_EQ(ys, (Shape{1, 3, 4, 3}));
  a["auto_pad"] = std::string("SAME_LOWER");
  expect_tensor(run1("Conv", 11, {x, w}, a), DType::Float32, ys, lower);
  // VALID ignores pads; NOTSET uses them.
  c.pads = {0, 0, 0, 0};
  auto valid = conv_scatter(c, x, w, nullptr, ys);
  ASSERT_EQ(ys, (Shape{1, 3, 2, 2}));
  a["auto_pad"] = std::string("VALID");
  a["pads"] = std::vector<int64_t>{1, 1, 1, 1};
  expect_tensor(run1("Conv", 11, {x, w}, a), DType::Float32, ys, valid);
  a["auto_pad"] = std::string("NOTSET");
  c.pads = {1, 1, 1, 1};
  auto explicit_pads = conv_scatter(c, x, w, nullptr, ys);
  expect_tensor(run1("Conv", 11, {x, w}, a), DType::Float32, ys, explicit_pads);
}

TEST(OpsConv, HalfBFloat16AndDouble) {
  ConvCfg c{{1, 2, 5, 5}, {2, 2, 3, 3}, 1, {1, 1}, {1, 1}, {1, 1, 1, 1}, true};
  Tensor x = rand_f32(c.x, 30), w = rand_f32(c.w, 31), b = rand_f32({2}, 32);
  auto round_all = [](const Tensor& t, DType dt) {
    std::vector<float> v;
    for (double d : values(t)) v.push_back(static_cast<float>(d));
    return dt == DType::Float16 ? f16(t.shape(), v) : bf16(t.shape(), v);
  };
  for (DType dt : {DType::Float16, DType::BFloat16}) {
    Tensor xh = round_all(x, dt), wh = round_all(w, dt), bh = round_all(b, dt);
    Shape ys;
    auto want = conv_scatter(c, xh, wh, &bh, ys);  // exact on the rounded inputs
    Tensor y = run1("Conv", 11, {xh, wh, bh}, conv_attrs(c));
    EXPECT_EQ(y.dtype(), dt);
    // Only the final rounding differs: half has 11 significant bits, bfloat16 8.
    expect_tensor(y, dt, ys, want, 1e-3, dt == DType::Float16 ? 1e-3 : 8e-3);
  }
  std::vector<double> xd = values(x), wd = values(w);
  Shape ys;
  auto want = conv_scatter(c, x, w, nullptr, ys);
  Tensor y = run1("Conv", 11, {f64(c.x, xd), f64(c.w, wd)}, conv_attrs(c));
  expect_tensor(y, DType::Float64, ys, want, 1e-12, 1e-12);
}

TEST(OpsConv, InferenceKeepsBatchSymbol) {
  auto t = infer_op("Conv", 11,
                    {TV(DType::Float32, {S("N"), D(3), D(224), D(224)}), TV(DType::Float32, {D(64), D(3), D(7), D(7)}),
                     TV(DType::Float32, {D(64)})},
                    {{"strides", std::vector<int64_t>{2, 2}}, {"pads", std::vector<int64_t>{3, 3, 3, 3}}})[0];
  EXPECT_EQ(type_str(t), "float32[N,64,112,112]");
  auto u = infer_op("Conv", 11, {TV(DType::Float32, {S("N"), D(3), U(), D(10)}), TV(DType::Float32, {D(8), D(3), D(3), D(3)})},
                    {{"auto_pad", std::string("SAME_UPPER")}})[0];
  EXPECT_EQ(type_str(u), "float32[N,8,?,10]");
}

TEST(OpsConv, BadInputs) {
  Tensor x = rand_f32({1, 3, 5, 5}, 40);
  EXPECT_EQ(error_code_of([&] { run1("Conv", 11, {x, rand_f32({2, 2, 3, 3}, 1)}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Conv", 11, {x, rand_f32({2, 3, 3}, 1)}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Conv", 11, {x, rand_f32({2, 3, 3, 3}, 1), rand_f32({3}, 2)}); }),
            ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] {
              run1("Conv", 11, {x, rand_f32({2, 3, 3, 3}, 1)}, {{"auto_pad", std::string("SAME")}});
            }),
            ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] {
              run1("Conv", 11, {x, rand_f32({2, 3, 3, 3}, 1)}, {{"kernel_shape", std::vector<int64_t>{2, 2}}});
            }),
            ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Conv", 11, {x, rand_f32({4, 1, 3, 3}, 1)}, {{"group", int64_t(2)}}); }),
            ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Conv", 11, {x, rand_f32({2, 3, 7, 7}, 1)}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Conv", 11, {i32({1, 1, 1, 1}, {1}), i32({1, 1, 1, 1}, {1})}); }),
            ErrorCode::Unsupported);
  EXPECT_EQ(error_code_of([&] {
              run1("Conv", 11, {rand_f32({1, 1, 2, 2, 2, 2}, 1), rand_f32({1, 1, 1, 1, 1, 1}, 1)});
            }),
            ErrorCode::Unsupported);
}

}  // namespace
}  // namespace kiln::test_ops
