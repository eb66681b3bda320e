#!/usr/bin/env python3
"""Expected outputs for the op-coverage tests (tests/unit/test_ops_{activation,logical,reduce_more,layer_norm,
split_tile}.cpp), computed by onnxruntime on the CPU.

Usage: .venv/bin/python tests/scripts/gen_op_expected.py FAMILY   (activation | logical | reduce_more |
layer_norm | split_tile). Prints the C++ body of that test file's `ort_cases()` table; paste it between the
"BEGIN/END generated" markers. Pinned: onnx 1.23.2, onnxruntime 1.23.2, numpy from the project venv.

Inputs are described once and rendered both as numpy arrays (fed to onnxruntime) and as the C++ expressions that
build the same tensors in the test (rand_f32 etc. from tests/unit/test_ops_util.h / test_ops_cases.h).
"""
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper


def rand_f32(shape, seed):
    n = int(np.prod(shape)) if shape else 1
    x = (seed * 2654435761 + 12345) & 0xFFFFFFFF
    out = np.empty(n, np.float32)
    for i in range(n):
        x = (x * 1664525 + 1013904223) & 0xFFFFFFFF
        out[i] = np.float32(((x >> 8) & 0xFFFF) / 32768.0 - 1.0)
    return out.reshape(shape)


def shp(shape):
    return "{" + ", ".join(str(s) for s in shape) + "}"


class In:
    def __init__(self, arr, cpp):
        self.arr, self.cpp = arr, cpp


def R(shape, seed, scale=1.0, dt="f32", const=False):
    """rand_f32(shape, seed) * scale, optionally as float16 (rand_f16) / constant."""
    a = rand_f32(shape, seed) * np.float32(scale)
    fn = {"f32": "rand_f32s", "f16": "rand_f16s"}[dt]
    if dt == "f16":
        a = a.astype(np.float16)
    cpp = "%s(%s, %d, %sf)" % (fn, shp(shape), seed, repr(float(scale)))
    return In(a, "Const(%s)" % cpp if const else cpp)


CPP_MAKERS = {"float32": "f32", "float16": "f16", "int64": "i64", "int32": "i32", "bool": "boolean",
              "float64": "f64", "uint8": "u8", "int8": "i8"}


def fmt_vals(a):
    if a.dtype == np.bool_:
        vals = ["1" if v else "0" for v in a.ravel()]
    elif np.issubdtype(a.dtype, np.integer):
        vals = [str(int(v)) for v in a.ravel()]
    else:
        vals = ["%.9g" % float(v) for v in a.ravel()]
    lines, cur = [], ""
    for v in vals:
        if len(cur) + len(v) + 2 > 100:
            lines.append(cur.rstrip())
            cur = ""
        cur += v + ", "
    lines.append(cur.rstrip().rstrip(","))
    return "\n           ".join(lines)


def T(values, dtype, shape=None, const=False):
    """An explicit tensor; `shape` defaults to 1-D."""
    a = np.array(values, dtype=dtype)
    if shape is not None:
        a = a.reshape(shape)
    cpp = "%s(%s, {%s})" % (CPP_MAKERS[a.dtype.name], shp(a.shape), fmt_vals(a))
    return In(a, "Const(%s)" % cpp if const else cpp)


def C(values, dtype=np.int64, shape=None):
    return T(values, dtype, shape, const=True)


OMIT = In(None, "Omit()")


def attr_cpp(k, v):
    if isinstance(v, str):
        return '{"%s", std::string("%s")}' % (k, v)
    if isinstance(v, float):
        return '{"%s", %sf}' % (k, repr(v))
    if isinstance(v, int):
        return '{"%s", int64_t(%d)}' % (k, v)
    return '{"%s", Ints{%s}}' % (k, ", ".join(str(x) for x in v))


def run_case(name, op, opset, inputs, attrs=None, n_out=1):
    attrs = attrs or {}
    feeds, vis, names = {}, [], []
    for i, x in enumerate(inputs):
        if x.arr is None:
            names.append("")
            continue
        nm = "x%d" % i
        names.append(nm)
        feeds[nm] = x.arr
        vis.append(helper.make_tensor_value_info(nm, helper.np_dtype_to_tensor_dtype(x.arr.dtype), x.arr.shape))
    outs = ["y%d" % i for i in range(n_out)]
    node = helper.make_node(op, names, outs, **attrs)
    g = helper.make_graph([node], name, vis, [onnx.ValueInfoProto(name=o) for o in outs])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 11 if opset >= 22 else 10
    res = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    ys = []
    for r in res:
        r = np.asarray(r)
        ys.append("%s(%s, {%s})" % (CPP_MAKERS[r.dtype.name], shp(r.shape), fmt_vals(r)))
    return '    {"%s", "%s", %d,\n     {%s},\n     {%s},\n     {%s}},' % (
        name, op, opset, ", ".join(x.cpp for x in inputs), ", ".join(attr_cpp(k, v) for k, v in attrs.items()),
        ",\n      ".join(ys))


FAMILIES = {}


def family(f):
    FAMILIES[f.__name__] = f
    return f


@family
def activation():
    c = []
    c.append(run_case("ceil", "Ceil", 13, [R([3, 4], 1, 3.0)]))
    c.append(run_case("floor", "Floor", 13, [R([3, 4], 1, 3.0)]))
    c.append(run_case("cos", "Cos", 7, [R([2, 5], 2, 4.0)]))
    c.append(run_case("sin", "Sin", 7, [R([2, 5], 2, 4.0)]))
    c.append(run_case("reciprocal", "Reciprocal", 13, [R([2, 3], 3, 2.0)]))
    c.append(run_case("sign_f32", "Sign", 13, [T([-2.5, 0.0, 3.0, -0.1, 7.0, 1e-3], np.float32)]))
    c.append(run_case("sign_i32", "Sign", 13, [T([-7, 0, 5, -1, 2147483647], np.int32)]))
    c.append(run_case("not", "Not", 1, [T([True, False, False, True], np.bool_, [2, 2])]))
    c.append(run_case("elu_default", "Elu", 6, [R([3, 4], 4, 3.0)]))
    c.append(run_case("elu_alpha", "Elu", 6, [R([3, 4], 4, 3.0)], dict(alpha=0.5)))
    c.append(run_case("elu_f16", "Elu", 22, [R([2, 4], 5, 3.0, "f16")], dict(alpha=1.5)))
    c.append(run_case("hardsigmoid_default", "HardSigmoid", 6, [R([3, 4], 6, 4.0)]))
    c.append(run_case("hardsigmoid_ab", "HardSigmoid", 6, [R([3, 4], 6, 4.0)], dict(alpha=0.3, beta=0.4)))
    c.append(run_case("hardswish", "HardSwish", 14, [R([3, 4], 7, 5.0)]))
    c.append(run_case("mish", "Mish", 18, [R([3, 4], 8, 4.0)]))
    c.append(run_case("softplus", "Softplus", 1, [T([-30.0, -2.0, -0.5, 0.5, 2.0, 30.0, 100.0], np.float32)]))
    c.append(run_case("softplus_f16", "Softplus", 22, [R([2, 4], 9, 4.0, "f16")]))
    c.append(run_case("gelu_none", "Gelu", 20, [R([3, 4], 10, 3.0)]))
    c.append(run_case("gelu_tanh", "Gelu", 20, [R([3, 4], 10, 3.0)], dict(approximate="tanh")))
    c.append(run_case("gelu_tanh_f16", "Gelu", 20, [R([2, 4], 11, 3.0, "f16")], dict(approximate="tanh")))
    # Only the data output at opset 10: onnxruntime's Dropout-10 returns an all-false mask where the ONNX spec and
    # reference evaluator give all true (kiln follows the spec; the mask is hand-tested).
    c.append(run_case("dropout10", "Dropout", 10, [R([2, 3], 12)], dict(ratio=0.3)))
    c.append(run_case("dropout12_ratio", "Dropout", 12, [R([2, 3], 12), T(0.25, np.float32, [])], {}, 2))
    c.append(run_case("dropout13_mode_false", "Dropout", 13,
                      [R([2, 3], 12), T(0.5, np.float32, []), C(False, np.bool_, [])], {}, 2))
    c.append(run_case("castlike_f32_i64", "CastLike", 15, [R([2, 3], 13, 5.0), T([1], np.int64)]))
    c.append(run_case("castlike_i32_f32", "CastLike", 15, [T([-3, 7, 100000], np.int32), T([0.5], np.float32)]))
    c.append(run_case("castlike_f32_f16", "CastLike", 19, [R([5], 14, 2.0), T([1.0], np.float16)]))
    return c


@family
def logical():
    c = []
    a = T([True, False, True, False, True, True], np.bool_, [2, 3])
    b = T([True, False, True], np.bool_, [3])
    c.append(run_case("and", "And", 7, [a, b]))
    c.append(run_case("or", "Or", 7, [a, b]))
    c.append(run_case("xor", "Xor", 7, [a, b]))
    x = R([2, 3, 4], 20, 2.0)
    c.append(run_case("ge_bcast", "GreaterOrEqual", 12, [x, R([3, 1], 21, 2.0)]))
    c.append(run_case("le_bcast", "LessOrEqual", 16, [x, R([4], 22, 2.0)]))
    ia = T([5, -5, 7, -7, 3, 0, 9, -9], np.int32, [2, 4])
    ib = T([3, 3, -3, -3], np.int32, [4])
    c.append(run_case("ge_i32_ties", "GreaterOrEqual", 16, [ia, T([5, -5, 8, -7], np.int32, [4])]))
    c.append(run_case("le_i32_ties", "LessOrEqual", 16, [ia, T([5, -5, 8, -7], np.int32, [4])]))
    c.append(run_case("mod_int_floor", "Mod", 13, [ia, ib]))
    c.append(run_case("mod_int_fmod", "Mod", 13, [ia, ib], dict(fmod=1)))
    c.append(run_case("mod_i64_floor", "Mod", 10, [T([17, -17, 17, -17, 4], np.int64), T([5, 5, -5, -5, 2], np.int64)]))
    c.append(run_case("mod_float_fmod", "Mod", 13, [R([2, 4], 23, 7.0), T([2.5, -1.5, 3.0, -4.0], np.float32)],
                      dict(fmod=1)))
    c.append(run_case("prelu_channel", "PRelu", 9, [R([2, 3, 2, 2], 24, 2.0), R([3, 1, 1], 25)]))
    c.append(run_case("prelu_scalar", "PRelu", 16, [R([2, 5], 26, 2.0), T([0.25], np.float32)]))
    c.append(run_case("prelu_lastdim", "PRelu", 16, [R([2, 3, 4], 27, 2.0), R([4], 28)]))
    c.append(run_case("max3", "Max", 13, [R([2, 3], 30), R([3], 31), R([2, 1], 32)]))
    c.append(run_case("min3", "Min", 13, [R([2, 3], 30), R([3], 31), R([2, 1], 32)]))
    c.append(run_case("mean3", "Mean", 13, [R([2, 3], 30), R([3], 31), R([2, 1], 32)]))
    c.append(run_case("sum3", "Sum", 13, [R([2, 3], 30), R([3], 31), R([2, 1], 32)]))
    c.append(run_case("sum1", "Sum", 8, [R([4], 33)]))
    c.append(run_case("max_i32", "Max", 12, [T([1, -5, 9, 4], np.int32, [2, 2]), T([3, -7], np.int32)]))
    c.append(run_case("min_i64", "Min", 13, [T([1, -5, 9, 4], np.int64, [2, 2]), T([3, -7], np.int64)]))
    c.append(run_case("mean_f16", "Mean", 13, [R([2, 3], 34, 1.0, "f16"), R([3], 35, 1.0, "f16")]))
    return c


@family
def reduce_more():
    c = []
    x = R([2, 3, 4], 40, 2.0)
    for op in ["ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2", "ReduceSumSquare"]:
        low = op[6:].lower()
        c.append(run_case(low + "13_axes1", op, 13, [x], dict(axes=[1])))
        c.append(run_case(low + "13_all_nokeep", op, 13, [x], dict(keepdims=0)))
        c.append(run_case(low + "18_input", op, 18, [x, C([0, -1])], dict(keepdims=0)))
        c.append(run_case(low + "18_noaxes", op, 18, [x]))
    c.append(run_case("max_i32", "ReduceMax", 13, [T([3, -9, 4, 12, -1, 0], np.int32, [2, 3])], dict(axes=[1])))
    c.append(run_case("min_i64", "ReduceMin", 18, [T([3, -9, 4, 12, -1, 0], np.int64, [2, 3]), C([0])]))
    c.append(run_case("prod_i64", "ReduceProd", 13, [T([3, -9, 4, 12, -1, 2], np.int64, [2, 3])], dict(axes=[1])))
    c.append(run_case("sumsquare_i32", "ReduceSumSquare", 13, [T([3, -9, 4, 12, -1, 2], np.int32, [2, 3])],
                      dict(axes=[0])))
    c.append(run_case("l2_f16", "ReduceL2", 13, [R([3, 4], 41, 2.0, "f16")], dict(axes=[1])))
    c.append(run_case("max_f16", "ReduceMax", 18, [R([3, 4], 42, 2.0, "f16"), C([0])]))
    # ArgMax / ArgMin
    ties = T([1, 5, 5, 2, 7, 7, 7, 0, 3, 3, 1, 3], np.float32, [3, 4])
    c.append(run_case("argmax_axis0", "ArgMax", 13, [x]))
    c.append(run_case("argmax_axis2_nokeep", "ArgMax", 13, [x], dict(axis=2, keepdims=0)))
    c.append(run_case("argmin_neg_axis", "ArgMin", 11, [x], dict(axis=-2)))
    c.append(run_case("argmax_first", "ArgMax", 12, [ties], dict(axis=1)))
    c.append(run_case("argmax_last", "ArgMax", 12, [ties], dict(axis=1, select_last_index=1)))
    c.append(run_case("argmin_last", "ArgMin", 13, [ties], dict(axis=1, select_last_index=1, keepdims=0)))
    c.append(run_case("argmin_i32", "ArgMin", 13, [T([4, -2, -2, 8, 1, 9], np.int32, [2, 3])], dict(axis=1)))
    # CumSum
    y = R([2, 3, 4], 43, 2.0)
    c.append(run_case("cumsum_axis1", "CumSum", 11, [y, C(1, np.int64, [])]))
    c.append(run_case("cumsum_exclusive", "CumSum", 11, [y, C([2], np.int32)], dict(exclusive=1)))
    c.append(run_case("cumsum_reverse", "CumSum", 14, [y, C(-3, np.int64, [])], dict(reverse=1)))
    c.append(run_case("cumsum_excl_rev", "CumSum", 14, [y, C(2, np.int64, [])], dict(exclusive=1, reverse=1)))
    c.append(run_case("cumsum_i64", "CumSum", 14, [T([5, -3, 8, 1, 2, 2], np.int64, [2, 3]), C(1, np.int64, [])]))
    return c


@family
def layer_norm():
    c = []
    x = R([2, 3, 4], 50, 2.0)
    c.append(run_case("ln_last_axis_bias", "LayerNormalization", 17, [x, R([4], 51), R([4], 52)], {}, 3))
    c.append(run_case("ln_axis1_nobias", "LayerNormalization", 17, [x, R([3, 4], 53)], dict(axis=1, epsilon=1e-3), 3))
    c.append(run_case("ln_axis_neg2", "LayerNormalization", 17, [x, R([3, 4], 53), R([3, 4], 54)], dict(axis=-2)))
    c.append(run_case("ln_scale_bcast", "LayerNormalization", 17, [x, R([2, 1, 4], 55), R([2, 1, 4], 56)]))
    c.append(run_case("ln_f16", "LayerNormalization", 17,
                      [R([2, 8], 57, 3.0, "f16"), R([8], 58, 1.0, "f16"), R([8], 59, 1.0, "f16")]))
    g = R([2, 6, 2, 3], 60, 2.0)
    c.append(run_case("gn18_per_group", "GroupNormalization", 18, [g, R([3], 61), R([3], 62)], dict(num_groups=3)))
    c.append(run_case("gn21_per_channel", "GroupNormalization", 21, [g, R([6], 63), R([6], 64)],
                      dict(num_groups=2, epsilon=1e-2)))
    c.append(run_case("gn21_one_group", "GroupNormalization", 21, [g, R([6], 63), R([6], 64)], dict(num_groups=1)))
    c.append(run_case("instnorm", "InstanceNormalization", 6, [R([2, 3, 5], 65, 2.0), R([3], 66), R([3], 67)],
                      dict(epsilon=1e-3)))
    c.append(run_case("instnorm_4d", "InstanceNormalization", 6, [g, R([6], 68), R([6], 69)]))
    c.append(run_case("rms_last", "RMSNormalization", 23, [x, R([4], 70)]))
    c.append(run_case("rms_axis1", "RMSNormalization", 23, [x, R([3, 4], 71)], dict(axis=1, epsilon=1e-2)))
    for opset in (11, 13):
        c.append(run_case("logsoftmax%d_default" % opset, "LogSoftmax", opset, [x]))
        c.append(run_case("logsoftmax%d_axis1" % opset, "LogSoftmax", opset, [x], dict(axis=1)))
    c.append(run_case("logsoftmax_f16", "LogSoftmax", 13, [R([2, 5], 72, 4.0, "f16")]))
    return c


@family
def split_tile():
    c = []
    x = R([4, 6], 80)
    c.append(run_case("split11_attr", "Split", 11, [x], dict(axis=1, split=[1, 2, 3]), 3))
    c.append(run_case("split11_equal", "Split", 11, [x], dict(axis=0), 2))
    c.append(run_case("split13_input", "Split", 13, [x, C([3, 1])], dict(axis=-2), 2))
    c.append(run_case("split13_equal", "Split", 13, [x], dict(axis=1), 3))
    c.append(run_case("split18_num_even", "Split", 18, [x], dict(axis=1, num_outputs=2), 2))
    c.append(run_case("split18_num_uneven", "Split", 18, [R([7, 2], 81)], dict(num_outputs=3), 3))
    c.append(run_case("split18_input", "Split", 18, [x, C([2, 4])], dict(axis=1), 2))
    c.append(run_case("tile", "Tile", 13, [R([2, 3], 82), C([2, 3])]))
    c.append(run_case("tile_3d_one", "Tile", 6, [R([2, 1, 3], 83), C([1, 4, 2])]))
    c.append(run_case("tile_i64", "Tile", 13, [T([1, 2, 3], np.int64), C([3])]))
    d = R([3, 4], 84)
    c.append(run_case("gather_el_axis0", "GatherElements", 11,
                      [d, T([2, 0, 1, -1, 0, -3, 2, 1], np.int64, [2, 4])]))
    c.append(run_case("gather_el_axis1", "GatherElements", 13,
                      [d, T([3, 0, -1, 1, 2, -4], np.int32, [3, 2])], dict(axis=1)))
    c.append(run_case("gather_el_axis_neg", "GatherElements", 13,
                      [R([2, 3, 2], 85), T([1, 0, 2, 2, 0, 1, 1, 1], np.int64, [2, 2, 2])], dict(axis=-2)))
    c.append(run_case("size", "Size", 13, [R([2, 3, 4], 86)]))
    c.append(run_case("size_scalar", "Size", 19, [T(3.5, np.float32, [])]))
    return c


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in FAMILIES:
        sys.exit("usage: gen_op_expected.py {%s}" % "|".join(FAMILIES))
    print("  // BEGIN generated by tests/scripts/gen_op_expected.py %s" % sys.argv[1])
    print("\n".join(FAMILIES[sys.argv[1]]()))
    print("  // END generated")
