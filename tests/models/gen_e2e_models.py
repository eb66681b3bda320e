"""End-to-end test models and ONNX Runtime reference outputs, into argv[1]:
  demo/        the bundled model with ORT outputs for seeded inputs at batch 1 and 3
  resnet/      a ResNet-18-style net (4 stages x 2 blocks, width 8, 32x32) with ORT outputs at batch 2
  bn/          Conv -> BatchNormalization -> Relu, for the BN-folding pass
Reference inputs/outputs are .npy; also written in the test-data layout (input_0.pb, output_N.pb) for the CLI.
"""
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts"))
import make_demo_model  # noqa: E402

out = sys.argv[1]


def save_case(folder, model_path, feeds, tag):
    sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    outs = sess.run(None, feeds)
    d = os.path.join(folder, tag)
    os.makedirs(d, exist_ok=True)
    for i, (name, arr) in enumerate(feeds.items()):
        np.save(os.path.join(d, f"{name}.npy"), arr)
        with open(os.path.join(d, f"input_{i}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(arr, name).SerializeToString())
    for i, (o, arr) in enumerate(zip(sess.get_outputs(), outs)):
        np.save(os.path.join(d, f"{o.name}.npy"), arr)
        with open(os.path.join(d, f"output_{i}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(arr, o.name).SerializeToString())


rng = np.random.default_rng(1234)

d = os.path.join(out, "demo")
os.makedirs(d, exist_ok=True)
m = os.path.join(os.path.dirname(__file__), "..", "..", "models", "kiln_demo_cnn.onnx")
for b in (1, 3):
    save_case(d, m, {"input": rng.uniform(-1, 1, (b, 3, 64, 64)).astype(np.float32)}, f"batch{b}")

d = os.path.join(out, "resnet")
os.makedirs(d, exist_ok=True)
m = os.path.join(d, "model.onnx")
onnx.save(make_demo_model.make([2, 2, 2, 2], 8, 7, size=32), m)
save_case(d, m, {"input": rng.uniform(-1, 1, (2, 3, 32, 32)).astype(np.float32)}, "batch2")

d = os.path.join(out, "bn")
os.makedirs(d, exist_ok=True)
w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
nodes = [
    helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
    helper.make_node("BatchNormalization", ["c", "s", "bb", "m", "v"], ["n"], name="bn", epsilon=1e-3),
    helper.make_node("Relu", ["n"], ["y"], name="relu"),
    helper.make_node("Mul", ["y", "unused_k"], ["dead"], name="dead_mul"),
]
inits = [numpy_helper.from_array(a, n) for n, a in [
    ("w", w), ("b", rng.standard_normal(4).astype(np.float32)),
    ("s", rng.uniform(0.5, 2, 4).astype(np.float32)), ("bb", rng.standard_normal(4).astype(np.float32)),
    ("m", rng.standard_normal(4).astype(np.float32)), ("v", rng.uniform(0.5, 2, 4).astype(np.float32)),
    ("unused_k", np.array([2.0], np.float32))]]
g = helper.make_graph(nodes, "bn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 8, 8])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4, 8, 8])], inits)
model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
model.ir_version = 8
m = os.path.join(d, "model.onnx")
onnx.save(model, m)
save_case(d, m, {"x": rng.uniform(-1, 1, (2, 3, 8, 8)).astype(np.float32)}, "batch2")
# IR >= 4: initializers listed among the graph inputs are overridable inputs with the initializer as default.
d = os.path.join(out, "defaults")
os.makedirs(d, exist_ok=True)
nodes = [helper.make_node("Mul", ["x", "w"], ["xw"], name="mul"), helper.make_node("Add", ["xw", "b"], ["y"], name="add")]
w0 = rng.uniform(0.5, 2, (1, 4)).astype(np.float32)
b0 = rng.uniform(-1, 1, (4,)).astype(np.float32)
g = helper.make_graph(nodes, "defaults",
                      [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4]),
                       helper.make_tensor_value_info("w", TensorProto.FLOAT, [1, 4]),
                       helper.make_tensor_value_info("b", TensorProto.FLOAT, [4])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4])],
                      [numpy_helper.from_array(w0, "w"), numpy_helper.from_array(b0, "b")])
model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
model.ir_version = 8
m = os.path.join(d, "model.onnx")
onnx.save(model, m)
x = rng.uniform(-1, 1, (3, 4)).astype(np.float32)
save_case(d, m, {"x": x}, "default")
save_case(d, m, {"x": x, "w": rng.uniform(-3, -1, (1, 4)).astype(np.float32)}, "override")
print("e2e models written to", out)
