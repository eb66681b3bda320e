"""Single-op test models for the ops3 family (ConvTranspose, Pad, Resize, DepthToSpace, SpaceToDepth, Trilu, TopK,
NonZero, GatherND, ScatterND, Einsum, Attention) and the If / NonZero end-to-end models, with expected outputs, into
argv[1]/ops3:
  <case>/model.onnx, in_<input>.npy (runtime inputs), out_<output>.npy (expected outputs)
  cases.txt: one line per case, "<case> <oracle>" with oracle "ort" (onnxruntime 1.23.2, CPU) or "ref" (onnx
  1.23.2's ReferenceEvaluator, used where onnxruntime lacks the op version or departs from the ONNX spec; each such
  case says why). Inputs are seeded random normals (never zeros). tests/unit/test_ops_<family>.cpp run every case
  through kiln's importer, type inference and reference kernels; test_ops3_e2e.cpp builds the e2e models.
"""
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

OUT = os.path.join(sys.argv[1], "ops3")
os.makedirs(OUT, exist_ok=True)
RNG = np.random.default_rng(20261126)
CASES = []
FAILED = []

F, I64, B = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL


def randn(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


def elem(a):
    return helper.np_dtype_to_tensor_dtype(a.dtype)


def save_model(name, model, feeds, oracle):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "model.onnx")
    onnx.save(model, path)
    if oracle == "ort":
        try:
            sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            outs = sess.run(None, feeds)
        except Exception as e:  # noqa: BLE001 - reported with the case name, then the script fails
            FAILED.append(f"{name}: {str(e)[:300]}")
            return
    else:
        outs = ReferenceEvaluator(model).run(None, feeds)
    for k, v in feeds.items():
        np.save(os.path.join(d, f"in_{k}.npy"), v)
    for o, v in zip(model.graph.output, outs):
        v = np.asarray(v)
        assert np.all(np.isfinite(v)) if v.dtype.kind == "f" else True, name
        np.save(os.path.join(d, f"out_{o.name}.npy"), v)
    assert any(np.any(np.asarray(v) != 0) for v in outs), f"{name}: all-zero outputs"
    CASES.append(f"{name} {oracle}")


def case(name, op, inputs, attrs=None, outs=None, opset=18, oracle="ort", ir=None):
    """inputs: list of (name, array | None (omitted), const?). outs: list of (name, elem type) or None."""
    attrs = attrs or {}
    node_in, graph_in, inits, feeds = [], [], [], {}
    for n, a, const in inputs:
        if a is None:
            node_in.append("")
            continue
        node_in.append(n)
        if const:
            inits.append(numpy_helper.from_array(a, n))
        else:
            graph_in.append(helper.make_tensor_value_info(n, elem(a), a.shape))
            feeds[n] = a
    if outs is None:
        outs = [("y", elem(next(a for _, a, _ in inputs if a is not None)))]
    node = helper.make_node(op, node_in, [o for o, _ in outs], name=name, **attrs)
    g = helper.make_graph([node], name, graph_in,
                          [helper.make_tensor_value_info(o, t, None) for o, t in outs if o], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = ir or (10 if opset <= 23 else 11)
    save_model(name, m, feeds, oracle)


def c64(*v):
    return np.array(v, dtype=np.int64)


def cf(*v):
    return np.array(v, dtype=np.float32)


# ---- ConvTranspose ------------------------------------------------------------------------------------------
def ct(name, xs, ws, bias=True, opset=11, **attrs):
    ins = [("x", randn(*xs), False), ("w", randn(*ws), True)]
    if bias:
        ins.append(("b", randn(ws[1] * attrs.get("group", 1)), True))
    case(name, "ConvTranspose", ins, attrs, opset=opset)


ct("ct_basic_2d", (1, 2, 4, 4), (2, 3, 3, 3))
ct("ct_strides_pads", (1, 2, 3, 4), (2, 2, 3, 3), strides=[2, 2], pads=[1, 0, 0, 1])
ct("ct_output_padding", (1, 2, 3, 3), (2, 2, 3, 2), strides=[2, 3], output_padding=[1, 2])
ct("ct_dilations", (2, 2, 4, 3), (2, 3, 2, 3), dilations=[2, 1], pads=[1, 1, 0, 1])
ct("ct_group2", (2, 4, 3, 3), (4, 1, 2, 2), group=2, strides=[2, 1])
ct("ct_depthwise", (1, 4, 3, 4), (4, 2, 3, 3), group=4, pads=[1, 1, 1, 1])
ct("ct_output_shape", (1, 2, 4, 4), (2, 2, 3, 3), strides=[2, 2], output_shape=[8, 7])
ct("ct_output_shape_same_upper", (1, 2, 4, 4), (2, 2, 3, 3), strides=[2, 2], output_shape=[8, 7], auto_pad="SAME_UPPER")
ct("ct_same_upper", (1, 2, 3, 4), (2, 2, 4, 3), strides=[2, 2], auto_pad="SAME_UPPER")
ct("ct_same_lower", (1, 2, 3, 4), (2, 2, 4, 3), strides=[2, 2], auto_pad="SAME_LOWER")
ct("ct_valid", (1, 2, 3, 3), (2, 2, 2, 2), strides=[2, 2], auto_pad="VALID", bias=False)
ct("ct_1d", (2, 2, 5), (2, 3, 3), strides=[2], pads=[1, 0])
ct("ct_3d", (1, 2, 3, 3, 2), (2, 2, 2, 2, 2), strides=[2, 1, 2], pads=[0, 1, 0, 1, 0, 1])
ct("ct_kernel_shape_opset22", (1, 2, 3, 3), (2, 2, 3, 3), opset=22, kernel_shape=[3, 3], strides=[1, 2])
ct("ct_opset1", (1, 1, 3, 3), (1, 2, 2, 2), opset=10, strides=[2, 2])

# ---- Pad ----------------------------------------------------------------------------------------------------
x34 = randn(2, 3, 4)
case("pad_constant_11", "Pad", [("x", x34, False), ("p", c64(0, 1, 2, 1, 0, 3), True), ("v", cf(1.5), True)],
     {"mode": "constant"}, opset=11)
case("pad_reflect_13", "Pad", [("x", x34, False), ("p", c64(1, 2, 3, 0, 1, 2), True)], {"mode": "reflect"}, opset=13)
case("pad_edge_13", "Pad", [("x", x34, False), ("p", c64(0, 2, 1, 1, 0, 3), True)], {"mode": "edge"}, opset=13)
case("pad_negative_crop", "Pad", [("x", x34, False), ("p", c64(0, -1, 2, -1, 1, -2), True), ("v", cf(-2.0), True)],
     {"mode": "constant"}, opset=13)
case("pad_reflect_crop", "Pad", [("x", randn(7), False), ("p", c64(3, -2), True)], {"mode": "reflect"}, opset=13)
case("pad_reflect_long", "Pad", [("x", randn(3), False), ("p", c64(5, 4), True)], {"mode": "reflect"}, opset=13,
     oracle="ref")  # pads longer than the axis: onnxruntime 1.23.2 reads uninitialized memory there
case("pad_axes_18", "Pad", [("x", x34, False), ("p", c64(1, 2, 0, 1), True), ("v", cf(0.5), True),
                            ("a", c64(1, -1), True)], {"mode": "constant"}, opset=18)
case("pad_axes_edge_18", "Pad", [("x", x34, False), ("p", c64(2, 1), True), ("", None, False), ("a", c64(0), True)],
     {"mode": "edge"}, opset=18)
case("pad_wrap_19", "Pad", [("x", x34, False), ("p", c64(0, 2, 3, 0, 1, 2), True)], {"mode": "wrap"}, opset=19)
case("pad_wrap_crop_19", "Pad", [("x", randn(5, 3), False), ("p", c64(-1, 0, 3, 2), True)], {"mode": "wrap"}, opset=19)
case("pad_opset2", "Pad", [("x", x34, False)], {"pads": [0, 1, 1, 0, 2, 1], "value": 3.0}, opset=2, ir=3)
case("pad_dynamic_pads", "Pad", [("x", x34, False), ("p", c64(1, 0, 2, 0, 1, 1), False)], {"mode": "reflect"},
     opset=13)
case("pad_int64", "Pad", [("x", RNG.integers(-9, 9, (3, 4)).astype(np.int64), False), ("p", c64(1, 1, 2, 0), True),
                          ("v", c64(7), True)], opset=18)
case("pad_bool_edge", "Pad", [("x", RNG.integers(0, 2, (3, 4)).astype(bool), False), ("p", c64(1, 0, 0, 2), True)],
     {"mode": "edge"}, opset=18)

# ---- Resize -------------------------------------------------------------------------------------------------
def rs(name, xs, scales=None, sizes=None, opset=18, roi=None, dyn=False, dtype=np.float32, oracle="ort", **attrs):
    x = randn(*xs) if dtype == np.float32 else RNG.integers(0, 200, xs).astype(dtype)
    ins = [("x", x, False), ("roi", None if roi is None else cf(*roi), True),
           ("scales", None if scales is None else cf(*scales), not dyn),
           ("sizes", None if sizes is None else c64(*sizes), not dyn)]
    if opset < 13:
        if scales is None:
            ins[2] = ("scales", np.zeros(0, np.float32), True)
        if roi is None:
            ins[1] = ("roi", np.zeros(0, np.float32), True)
    while ins[-1][1] is None:
        ins.pop()
    case(name, "Resize", ins, attrs, opset=opset, oracle=oracle)


X4 = (1, 2, 4, 5)
for nm in ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]:
    rs(f"resize_nearest_{nm}_up", X4, scales=[1, 1, 1.5, 2.5], mode="nearest", nearest_mode=nm)
    rs(f"resize_nearest_{nm}_down", (1, 1, 7, 9), sizes=[1, 1, 4, 5], mode="nearest", nearest_mode=nm,
       coordinate_transformation_mode="align_corners")
for cm in ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"]:
    rs(f"resize_nearest_{cm}", X4, sizes=[1, 2, 7, 3], mode="nearest", coordinate_transformation_mode=cm)
    rs(f"resize_linear_{cm}_up", X4, scales=[1, 1, 1.75, 1.6], mode="linear", coordinate_transformation_mode=cm)
    rs(f"resize_linear_{cm}_down", (1, 1, 8, 9), sizes=[1, 1, 3, 5], mode="linear", coordinate_transformation_mode=cm)
    rs(f"resize_cubic_{cm}", X4, scales=[1, 1, 1.5, 0.8], mode="cubic", coordinate_transformation_mode=cm)
rs("resize_nearest_tf_half_pixel_for_nn", X4, scales=[1, 1, 1.5, 0.6], mode="nearest", opset=11,
   coordinate_transformation_mode="tf_half_pixel_for_nn")
rs("resize_linear_half_pixel_symmetric", X4, scales=[1, 1, 1.7, 0.7], mode="linear", opset=19,
   coordinate_transformation_mode="half_pixel_symmetric")
rs("resize_cubic_half_pixel_symmetric", X4, scales=[1, 1, 2.3, 1.3], mode="cubic", opset=19,
   coordinate_transformation_mode="half_pixel_symmetric")
rs("resize_linear_tf_crop_and_resize", X4, sizes=[1, 2, 5, 4], roi=[0, 0, 0.1, -0.2, 1, 1, 0.9, 1.3], mode="linear",
   coordinate_transformation_mode="tf_crop_and_resize", extrapolation_value=-3.0)
rs("resize_nearest_tf_crop_and_resize", X4, sizes=[1, 2, 3, 6], roi=[0, 0, 0.2, -0.5, 1, 1, 0.8, 1.2],
   mode="nearest", coordinate_transformation_mode="tf_crop_and_resize", extrapolation_value=2.5)
rs("resize_cubic_a05_exclude_outside", X4, scales=[1, 1, 2, 1.5], mode="cubic", cubic_coeff_a=-0.5, exclude_outside=1)
rs("resize_cubic_exclude_outside_down", (1, 1, 8, 7), sizes=[1, 1, 5, 3], mode="cubic", exclude_outside=1)
rs("resize_opset11_sizes", X4, sizes=[1, 2, 6, 3], opset=11, mode="linear")
rs("resize_opset13_scales", X4, scales=[1, 1, 0.5, 2.0], opset=13, mode="cubic")
rs("resize_axes_sizes_18", X4, sizes=[7, 3], axes=[2, 3], mode="linear")
rs("resize_axes_scales_18", X4, scales=[2.0, 0.6], axes=[3, 2], mode="nearest")
rs("resize_not_larger_18", X4, sizes=[9, 7], axes=[2, 3], mode="linear", keep_aspect_ratio_policy="not_larger")
rs("resize_not_smaller_18", X4, sizes=[9, 7], axes=[2, 3], mode="nearest", keep_aspect_ratio_policy="not_smaller")
rs("resize_antialias_linear_18", (1, 2, 9, 11), sizes=[1, 2, 4, 5], mode="linear", antialias=1)
rs("resize_antialias_cubic_18", (1, 2, 9, 11), sizes=[1, 2, 5, 4], mode="cubic", antialias=1)
rs("resize_antialias_linear_up_18", (1, 1, 3, 4), scales=[1, 1, 2, 1.5], mode="linear", antialias=1)
rs("resize_trilinear_5d", (1, 2, 3, 4, 5), scales=[1, 1, 1.5, 0.5, 1.4], mode="linear")
rs("resize_nearest_nd_all_axes", (2, 3, 4), scales=[2, 0.7, 1.5], mode="nearest")
rs("resize_linear_1d_axes", (2, 3, 6), scales=[0.5], axes=[1], mode="linear", oracle="ref")  # ORT: no linear on C
rs("resize_uint8_nearest", X4, scales=[1, 1, 1.5, 1.5], dtype=np.uint8, mode="nearest")
rs("resize_dynamic_scales", X4, scales=[1, 1, 1.5, 0.6], dyn=True, mode="linear")
rs("resize_dynamic_sizes", X4, sizes=[1, 2, 3, 8], dyn=True, mode="cubic")

# ---- DepthToSpace, SpaceToDepth, Trilu ----------------------------------------------------------------------
case("d2s_dcr_11", "DepthToSpace", [("x", randn(2, 8, 2, 3), False)], {"blocksize": 2}, opset=11)
case("d2s_crd_13", "DepthToSpace", [("x", randn(1, 18, 2, 2), False)], {"blocksize": 3, "mode": "CRD"}, opset=13)
case("d2s_dcr_int64_13", "DepthToSpace", [("x", RNG.integers(-50, 50, (1, 8, 3, 2)).astype(np.int64), False)],
     {"blocksize": 2, "mode": "DCR"}, opset=13, oracle="ref")  # onnxruntime 1.23.2: no int64 DepthToSpace
case("s2d_2", "SpaceToDepth", [("x", randn(2, 3, 4, 6), False)], {"blocksize": 2}, opset=13)
case("s2d_3_opset1", "SpaceToDepth", [("x", randn(1, 2, 6, 3), False)], {"blocksize": 3}, opset=11)
t45 = randn(2, 3, 4, 5)
case("trilu_upper", "Trilu", [("x", t45, False)], opset=14)
case("trilu_upper_k2", "Trilu", [("x", t45, False), ("k", np.array(2, np.int64), True)], opset=14)
case("trilu_lower_kneg1", "Trilu", [("x", t45, False), ("k", np.array(-1, np.int64), True)], {"upper": 0}, opset=14)
case("trilu_lower_wide", "Trilu", [("x", randn(3, 6), False), ("k", np.array(3, np.int64), False)], {"upper": 0},
     opset=14)
case("trilu_int64", "Trilu", [("x", RNG.integers(1, 9, (4, 3)).astype(np.int64), False)], opset=14)

# ---- TopK, NonZero ------------------------------------------------------------------------------------------
tk_out = [("values", F), ("indices", I64)]
case("topk_default", "TopK", [("x", randn(3, 7), False), ("k", c64(3), True)], outs=tk_out, opset=11)
case("topk_smallest_axis1", "TopK", [("x", randn(2, 6, 3), False), ("k", c64(4), True)], {"axis": 1, "largest": 0},
     outs=tk_out, opset=11)
ties = np.array([[3, 1, 3, 2, 3, 1], [5, 5, 5, 5, 4, 6]], np.float32)
case("topk_ties_largest", "TopK", [("x", ties, False), ("k", c64(4), True)], outs=tk_out, opset=11)
case("topk_ties_smallest", "TopK", [("x", ties, False), ("k", c64(5), True)], {"largest": 0}, outs=tk_out, opset=11)
case("topk_int64_axis0", "TopK", [("x", RNG.integers(-20, 20, (4, 5)).astype(np.int64), False), ("k", c64(2), True)],
     {"axis": 0}, outs=[("values", I64), ("indices", I64)], opset=11)
case("topk_opset1_attr", "TopK", [("x", randn(3, 5), False)], {"k": 2}, outs=tk_out, opset=9)
case("topk_opset10", "TopK", [("x", randn(3, 5), False), ("k", c64(3), True)], outs=tk_out, opset=10)
case("topk_dynamic_k", "TopK", [("x", randn(2, 9), False), ("k", c64(5), False)], outs=tk_out, opset=11)
case("topk_opset24", "TopK", [("x", randn(4, 5), False), ("k", c64(3), True)], {"axis": 0, "largest": 0},
     outs=tk_out, opset=24, oracle="ref")  # onnxruntime 1.23.2 has TopK up to opset 11
nz = randn(3, 4) * (RNG.random((3, 4)) > 0.5)
case("nonzero_float", "NonZero", [("x", nz.astype(np.float32), False)], outs=[("y", I64)], opset=13)
case("nonzero_bool_3d", "NonZero", [("x", RNG.random((2, 3, 2)) > 0.4, False)], outs=[("y", I64)], opset=13)
case("nonzero_int_1d_opset9", "NonZero", [("x", c64(0, 3, 0, -1, 2), False)], outs=[("y", I64)], opset=9)

# ---- GatherND, ScatterND ------------------------------------------------------------------------------------
d234 = randn(2, 3, 4)
case("gathernd_full_11", "GatherND", [("x", d234, False), ("i", c64(1, 2, 3, 0, -1, 0).reshape(2, 3), True)],
     opset=11)
case("gathernd_slices", "GatherND", [("x", d234, False), ("i", c64(1, 0, 0, 2, 1, 1).reshape(3, 1, 2), True)],
     opset=13)
case("gathernd_batch1_12", "GatherND", [("x", d234, False), ("i", c64(2, 0, 1, -1).reshape(2, 2, 1), True)],
     {"batch_dims": 1}, opset=12)
case("gathernd_batch2", "GatherND", [("x", randn(2, 3, 4, 2), False),
                                     ("i", RNG.integers(0, 4, (2, 3, 2, 1)).astype(np.int64), False)],
     {"batch_dims": 2}, opset=13)
case("gathernd_int64_data", "GatherND", [("x", RNG.integers(-9, 9, (3, 3)).astype(np.int64), False),
                                         ("i", c64(2, 1, 0).reshape(3, 1), True)], opset=13)
sd = randn(4, 3, 2)
case("scatternd_none_11", "ScatterND", [("x", sd, False), ("i", c64(2, 0).reshape(2, 1), True), ("u", randn(2, 3, 2), False)],
     opset=11)
case("scatternd_elements", "ScatterND", [("x", sd, False), ("i", c64(0, 1, 1, 3, 2, 0).reshape(2, 3), True),
                                         ("u", randn(2), False)], opset=13)
for red, ver in [("add", 16), ("mul", 16), ("max", 18), ("min", 18)]:
    case(f"scatternd_{red}", "ScatterND", [("x", sd, False), ("i", c64(1, 3, 1).reshape(3, 1), True),
                                           ("u", randn(3, 3, 2), False)], {"reduction": red}, opset=ver)
case("scatternd_add_int64", "ScatterND", [("x", RNG.integers(-5, 5, (5,)).astype(np.int64), False),
                                          ("i", c64(0, 4, 0).reshape(3, 1), True), ("u", c64(10, 20, 30), False)],
     {"reduction": "add"}, opset=16)

# ---- Einsum -------------------------------------------------------------------------------------------------
def es(name, eq, *shapes, dtype=np.float32):
    ins = [(f"x{i}", randn(*s) if dtype == np.float32 else RNG.integers(-4, 5, s).astype(dtype), False)
           for i, s in enumerate(shapes)]
    case(name, "Einsum", ins, {"equation": eq}, opset=12)


es("einsum_matmul", "ij,jk->ik", (3, 4), (4, 5))
es("einsum_batch_matmul", "bij,bjk->bik", (2, 3, 4), (2, 4, 2))
es("einsum_implicit", "ij,kj", (2, 3), (4, 3))
es("einsum_transpose", "ij->ji", (3, 5))
es("einsum_diagonal", "ii->i", (4, 4))
es("einsum_trace", "ii", (4, 4))
es("einsum_diag_3d", "iij->ji", (3, 3, 2))
es("einsum_dot", "i,i", (5,), (5,))
es("einsum_outer", "i,j->ij", (3,), (4,))
es("einsum_sum_all", "ijk->", (2, 3, 4))
es("einsum_three_inputs", "abc,cd,de->abe", (2, 3, 4), (4, 3), (3, 2))
es("einsum_attention_like", "bhqd,bhkd->bhqk", (1, 2, 3, 4), (1, 2, 5, 4))
es("einsum_ellipsis", "...ij,...jk->...ik", (2, 1, 3, 4), (1, 3, 4, 2))
es("einsum_ellipsis_implicit", "...ij,...jk", (2, 3, 4), (2, 4, 3))
es("einsum_upper_case", "Ab,bC->AC", (2, 3), (3, 4))
es("einsum_int64", "ij,jk->ik", (2, 3), (3, 2), dtype=np.int64)
es("einsum_reduce_mixed", "abc,b->ac", (2, 3, 4), (3,))

# ---- Attention ----------------------------------------------------------------------------------------------
def att(name, qs, ks, vs, mask=None, past=None, outs=("Y",), opset=23, oracle="ort", nonpad=None, **attrs):
    ins = [("Q", randn(*qs), False), ("K", randn(*ks), False), ("V", randn(*vs), False), ("M", mask, False)]
    if past is not None:
        ins += [("PK", randn(*past[0]), False), ("PV", randn(*past[1]), False)]
    if nonpad is not None:
        ins += [("PK", None, False), ("PV", None, False), ("NP", nonpad, False)]
    while ins[-1][1] is None:
        ins.pop()
    names = ["Y", "present_key", "present_value", "qk"]
    o = [(n if n in outs else "", F) for n in names]
    while not o[-1][0]:
        o.pop()
    case(name, "Attention", ins, attrs, outs=o, opset=opset, oracle=oracle)


att("att_4d_mha", (2, 3, 4, 8), (2, 3, 5, 8), (2, 3, 5, 6))
att("att_3d_gqa", (2, 3, 32), (2, 5, 16), (2, 5, 12), q_num_heads=4, kv_num_heads=2)
att("att_mqa_causal", (1, 4, 5, 4), (1, 1, 5, 4), (1, 1, 5, 4), is_causal=1)
att("att_causal_cross", (1, 2, 3, 8), (1, 2, 5, 8), (1, 2, 5, 8), is_causal=1)
att("att_bool_mask", (2, 2, 3, 4), (2, 2, 4, 4), (2, 2, 4, 4), mask=RNG.random((2, 1, 3, 4)) > 0.3)
att("att_float_mask_scale", (1, 2, 3, 4), (1, 2, 4, 4), (1, 2, 4, 4), mask=randn(3, 4), scale=0.7)
att("att_past_causal", (1, 2, 3, 4), (1, 2, 3, 4), (1, 2, 3, 5), past=((1, 2, 2, 4), (1, 2, 2, 5)), is_causal=1,
    outs=("Y", "present_key", "present_value"))
att("att_past_mask_3d", (2, 3, 8), (2, 3, 4), (2, 3, 4), past=((2, 1, 2, 4), (2, 1, 2, 4)), q_num_heads=2,
    kv_num_heads=1, mask=randn(2, 1, 3, 5), outs=("Y", "present_key", "present_value"))
att("att_short_mask", (1, 1, 3, 4), (1, 1, 5, 4), (1, 1, 5, 4), mask=randn(3, 3), oracle="ref")  # padded to 5: ORT refuses
# Mode 0 is the raw scaled Q.K^T even with softcap (the spec and onnxruntime; the reference evaluator returns
# the softcapped value); without a mask, onnxruntime's Y follows the spec too.
att("att_qk_mode0_softcap", (1, 2, 3, 4), (1, 2, 4, 4), (1, 2, 4, 4), softcap=2.0, qk_matmul_output_mode=0,
    outs=("Y", "qk"))
att("att_qk_mode2", (1, 2, 3, 4), (1, 2, 4, 4), (1, 2, 4, 4), mask=randn(1, 3, 4), qk_matmul_output_mode=2,
    outs=("Y", "qk"))
att("att_qk_mode3", (1, 2, 3, 4), (1, 2, 4, 4), (1, 2, 4, 4), is_causal=1, qk_matmul_output_mode=3, outs=("Y", "qk"))
# Softcap and modes 1 / 2 with softcap: onnxruntime 1.23.2 adds the mask before softcap; the spec (and the
# reference evaluator) softcap first.
att("att_softcap_mode1", (1, 2, 3, 4), (1, 2, 4, 4), (1, 2, 4, 4), mask=randn(3, 4), softcap=1.5,
    qk_matmul_output_mode=1, outs=("Y", "qk"), oracle="ref")
att("att_softcap_mode2_causal", (1, 2, 4, 4), (1, 2, 4, 4), (1, 2, 4, 4), softcap=1.0, is_causal=1,
    qk_matmul_output_mode=2, outs=("Y",), oracle="ref")
# A fully masked query row gives zeros (spec errata); onnxruntime 1.23.2 gives NaN.
att("att_fully_masked_row", (1, 1, 3, 4), (1, 1, 3, 4), (1, 1, 3, 4),
    mask=np.array([[1, 0, 1], [0, 0, 0], [1, 1, 0]], bool), qk_matmul_output_mode=3, outs=("Y", "qk"), oracle="ref")
# Opset 24 (nonpad_kv_seqlen) and 25 (sliding window): onnxruntime 1.23.2 implements Attention-23 only.
att("att_nonpad_24", (2, 2, 3, 4), (2, 2, 6, 4), (2, 2, 6, 4), nonpad=c64(4, 6), is_causal=1, opset=24, oracle="ref")
att("att_window_25", (1, 2, 5, 4), (1, 2, 5, 4), (1, 2, 5, 4), left_window_size=2, right_window_size=1, opset=25,
    oracle="ref")


# ---- End to end: If with outer-scope captures (nested), NonZero -> Transpose -> GatherND --------------------
def if_model():
    """Conv -> BatchNormalization -> Relu feeds an If whose branches read outer values (c1, r, s) that only the
    branches use; the else branch holds a nested If. BN folding must not swallow c1, which a branch reads."""
    v = helper.make_tensor_value_info
    inner_then = helper.make_graph([helper.make_node("Mul", ["r", "s"], ["e_t"], name="inner_mul")], "inner_then", [],
                                   [v("e_t", F, [1, 3, 4, 4])])
    inner_else = helper.make_graph([helper.make_node("Sub", ["c1", "s"], ["e_e"], name="inner_sub")], "inner_else", [],
                                   [v("e_e", F, [1, 3, 4, 4])])
    then_g = helper.make_graph([helper.make_node("Add", ["r", "c1"], ["t"], name="then_add"),
                                helper.make_node("Tanh", ["t"], ["t2"], name="then_tanh")], "then_branch", [],
                               [v("t2", F, [1, 3, 4, 4])])
    else_g = helper.make_graph([helper.make_node("If", ["flag2"], ["e"], name="inner_if", then_branch=inner_then,
                                                 else_branch=inner_else)], "else_branch", [],
                               [v("e", F, [1, 3, 4, 4])])
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c1"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "bn_s", "bn_b", "bn_m", "bn_v"], ["n1"], name="bn"),
        helper.make_node("Relu", ["n1"], ["r"], name="relu"),
        helper.make_node("ReduceMean", ["x"], ["xm"], name="mean", axes=[1], keepdims=1),
        helper.make_node("Mul", ["xm", "k"], ["s"], name="scale"),
        helper.make_node("If", ["flag"], ["y"], name="if_outer", then_branch=then_g, else_branch=else_g),
        helper.make_node("Add", ["y", "k"], ["z"], name="after_if"),
    ]
    inits = [numpy_helper.from_array(a, n) for n, a in [
        ("w", randn(3, 2, 3, 3)), ("bn_s", RNG.uniform(0.5, 2, 3).astype(np.float32)), ("bn_b", randn(3)),
        ("bn_m", randn(3)), ("bn_v", RNG.uniform(0.5, 2, 3).astype(np.float32)), ("k", cf(0.5))]]
    g = helper.make_graph(nodes, "if_e2e", [v("x", F, [1, 2, 4, 4]), v("flag", B, []), v("flag2", B, [])],
                          [v("y", F, [1, 3, 4, 4]), v("z", F, [1, 3, 4, 4])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


x_if, m_if = randn(1, 2, 4, 4), if_model()
for f1 in (True, False):
    for f2 in (True, False):
        save_model(f"e2e_if_{'t' if f1 else 'f'}{'t' if f2 else 'f'}", m_if,
                   {"x": x_if, "flag": np.array(f1), "flag2": np.array(f2)}, "ort")


def nonzero_model():
    v = helper.make_tensor_value_info
    nodes = [helper.make_node("NonZero", ["x"], ["nz"], name="nonzero"),
             helper.make_node("Transpose", ["nz"], ["idx"], name="transpose"),
             helper.make_node("GatherND", ["x", "idx"], ["vals"], name="gathernd"),
             helper.make_node("Relu", ["vals"], ["pos"], name="relu")]
    g = helper.make_graph(nodes, "nonzero_e2e", [v("x", F, ["n", 4])], [v("idx", I64, None), v("pos", F, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


for tag, rows in (("a", 3), ("b", 5)):
    xz = (randn(rows, 4) * (RNG.random((rows, 4)) > 0.4)).astype(np.float32)
    save_model(f"e2e_nonzero_{tag}", nonzero_model(), {"x": xz}, "ort")

if FAILED:
    sys.exit("onnxruntime failed on:\n" + "\n".join(FAILED))
with open(os.path.join(OUT, "cases.txt"), "w") as f:
    f.write("\n".join(CASES) + "\n")
print(f"{len(CASES)} ops3 cases written to {OUT}")
