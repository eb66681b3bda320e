"""Generates the models and test data of the kiln CLI tests (tests/unit/test_cli.cpp) into argv[1]/cli.
Kept apart from gen_test_models.py so the two files are edited independently; registered by tests/cli.cmake."""
import os
import sys


def gen_cli_models(out):
    """Models and test-data folders for the CLI tests, into out/cli:
      mlp.onnx       x float32[batch,4] (dynamic), y float32[1,4] (static) ->
                     "out:0" = Relu((x + y) * W), "diff" = x - y     (a name that needs sanitizing)
      mlp_data/      input_0.pb, input_1.pb (unnamed: bound by position), output_0.pb, output_1.pb, batch 2
      mlp_named/     the same inputs, stored in reverse order with their names (bound by name)
      mlp_wrong/     output_0.pb off by 0.01 in one element, output_1.pb right
      mlp_x.npy, mlp_y.npy   the inputs as .npy
      int.onnx       ids int64[batch,5] -> ids_out = ids + C (exact comparison); int_data/
      garbage.onnx   not a protobuf
    """
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper, save

    d = os.path.join(out, "cli")
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(20240601)

    def write_pb(folder, fname, arr, name=""):
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, fname), "wb") as f:
            f.write(numpy_helper.from_array(arr, name).SerializeToString())

    w = rng.uniform(-2, 2, (4,)).astype(np.float32)
    nodes = [
        helper.make_node("Add", ["x", "y"], ["s"], name="add"),
        helper.make_node("Mul", ["s", "W"], ["m"], name="scale"),
        helper.make_node("Relu", ["m"], ["out:0"], name="relu"),
        helper.make_node("Sub", ["x", "y"], ["diff"], name="sub"),
    ]
    graph = helper.make_graph(
        nodes, "cli_mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4]),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("out:0", TensorProto.FLOAT, ["batch", 4]),
         helper.make_tensor_value_info("diff", TensorProto.FLOAT, ["batch", 4])],
        [numpy_helper.from_array(w, "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="kiln-cli-tests")
    model.ir_version = 8
    save(model, os.path.join(d, "mlp.onnx"))

    x = rng.uniform(-1, 1, (2, 4)).astype(np.float32)
    y = rng.uniform(-1, 1, (1, 4)).astype(np.float32)
    out0 = np.maximum((x + y) * w, np.float32(0)).astype(np.float32)
    out1 = (x - y).astype(np.float32)
    np.save(os.path.join(d, "mlp_x.npy"), x)
    np.save(os.path.join(d, "mlp_y.npy"), y)
    for folder, named in (("mlp_data", False), ("mlp_named", True)):
        f = os.path.join(d, folder)
        if named:
            write_pb(f, "input_0.pb", y, "y")
            write_pb(f, "input_1.pb", x, "x")
        else:
            write_pb(f, "input_0.pb", x)
            write_pb(f, "input_1.pb", y)
        write_pb(f, "output_0.pb", out0, "out:0")
        write_pb(f, "output_1.pb", out1, "diff")
    wrong = out0.copy()
    wrong.flat[3] += np.float32(0.01)
    write_pb(os.path.join(d, "mlp_wrong"), "output_0.pb", wrong, "out:0")
    write_pb(os.path.join(d, "mlp_wrong"), "output_1.pb", out1, "diff")

    c = np.arange(5, dtype=np.int64) * 100
    graph = helper.make_graph(
        [helper.make_node("Add", ["ids", "C"], ["ids_out"], name="add_c")], "cli_int",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", 5])],
        [helper.make_tensor_value_info("ids_out", TensorProto.INT64, ["batch", 5])],
        [numpy_helper.from_array(c, "C")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="kiln-cli-tests")
    model.ir_version = 8
    save(model, os.path.join(d, "int.onnx"))
    ids = rng.integers(0, 1000, (3, 5), dtype=np.int64)
    write_pb(os.path.join(d, "int_data"), "input_0.pb", ids, "ids")
    write_pb(os.path.join(d, "int_data"), "output_0.pb", ids + c, "ids_out")

    with open(os.path.join(d, "garbage.onnx"), "wb") as f:
        f.write(b"this is not an onnx model\n" * 4)


if __name__ == "__main__":
    gen_cli_models(sys.argv[1])
