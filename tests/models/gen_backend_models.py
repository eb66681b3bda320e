"""Generates the small models of the EngineBackend tests (tests/unit/test_backend*.cpp) into argv[1]/backend.
Registered by tests/backend.cmake as a fixture; kept apart from the other generators so each is edited alone.

  mlp.onnx      x float32[batch,4] -> y = Relu(x @ W + b) float32[batch,3], p = Softmax(y) float32[batch,3]
  two_in.onnx   tokens float32[batch,seq], mask float32[batch,seq] -> out = Relu(tokens * mask + 0.5)
  ints.onnx     ids int64[batch,5] -> ids_out = ids + C (exact comparison)
  defaults.onnx x float32[batch,4], scale float32[4] (an IR 8 input that is also an initializer: it has a default)
                -> y = x * scale
"""
import os
import sys


def main(out):
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper, save

    d = os.path.join(out, "backend")
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(20240817)

    def model(graph, name):
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="kiln-backend-tests")
        m.ir_version = 8
        save(m, os.path.join(d, name))

    w = rng.uniform(-1, 1, (4, 3)).astype(np.float32)
    b = rng.uniform(-0.5, 0.5, (3,)).astype(np.float32)
    model(helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["xw"], name="matmul"),
         helper.make_node("Add", ["xw", "b"], ["pre"], name="bias"),
         helper.make_node("Relu", ["pre"], ["y"], name="relu"),
         helper.make_node("Softmax", ["y"], ["p"], name="softmax", axis=-1)],
        "backend_mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3]),
         helper.make_tensor_value_info("p", TensorProto.FLOAT, ["batch", 3])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "b")]), "mlp.onnx")

    half = numpy_helper.from_array(np.array(0.5, dtype=np.float32), "half")
    model(helper.make_graph(
        [helper.make_node("Mul", ["tokens", "mask"], ["tm"], name="mul"),
         helper.make_node("Add", ["tm", "half"], ["s"], name="add"),
         helper.make_node("Relu", ["s"], ["out"], name="relu")],
        "backend_two_in",
        [helper.make_tensor_value_info("tokens", TensorProto.FLOAT, ["batch", "seq"]),
         helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["batch", "seq"])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", "seq"])],
        [half]), "two_in.onnx")

    c = numpy_helper.from_array(np.arange(5, dtype=np.int64) * 7 - 3, "C")
    model(helper.make_graph(
        [helper.make_node("Add", ["ids", "C"], ["ids_out"], name="add")],
        "backend_ints",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", 5])],
        [helper.make_tensor_value_info("ids_out", TensorProto.INT64, ["batch", 5])],
        [c]), "ints.onnx")

    defaults_model(d)


def defaults_model(d):
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper, save

    scale = numpy_helper.from_array(np.array([0.5, -1.0, 2.0, 3.0], dtype=np.float32), "scale")
    g = helper.make_graph(
        [helper.make_node("Mul", ["x", "scale"], ["y"], name="mul")],
        "backend_defaults",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4]),
         helper.make_tensor_value_info("scale", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        [scale])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="kiln-backend-tests")
    m.ir_version = 8
    save(m, os.path.join(d, "defaults.onnx"))


if __name__ == "__main__":
    main(sys.argv[1])
