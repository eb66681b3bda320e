"""Generates the ONNX models and tensor files the C++ tests use, into the folder given as argv[1].

Seeded; expected outputs come from onnxruntime and are saved as .npy next to each model
(<model>.input_<i>.npy, <model>.output_<i>.npy). Runs in a few seconds.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(20240601)

try:
    import onnxruntime as ort
except ImportError:  # expected outputs are then not written; the tests that need them skip
    ort = None


def path(*names):
    p = os.path.join(out, *names)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    return p


def save(model, name, feeds=None, check=True, **save_kwargs):
    """Saves `model` as <name>.onnx; with `feeds`, also inputs/expected outputs from onnxruntime."""
    if check:
        onnx.checker.check_model(model)
    p = path(name + ".onnx")
    onnx.save_model(model, p, **save_kwargs)
    if feeds is None or ort is None:
        return
    sess = ort.InferenceSession(p, providers=["CPUExecutionProvider"])
    outs = sess.run(None, feeds)
    for i, x in enumerate(feeds.values()):
        np.save(path(name + ".input_%d.npy" % i), x)
    for i, y in enumerate(outs):
        np.save(path(name + ".output_%d.npy" % i), y)


def randn(*shape):
    return rng.standard_normal(shape).astype(np.float32)


# ---- Conv / Relu / Add at several opsets -------------------------------------------------------------------
IR_FOR_OPSET = {9: 4, 13: 7, 17: 8, 18: 8}


def conv_model(opset):
    w = numpy_helper.from_array(randn(4, 3, 3, 3), "conv.weight")
    b = numpy_helper.from_array(randn(4), "conv.bias")
    bias2 = numpy_helper.from_array(randn(1, 4, 1, 1), "add.bias")
    nodes = [
        helper.make_node("Conv", ["x", "conv.weight", "conv.bias"], ["c"], name="conv1", pads=[1, 1, 1, 1],
                         kernel_shape=[3, 3]),
        helper.make_node("Relu", ["c"], ["r"], name="relu1"),
        helper.make_node("Add", ["r", "add.bias"], ["y"], name="add1"),
    ]
    g = helper.make_graph(nodes, "conv_relu_add",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4, 8, 8])],
                          [w, b, bias2])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="kiln-tests",
                          producer_version="1.0")
    m.ir_version = IR_FOR_OPSET[opset]
    return m


for opset in (9, 13, 17, 18):
    save(conv_model(opset), "conv_opset%d" % opset, {"x": randn(2, 3, 8, 8)})

# Same model, weights in an external file next to it (external/model.onnx + external/weights.bin).
save(conv_model(17), os.path.join("external", "model"), {"x": randn(1, 3, 8, 8)}, save_as_external_data=True,
     all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)

# ---- model-local functions, as PyTorch's dynamo exporter emits them (IR 10, opset 18) -----------------------
FN_OPSETS = [helper.make_opsetid("", 18), helper.make_opsetid("pkg.test", 1)]
alpha_ref = helper.make_attribute_ref("value_float", onnx.AttributeProto.FLOAT,
                                      ref_attr_name="alpha")
scaled_relu = helper.make_function(
    "pkg.test", "ScaledRelu", ["X"], ["Y"],
    [
        helper.make_node("Constant", [], ["a"], name="const_alpha"),
        helper.make_node("Mul", ["X", "a"], ["m"], name="mul"),
        helper.make_node("Relu", ["m"], ["Y"], name="relu"),
    ],
    FN_OPSETS, attribute_protos=[helper.make_attribute("alpha", 2.0)])
scaled_relu.node[0].attribute.append(alpha_ref)
slope_ref = helper.make_attribute_ref("alpha", onnx.AttributeProto.FLOAT, ref_attr_name="slope")
leaky = helper.make_node("LeakyRelu", ["s"], ["Y"], name="leaky")
leaky.attribute.append(slope_ref)
block = helper.make_function(
    "pkg.test", "Block", ["X"], ["Y"],
    [
        helper.make_node("ScaledRelu", ["X"], ["a"], domain="pkg.test", name="sr_half", alpha=0.5),
        helper.make_node("ScaledRelu", ["X"], ["b"], domain="pkg.test", name="sr_default"),
        helper.make_node("Add", ["a", "b"], ["s"], name="add"),
        leaky,
    ],
    FN_OPSETS, attributes=["slope"])
fn_graph = helper.make_graph(
    [
        helper.make_node("Block", ["x"], ["h"], domain="pkg.test", name="block1", slope=0.1),
        helper.make_node("Block", ["h"], ["y"], domain="pkg.test", name="block2", slope=0.2),
    ],
    "functions", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])])
fn_model = helper.make_model(fn_graph, opset_imports=FN_OPSETS, functions=[scaled_relu, block],
                             producer_name="pytorch", producer_version="2.11.0")
fn_model.ir_version = 10
save(fn_model, "functions", {"x": randn(3, 8)})

# ---- initializers in every typed field (no nodes: the outputs are the initializers) --------------------------
def typed(name, dtype, dims, field, values):
    t = TensorProto()
    t.name = name
    t.data_type = dtype
    t.dims.extend(dims)
    getattr(t, field).extend(values)
    return t


typed_inits = [
    typed("f32", TensorProto.FLOAT, [2, 2], "float_data", [1.5, -2.0, 3.25, 0.0]),
    typed("f64", TensorProto.DOUBLE, [3], "double_data", [1e-300, -2.5, 1e300]),
    typed("i64", TensorProto.INT64, [2], "int64_data", [-(2 ** 62), 2 ** 40 + 7]),
    typed("i32", TensorProto.INT32, [3], "int32_data", [-2 ** 31, 7, 2 ** 31 - 1]),
    typed("i16", TensorProto.INT16, [2], "int32_data", [-32768, 32767]),
    typed("i8", TensorProto.INT8, [3], "int32_data", [-128, 0, 127]),
    typed("u8", TensorProto.UINT8, [2], "int32_data", [0, 255]),
    typed("b", TensorProto.BOOL, [3], "int32_data", [1, 0, 1]),
    helper.make_tensor("f16", TensorProto.FLOAT16, [2], [1.0, -0.5]),     # bit patterns in int32_data
    helper.make_tensor("bf16", TensorProto.BFLOAT16, [2], [1.0, -2.0]),   # bit patterns in int32_data
    typed("scalar", TensorProto.FLOAT, [], "float_data", [42.0]),
    typed("empty", TensorProto.FLOAT, [0, 3], "float_data", []),
    numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), "raw_f32"),
    numpy_helper.from_array(np.array([1, -1], dtype=np.int64), "raw_i64"),
    numpy_helper.from_array(np.array([0.5, 2.0], dtype=np.float16), "raw_f16"),
]
assert typed_inits[8].int32_data and typed_inits[9].int32_data
typed_graph = helper.make_graph([], "typed", [], [
    helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in typed_inits], typed_inits)
typed_model = helper.make_model(typed_graph, opset_imports=[helper.make_opsetid("", 17)])
save(typed_model, "typed_fields", check=False)

# ---- IR 3: initializers listed among the graph inputs ---------------------------------------------------------
ir3_w = numpy_helper.from_array(randn(4, 5), "W")
ir3_b = numpy_helper.from_array(randn(5), "B")
ir3_graph = helper.make_graph(
    [helper.make_node("MatMul", ["x", "W"], ["mm"]), helper.make_node("Add", ["mm", "B"], ["s"]),
     helper.make_node("Relu", ["s"], ["y"])],
    "ir3",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4]),
     helper.make_tensor_value_info("W", TensorProto.FLOAT, [4, 5]),
     helper.make_tensor_value_info("B", TensorProto.FLOAT, [5])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 5])], [ir3_w, ir3_b])
ir3_model = helper.make_model(ir3_graph, opset_imports=[helper.make_opsetid("", 7)], producer_name="old-exporter")
ir3_model.ir_version = 3
save(ir3_model, "ir3_inputs", {"x": randn(2, 4)})

# ---- Constant nodes -------------------------------------------------------------------------------------------
const_graph = helper.make_graph(
    [
        helper.make_node("Constant", [], ["c_tensor"], value=numpy_helper.from_array(randn(2, 3), "cv")),
        helper.make_node("Constant", [], ["c_float"], value_float=0.5),
        helper.make_node("Constant", [], ["c_ints"], value_ints=[3, 2]),
        helper.make_node("Constant", [], ["c_int"], value_int=7),
        helper.make_node("Add", ["x", "c_tensor"], ["s"], name="add"),
        helper.make_node("Mul", ["s", "c_float"], ["y"], name="mul"),
    ],
    "constants", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3]),
     helper.make_tensor_value_info("c_ints", TensorProto.INT64, [2]),
     helper.make_tensor_value_info("c_int", TensorProto.INT64, [])])
const_model = helper.make_model(const_graph, opset_imports=[helper.make_opsetid("", 17)])
const_model.ir_version = 8
save(const_model, "constants", {"x": randn(2, 3)})

# ---- several unsupported ops ----------------------------------------------------------------------------------
unsup_graph = helper.make_graph(
    [
        helper.make_node("Relu", ["x"], ["a"], name="ok_relu"),
        helper.make_node("NotARealOp", ["a"], ["b"], name="mystery1"),
        helper.make_node("Frobnicate", ["b"], ["c"], domain="com.example", name="frob"),
        helper.make_node("Teleport", ["c"], ["y"]),  # unnamed: reported as Teleport_3
    ],
    "unsupported", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
unsup_model = helper.make_model(unsup_graph, opset_imports=[helper.make_opsetid("", 17),
                                                            helper.make_opsetid("com.example", 3)])
unsup_model.ir_version = 8
save(unsup_model, "unsupported", check=False)

# ---- If with subgraphs (GRAPH attributes) ---------------------------------------------------------------------
then_g = helper.make_graph([helper.make_node("Relu", ["x"], ["t"], name="then_relu")], "then_branch", [],
                           [helper.make_tensor_value_info("t", TensorProto.FLOAT, [3])])
else_g = helper.make_graph([helper.make_node("Neg", ["x"], ["e"], name="else_neg")], "else_branch", [],
                           [helper.make_tensor_value_info("e", TensorProto.FLOAT, [3])])
if_graph = helper.make_graph(
    [helper.make_node("If", ["cond"], ["y"], name="if1", then_branch=then_g, else_branch=else_g)], "if_model",
    [helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
     helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])])
if_model = helper.make_model(if_graph, opset_imports=[helper.make_opsetid("", 17)])
if_model.ir_version = 8
save(if_model, "if_subgraph", {"cond": np.array(False), "x": randn(3)})

# ---- tensor files: .npy of every supported dtype, and TensorProto .pb files -----------------------------------
npy_dir = os.path.join(out, "npy")
os.makedirs(npy_dir, exist_ok=True)
base = np.array([[0, 1, -2], [3, -4, 5]])
for code, dt in [("f4", np.float32), ("f2", np.float16), ("f8", np.float64), ("i8", np.int64), ("i4", np.int32),
                 ("i2", np.int16), ("i1", np.int8)]:
    np.save(os.path.join(npy_dir, code + ".npy"), base.astype(dt))
np.save(os.path.join(npy_dir, "u1.npy"), np.array([[0, 1, 2], [3, 4, 255]], dtype=np.uint8))
np.save(os.path.join(npy_dir, "b1.npy"), np.array([[True, False, True], [False, False, True]]))
np.save(os.path.join(npy_dir, "scalar.npy"), np.array(3.5, dtype=np.float32))
np.save(os.path.join(npy_dir, "empty.npy"), np.zeros((0, 4), dtype=np.float32))
np.save(os.path.join(npy_dir, "fortran.npy"), np.asfortranarray(base.astype(np.float32)))
np.save(os.path.join(npy_dir, "bigendian.npy"), base.astype(">f4"))
np.save(os.path.join(npy_dir, "complex.npy"), base.astype(np.complex64))
for ver in ((2, 0), (3, 0)):
    with open(os.path.join(npy_dir, "v%d.npy" % ver[0]), "wb") as f:
        np.lib.format.write_array(f, base.astype(np.float32), version=ver)

pb_dir = os.path.join(out, "pb")
os.makedirs(pb_dir, exist_ok=True)
with open(os.path.join(pb_dir, "raw_f32.pb"), "wb") as f:
    f.write(numpy_helper.from_array(base.astype(np.float32), "raw_f32").SerializeToString())
for t in typed_inits:
    with open(os.path.join(pb_dir, "typed_%s.pb" % t.name), "wb") as f:
        f.write(t.SerializeToString())
print("wrote test models to", out)
