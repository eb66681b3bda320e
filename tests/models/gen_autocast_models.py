"""Autocast test models and ONNX Runtime float32 reference outputs, into argv[1] (KILN_TEST_MODELS/autocast):
  ln_decomposed/       MatMul -> LayerNorm written out (ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul, Add)
                       -> MatMul. The MatMul output reaches ~1e3, so the squares (~1e6) and their sum overflow
                       float16 (max 65504): only a float32 normalization gives the right answer.
  layernorm/           the same with the LayerNormalization op (opset 17).
  softmax/             MatMul -> Softmax -> MatMul; logits reach ~18, so exp() overflows float16 (e^11.1 > 65504).
  softmax_decomposed/  MatMul -> Exp -> ReduceSum -> Div -> MatMul, the same logits.
Each folder: model.onnx and case/ with the input and ORT outputs as .npy and in the test-data layout (input_0.pb,
output_N.pb) for `kiln run --expect`. Seeded; the script asserts that the premise (float16 overflow) holds.

    .venv/bin/python tests/models/gen_autocast_models.py OUT_DIR
"""
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

out = sys.argv[1]
rng = np.random.default_rng(2024)


def save(name, nodes, inits, inputs, outputs, feeds, opset=17):
    graph = helper.make_graph(nodes, name, inputs, outputs,
                              [numpy_helper.from_array(a, n) for n, a in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="kiln-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    d = os.path.join(out, name)
    os.makedirs(os.path.join(d, "case"), exist_ok=True)
    path = os.path.join(d, "model.onnx")
    onnx.save(model, path)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    res = sess.run(None, feeds)
    c = os.path.join(d, "case")
    for i, (n, a) in enumerate(feeds.items()):
        np.save(os.path.join(c, f"{n}.npy"), a)
        with open(os.path.join(c, f"input_{i}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(a, n).SerializeToString())
    for i, (o, a) in enumerate(zip(sess.get_outputs(), res)):
        assert np.isfinite(a).all() and a.std() > 1e-2, (name, o.name)
        np.save(os.path.join(c, f"{o.name}.npy"), a)
        with open(os.path.join(c, f"output_{i}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(a, o.name).SerializeToString())
    return res


def vi(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


# ---- LayerNorm after a MatMul with ~1e3 activations ---------------------------------------------------------------
D, H, O = 32, 64, 16
x = rng.uniform(-1, 1, (2, 8, D)).astype(np.float32)
ln_inits = {
    "w1": (rng.standard_normal((D, H)) * 300).astype(np.float32),
    "b1": rng.uniform(300, 700, H).astype(np.float32),
    "gamma": rng.uniform(0.5, 1.5, H).astype(np.float32),
    "beta": rng.uniform(-0.5, 0.5, H).astype(np.float32),
    "w2": (rng.standard_normal((H, O)) / np.sqrt(H)).astype(np.float32),
}
h = x @ ln_inits["w1"] + ln_inits["b1"]
d = h - h.mean(-1, keepdims=True)
assert 300 < np.abs(h).max() < 60000, np.abs(h).max()  # representable in float16 ...
with np.errstate(over="ignore"):
    assert np.isinf(np.square(d.astype(np.float16))).any()  # ... but its squares are not
head = [helper.make_node("MatMul", ["x", "w1"], ["mm"], name="mm1"),
        helper.make_node("Add", ["mm", "b1"], ["h"], name="bias1")]
tail = [helper.make_node("MatMul", ["normed", "w2"], ["y"], name="mm2")]
outs = [vi("y", [2, 8, O]), vi("normed", [2, 8, H])]

dec = dict(ln_inits, two=np.array(2.0, np.float32), eps=np.array(1e-5, np.float32))
save("ln_decomposed", head + [
    helper.make_node("ReduceMean", ["h"], ["mean"], name="mean", axes=[-1]),
    helper.make_node("Sub", ["h", "mean"], ["d"], name="center"),
    helper.make_node("Pow", ["d", "two"], ["sq"], name="square"),
    helper.make_node("ReduceMean", ["sq"], ["var"], name="variance", axes=[-1]),
    helper.make_node("Add", ["var", "eps"], ["var_eps"], name="add_eps"),
    helper.make_node("Sqrt", ["var_eps"], ["std"], name="std"),
    helper.make_node("Div", ["d", "std"], ["n"], name="normalize"),
    helper.make_node("Mul", ["n", "gamma"], ["scaled"], name="scale"),
    helper.make_node("Add", ["scaled", "beta"], ["normed"], name="shift"),
] + tail, dec, [vi("x", [2, 8, D])], outs, {"x": x})

save("layernorm", head + [
    helper.make_node("LayerNormalization", ["h", "gamma", "beta"], ["normed"], name="layernorm", axis=-1,
                     epsilon=1e-5),
] + tail, ln_inits, [vi("x", [2, 8, D])], outs, {"x": x})

# ---- Softmax after a MatMul whose logits overflow exp() in float16 ------------------------------------------------
D, K, O = 32, 64, 16
xs = rng.uniform(-1, 1, (2, 4, 16, D)).astype(np.float32)
sm_inits = {
    "w1": (rng.standard_normal((D, K)) * 1.3).astype(np.float32),
    "w2": rng.standard_normal((K, O)).astype(np.float32),
}
logits = xs @ sm_inits["w1"]
assert 11.1 < np.abs(logits).max() < 30, np.abs(logits).max()
with np.errstate(over="ignore"):
    assert np.isinf(np.exp(logits.astype(np.float16))).any()
mm = [helper.make_node("MatMul", ["x", "w1"], ["logits"], name="mm1")]
tail = [helper.make_node("MatMul", ["probs", "w2"], ["y"], name="mm2")]
outs = [vi("y", [2, 4, 16, O]), vi("probs", [2, 4, 16, K])]
save("softmax", mm + [helper.make_node("Softmax", ["logits"], ["probs"], name="softmax", axis=-1)] + tail,
     sm_inits, [vi("x", [2, 4, 16, D])], outs, {"x": xs})
save("softmax_decomposed", mm + [
    helper.make_node("Exp", ["logits"], ["e"], name="exp"),
    helper.make_node("ReduceSum", ["e", "axis"], ["s"], name="sum", keepdims=1),
    helper.make_node("Div", ["e", "s"], ["probs"], name="normalize"),
] + tail, dict(sm_inits, axis=np.array([-1], np.int64)), [vi("x", [2, 4, 16, D])], outs, {"x": xs})
print("autocast models written to", out)
