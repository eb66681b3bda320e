"""bench/gpu_vs_torch.py's parent side without torch or a GPU (ctest torchbench_table): the markdown table from
synthetic results — speedups, the output check, failed rows, the issue's targets — and --merge of two runs."""
import json
import os
import sys
import tempfile
import unittest

BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench")
sys.path.insert(0, BENCH)
import gpu_vs_torch as g  # noqa: E402
import torchbench_table as t  # noqa: E402


def row(c, b, ms, **kw):
    r = {"contestant": c, "batch": b, "status": "ok", "median_ms": ms, "p10_ms": ms * 0.9, "p90_ms": ms * 1.1,
         "n": 100, "samples_per_s": b * 1e3 / ms, "setup_s": 1.0, "rel_l2_eager": 3e-3, "rel_l2_fp32": 4e-3,
         "check": "pass" if c == "kiln" else "", "notes": ""}
    r.update(kw)
    return r


def result(model, rows, **kw):
    r = {"model": model, "rows": rows, "errors": [], "onnx": {"exporter": "dynamo", "opset": 18, "nodes": 100,
                                                              "top_ops": [["Conv", 53]], "export_s": 10.0},
         "env": {"card": "NVIDIA H100 80GB HBM3", "torch": "2.11.0+cu130", "cuda": "13.0", "cudnn": 91400},
         "kiln": {"version": "0.1.0", "build_id": "x", "lib": "libkiln.so", "profiles": "one per batch (2)",
                  "build_cold": {"wall_s": 20.0, "tactics_timed": 40, "timing_cache_hits": 0,
                                 "timing_cache_misses": 60, "nodes": 60},
                  "build_warm": {"wall_s": 2.0, "tactics_timed": 0, "timing_cache_hits": 60,
                                 "timing_cache_misses": 0},
                  "context_stats": {"device": "cuda:0", "weight_bytes": 2**20, "arena_bytes": 2**21,
                                    "cuda_graph_captures": 2, "cuda_graph_replays": 240, "cuda_graph_fallbacks": 0}},
         "torch_weight_bytes": 50 * 2**20}
    r.update(kw)
    return r


class TableTest(unittest.TestCase):
    def setUp(self):
        self.a = g.parse_args(["--models", "resnet50,bert_base"])
        self.results = [
            result("resnet50", [row("kiln", 1, 1.0), row("eager", 1, 3.0), row("eager_graph", 1, 1.2),
                                row("kiln", 128, 20.0), row("eager", 128, 20.5),
                                {"contestant": "compile", "batch": 1, "status": "failed: RuntimeError: no triton"}]),
            result("bert_base", [row("kiln", 1, 1.0, check="FAIL", rel_l2_eager=0.5), row("eager_graph", 1, 0.9),
                                 row("kiln", 64, 10.0), row("eager", 64, 12.0)], failed="timed out after 500 s"),
        ]
        self.md = t.markdown(self.a, self.results, self.results[0]["env"], "2026-11-26")

    def test_header_names_card_and_versions(self):
        self.assertIn("# kiln vs PyTorch — NVIDIA H100 80GB HBM3, 2026-11-26", self.md)
        self.assertIn("torch 2.11.0+cu130", self.md)
        self.assertIn("dynamo exporter", self.md)
        self.assertIn("one per batch (2)", self.md)

    def test_rows(self):
        lines = self.md.splitlines()
        eager1 = next(x for x in lines if x.startswith("| 1 | torch eager |"))
        self.assertIn("| 3.00x |", eager1)  # 3.0 ms against kiln's 1.0 ms
        self.assertIn("| 1 | torch.compile | failed: RuntimeError: no triton |", self.md)
        kiln1 = [x for x in lines if x.startswith("| 1 | kiln FP16")]
        self.assertEqual(len(kiln1), 2)
        self.assertTrue(any("| FAIL |" in x for x in kiln1))
        self.assertIn("the model's process failed: timed out after 500 s", self.md)
        self.assertIn("warm cache 2.0 s (0 tactics timed, 60 cache hits, 0 misses)", self.md)

    def test_targets(self):
        tg = self.md[self.md.index("## Targets"):].splitlines()
        res_b1 = next(x for x in tg if x.startswith("| ResNet-50 | 1 |"))
        self.assertIn("+16.7 %", res_b1)  # 1 - 1.0 / 1.2
        self.assertTrue(res_b1.endswith("| met |"))
        res_b128 = next(x for x in tg if x.startswith("| ResNet-50 | 128 |"))
        self.assertTrue(res_b128.endswith("| not met |"), res_b128)  # 2.4 % < 5 %
        bert_b1 = next(x for x in tg if x.startswith("| BERT-base (seq 128) | 1 |"))
        self.assertTrue(bert_b1.endswith("| not met |"), bert_b1)  # slower than the CUDA graph
        bert_b64 = next(x for x in tg if x.startswith("| BERT-base (seq 128) | 64 |"))
        self.assertTrue(bert_b64.endswith("| met |"), bert_b64)

    def test_merge_of_two_runs(self):
        with tempfile.TemporaryDirectory() as d:
            paths = []
            for r in self.results:
                p = os.path.join(d, r["model"] + ".json")
                with open(p, "w") as f:
                    json.dump({"date": "2026-11-26", "args": vars(self.a), "results": [r]}, f)
                paths.append(p)
            out = os.path.join(d, "merged.md")
            self.assertEqual(g.main(["--merge"] + paths + ["--out", out]), 0)
            with open(out) as f:
                self.assertEqual(f.read(), self.md)

    def test_card_slug(self):
        self.assertEqual(g.card_slug("NVIDIA H100 80GB HBM3"), "h100")
        self.assertEqual(g.card_slug("NVIDIA H200"), "h200")
        self.assertEqual(g.card_slug("CPU Intel Xeon"), "cpu-dry")


if __name__ == "__main__":
    unittest.main()
