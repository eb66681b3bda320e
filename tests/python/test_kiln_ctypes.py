"""python/kiln_ctypes.py on a CPU engine (ctest python_ctypes; KILN_LIB points at the built libkiln.so).

The demo CNN is built through the wrapper, run on numpy arrays and compared with ONNX Runtime; save / load, output
shapes, stats and the errors (KilnError with the C API's code and message) are checked. No GPU, no torch.
"""
import os
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import kiln_ctypes as kc  # noqa: E402

ROOT = os.environ.get("KILN_SOURCE_DIR") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
DEMO = os.path.join(ROOT, "models", "kiln_demo_cnn.onnx")
PROFILE = [{"input": ((1, 3, 64, 64), (2, 3, 64, 64), (4, 3, 64, 64))}]


class FakeTorchTensor:
    """Duck-typed stand-in for a torch tensor (DeviceTensor.from_torch must not need torch)."""

    dtype = "torch.float16"
    shape = (2, 3)

    def is_contiguous(self):
        return True

    def data_ptr(self):
        return 0x1000

    def numel(self):
        return 6

    def element_size(self):
        return 2


class KilnCtypesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        kc.set_log_level(4)
        cls.engine = kc.Engine.build(DEMO, target="cpu", precision="fp32", profiles=PROFILE)
        cls.ctx = cls.engine.create_context()
        rng = np.random.default_rng(0)
        cls.x = rng.uniform(-1, 1, (3, 3, 64, 64)).astype(np.float32)

    def test_library(self):
        self.assertRegex(kc.version(), r"^\d+\.\d+\.\d+")
        self.assertTrue(kc.build_id())
        self.assertGreaterEqual(kc.cuda_device_count(), 0)

    def test_engine_info(self):
        e = self.engine
        self.assertEqual(e.inputs, [kc.TensorDesc("input", "float32", (-1, 3, 64, 64), False)])
        self.assertEqual([o.name for o in e.outputs], ["logits", "probs"])
        self.assertEqual(e.outputs[0].shape, (-1, 10))
        self.assertEqual(e.target, "cpu")
        self.assertEqual(e.precision, "fp32")
        self.assertEqual(e.num_profiles, 1)
        bs = e.build_stats()
        self.assertGreater(bs["build_seconds"], 0)
        self.assertGreater(bs["nodes"], 0)
        # The timing fields of kiln::BuildStats, through the C struct.
        self.assertGreaterEqual(bs["tactic_candidates_timed"], 2 * bs["tactics_timed"])
        self.assertGreater(bs["total_seconds"], 0)
        self.assertLessEqual(bs["tactics_seconds"], bs["total_seconds"])
        self.assertEqual(bs["profiles"], 1)
        self.assertEqual(bs["per_profile_tactic_nodes"], 0)
        self.assertIsInstance(bs["timing_cache"], str)
        self.assertGreater(e.memory_info()["weights_bytes"], 0)

    def test_run_matches_onnxruntime(self):
        import onnxruntime as ort
        out = self.ctx.run({"input": self.x})
        self.assertEqual(set(out), {"logits", "probs"})
        self.assertEqual(out["logits"].shape, (3, 10))
        self.assertEqual(out["logits"].dtype, np.float32)
        ref = ort.InferenceSession(DEMO, providers=["CPUExecutionProvider"]).run(None, {"input": self.x})
        np.testing.assert_allclose(out["logits"], ref[0], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(out["probs"], ref[1], rtol=1e-4, atol=1e-5)
        self.assertGreater(float(np.std(out["logits"])), 1e-2)
        self.assertEqual(self.ctx.last_profile, 0)
        st = self.ctx.stats()
        self.assertEqual(st["device"], "cpu")
        self.assertEqual(st["cuda_graph_replays"], 0)

    def test_outputs_are_copies(self):
        a = self.ctx.run({"input": self.x})["logits"]
        b = self.ctx.run({"input": self.x[:1]})["logits"]
        self.assertEqual(b.shape, (1, 10))
        np.testing.assert_array_equal(a[:1], b)  # a was not overwritten by the second run
        self.assertEqual(a.shape, (3, 10))

    def test_output_shapes(self):
        s = self.ctx.output_shapes({"input": (4, 3, 64, 64)})
        self.assertEqual(s, {"logits": ("float32", (4, 10)), "probs": ("float32", (4, 10))})

    def test_save_load_is_bit_identical(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "demo.kiln")
            self.engine.save(path)
            e2 = kc.Engine.load(path)
            self.assertEqual(e2.build_stats()["nodes"], 0)  # a loaded plan has no build stats
            c2 = e2.create_context()
            del e2  # the context keeps the engine alive
            a = self.ctx.run({"input": self.x})
            b = c2.run({"input": self.x})
            for k in a:
                np.testing.assert_array_equal(a[k], b[k])

    def test_errors_name_the_culprit(self):
        def err(fn, code, *words):
            with self.assertRaises(kc.KilnError) as cm:
                fn()
            self.assertEqual(cm.exception.code, code, str(cm.exception))
            for w in words:
                self.assertIn(w, cm.exception.message)

        err(lambda: self.ctx.run({"image": self.x}), "InvalidArgument", "'image'")
        err(lambda: self.ctx.run({"input": self.x.astype(np.float64)}), "InvalidArgument", "'input'", "float64")
        err(lambda: self.ctx.run({"input": self.x[0]}), "InvalidArgument", "'input'", "rank 3")
        big = np.zeros((8, 3, 64, 64), np.float32)
        err(lambda: self.ctx.run({"input": big}), "ShapeOutOfProfile", "[8,3,64,64]")
        err(lambda: kc.Engine.build("/nonexistent/m.onnx"), "Io", "/nonexistent/m.onnx")
        err(lambda: kc.Engine.build(DEMO, target="tpu"), "InvalidArgument", "'tpu'")
        err(lambda: kc.Engine.build(DEMO, precision="fp8"), "InvalidArgument", "'fp8'")
        err(lambda: kc.Engine.build(DEMO, profiles=[{"nope": ((1,), (1,), (1,))}]), "InvalidArgument", "nope")
        dev = kc.DeviceTensor(0, "float32", (2, 10), 80)
        err(lambda: self.ctx.enqueue({"input": dev}, {"logits": dev}), "InvalidState", "enqueue", "cpu")
        # The context still works afterwards.
        self.assertEqual(self.ctx.run({"input": self.x})["probs"].shape, (3, 10))

    def test_dtype_codes_and_device_tensors(self):
        self.assertEqual(kc.dtype_code("float16"), 1)
        self.assertEqual(kc.dtype_code(np.float16), 1)
        self.assertEqual(kc.dtype_code(np.dtype(np.int64)), 4)
        self.assertEqual(kc.dtype_code("torch.float16"), 1)
        self.assertEqual(kc.dtype_code("torch.int64"), 4)
        self.assertEqual(kc.dtype_code("torch.bool"), 9)
        with self.assertRaises(ValueError):
            kc.dtype_code("complex64")
        t = kc.DeviceTensor.from_torch(FakeTorchTensor())
        self.assertEqual(t, kc.DeviceTensor(0x1000, 1, (2, 3), 12))

    def test_missing_library_is_a_clear_error(self):
        old = os.environ.get("KILN_LIB")
        saved = kc._lib
        try:
            os.environ["KILN_LIB"] = "/nonexistent/libkiln.so"
            kc._lib = None
            with self.assertRaises(OSError) as cm:
                kc.lib()
            self.assertIn("KILN_LIB", str(cm.exception))
        finally:
            kc._lib = saved
            if old is None:
                os.environ.pop("KILN_LIB", None)
            else:
                os.environ["KILN_LIB"] = old


if __name__ == "__main__":
    unittest.main()
