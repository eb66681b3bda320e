"""Makes kiln's bundled demo model: a small ResNet-style CNN (Conv, BatchNormalization, Relu, MaxPool, Add,
GlobalAveragePool, Shape/Gather/Concat/Reshape flatten as PyTorch exports it, Gemm, Softmax), opset 17,
dynamic batch, seeded random weights scaled so activations stay O(1).

    .venv/bin/python scripts/make_demo_model.py models/kiln_demo_cnn.onnx [--blocks 2,2] [--width 16] [--seed 0]
"""
import argparse

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class Builder:
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.n = [], [], 0

    def name(self, p):
        self.n += 1
        return f"{p}_{self.n}"

    def const(self, p, arr):
        n = self.name(p)
        self.inits.append(numpy_helper.from_array(arr, n))
        return n

    def node(self, op, ins, attrs=None, p=None, nout=1):
        nm = self.name(p or op.lower())
        outs = [f"{nm}_out{i}" if nout > 1 else f"{nm}_out" for i in range(nout)]
        self.nodes.append(helper.make_node(op, ins, outs, name=nm, **(attrs or {})))
        return outs[0] if nout == 1 else outs

    def conv_bn(self, x, cin, cout, k, stride, relu=True):
        fan_in = cin * k * k
        w = (self.rng.standard_normal((cout, cin, k, k)) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        y = self.node("Conv", [x, self.const("w", w)],
                      dict(kernel_shape=[k, k], strides=[stride, stride], pads=[k // 2] * 4), "conv")
        g = self.rng.uniform(0.5, 1.5, cout).astype(np.float32)
        b = self.rng.uniform(-0.2, 0.2, cout).astype(np.float32)
        m = self.rng.uniform(-0.1, 0.1, cout).astype(np.float32)
        v = self.rng.uniform(0.5, 1.5, cout).astype(np.float32)
        y = self.node("BatchNormalization", [y, self.const("bn_scale", g), self.const("bn_bias", b),
                                             self.const("bn_mean", m), self.const("bn_var", v)],
                      dict(epsilon=1e-5), "bn")
        return self.node("Relu", [y]) if relu else y

    def block(self, x, cin, cout, stride):
        y = self.conv_bn(x, cin, cout, 3, stride)
        y = self.conv_bn(y, cout, cout, 3, 1, relu=False)
        sc = x if (stride == 1 and cin == cout) else self.conv_bn(x, cin, cout, 1, stride, relu=False)
        return self.node("Relu", [self.node("Add", [y, sc])])


def make(blocks, width, seed, classes=10, size=64):
    b = Builder(seed)
    x = b.conv_bn("input", 3, width, 3, 1)
    x = b.node("MaxPool", [x], dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]))
    cin = width
    for stage, nb in enumerate(blocks):
        cout = width * (2 ** stage)
        for i in range(nb):
            x = b.block(x, cin, cout, 2 if (i == 0 and stage > 0) else 1)
            cin = cout
    x = b.node("GlobalAveragePool", [x])
    # Flatten as PyTorch's x.view(x.size(0), -1) exports it: Shape -> Gather -> Unsqueeze -> Concat -> Reshape.
    shp = b.node("Shape", [x])
    n = b.node("Gather", [shp, b.const("idx0", np.array(0, dtype=np.int64))], dict(axis=0))
    n = b.node("Unsqueeze", [n, b.const("axes0", np.array([0], dtype=np.int64))])
    newshape = b.node("Concat", [n, b.const("minus1", np.array([-1], dtype=np.int64))], dict(axis=0))
    x = b.node("Reshape", [x, newshape])
    w = (b.rng.standard_normal((classes, cin)) * np.sqrt(1.0 / cin) * 0.1).astype(np.float32)
    bias = b.rng.uniform(-0.5, 0.5, classes).astype(np.float32)
    x = b.node("Gemm", [x, b.const("fc_w", w), b.const("fc_b", bias)], dict(transB=1), "fc")
    logits = x
    b.nodes.append(helper.make_node("Identity", [logits], ["logits"], name="logits_out"))
    b.nodes.append(helper.make_node("Softmax", [logits], ["probs"], name="softmax", axis=1))
    graph = helper.make_graph(
        b.nodes, "kiln_demo_cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes]),
         helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", classes])],
        b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="kiln-scripts",
                              producer_version="1")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--blocks", default="2,2")
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=int, default=64)
    a = ap.parse_args()
    m = make([int(v) for v in a.blocks.split(",")], a.width, a.seed, size=a.size)
    onnx.save(m, a.out)
    print(f"wrote {a.out}: {len(m.graph.node)} nodes, "
          f"{sum(np.prod(t.dims) for t in m.graph.initializer)} parameters")
