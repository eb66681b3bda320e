"""Writes the small ONNX seed models for fuzz_onnx_importer into fuzz/corpus/onnx/ (or argv[1]).

Run with the project venv: .venv/bin/python fuzz/gen_onnx_seeds.py
Deterministic (fixed numpy seed), each model well under 64 KB.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "onnx")
rng = np.random.default_rng(1)


def save(name, graph, opset=17, functions=None, ir_version=8):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)] +
                              ([helper.make_opsetid("local", 1)] if functions else []),
                              functions=functions or [], producer_name="kiln-fuzz-seeds")
    model.ir_version = ir_version
    onnx.checker.check_model(model)
    data = model.SerializeToString()
    assert len(data) < 64 * 1024, (name, len(data))
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def init(name, shape, dtype=np.float32):
    return numpy_helper.from_array(rng.standard_normal(shape).astype(dtype), name)


os.makedirs(OUT, exist_ok=True)

# 1. MLP: Gemm + Relu + Add with symbolic batch.
save("mlp.onnx", helper.make_graph(
    [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1", transB=1),
     helper.make_node("Relu", ["h"], ["r"], name="relu"),
     helper.make_node("MatMul", ["r", "w2"], ["m"], name="fc2"),
     helper.make_node("Add", ["m", "b2"], ["y"], name="bias")],
    "mlp",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
    [init("w1", (16, 8)), init("b1", (16,)), init("w2", (16, 4)), init("b2", (4,))]))

# 2. Conv + BatchNorm + MaxPool + Flatten (NCHW), fp16 weights cast.
save("conv.onnx", helper.make_graph(
    [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                      strides=[1, 1]),
     helper.make_node("BatchNormalization", ["c", "s", "bb", "m", "v"], ["n"], name="bn", epsilon=1e-5),
     helper.make_node("MaxPool", ["n"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
     helper.make_node("Flatten", ["p"], ["f"], name="flat", axis=1),
     helper.make_node("Cast", ["f"], ["y"], name="cast", to=TensorProto.FLOAT16)],
    "conv",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT16, ["N", 64])],
    [init("w", (4, 3, 3, 3)), init("b", (4,)), init("s", (4,)), init("bb", (4,)), init("m", (4,)),
     numpy_helper.from_array(np.abs(rng.standard_normal(4)).astype(np.float32) + 0.5, "v")]))

# 3. If with subgraphs, a Constant node, int64 / bool tensors.
then_g = helper.make_graph(
    [helper.make_node("Constant", [], ["t"], name="k", value=numpy_helper.from_array(np.array([1, 2], np.int64)))],
    "then", [], [helper.make_tensor_value_info("t", TensorProto.INT64, [2])])
else_g = helper.make_graph(
    [helper.make_node("Identity", ["e0"], ["e"], name="id")],
    "else", [], [helper.make_tensor_value_info("e", TensorProto.INT64, [2])],
    [numpy_helper.from_array(np.array([3, 4], np.int64), "e0")])
save("if.onnx", helper.make_graph(
    [helper.make_node("ReduceSum", ["x"], ["s"], name="sum", keepdims=0),
     helper.make_node("Greater", ["s", "zero"], ["c"], name="gt"),
     helper.make_node("If", ["c"], ["y"], name="if", then_branch=then_g, else_branch=else_g)],
    "if",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
    [helper.make_tensor_value_info("y", TensorProto.INT64, [2])],
    [numpy_helper.from_array(np.array(0.0, np.float32), "zero")]))

# 4. Shape ops: Shape / Gather / Unsqueeze / Concat / Reshape / Transpose / Softmax (opset 18 axes input).
save("shape.onnx", helper.make_graph(
    [helper.make_node("Shape", ["x"], ["sh"], name="shape"),
     helper.make_node("Gather", ["sh", "i0"], ["b"], name="gather", axis=0),
     helper.make_node("Unsqueeze", ["b", "ax0"], ["bu"], name="unsq"),
     helper.make_node("Concat", ["bu", "m1"], ["ns"], name="concat", axis=0),
     helper.make_node("Reshape", ["x", "ns"], ["r"], name="reshape"),
     helper.make_node("Transpose", ["r"], ["t"], name="tr", perm=[1, 0]),
     helper.make_node("Softmax", ["t"], ["y"], name="softmax", axis=-1)],
    "shape",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 2, 3])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [6, "b"])],
    [numpy_helper.from_array(np.array(0, np.int64), "i0"),
     numpy_helper.from_array(np.array([0], np.int64), "ax0"),
     numpy_helper.from_array(np.array([-1], np.int64), "m1")]), opset=18)

# 5. A model-local function (inlined by the importer).
fn = helper.make_function("local", "Swish", ["a"], ["o"],
                          [helper.make_node("Sigmoid", ["a"], ["s"]), helper.make_node("Mul", ["a", "s"], ["o"])],
                          [helper.make_opsetid("", 17)])
save("function.onnx", helper.make_graph(
    [helper.make_node("Swish", ["x"], ["y"], name="swish", domain="local")],
    "function",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])]), functions=[fn])

for f in sorted(os.listdir(OUT)):
    print(f, os.path.getsize(os.path.join(OUT, f)))
