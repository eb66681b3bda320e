"""kiln CPU latency as a ratio against ONNX Runtime (CPU), measured in the same run on the same host.

    .venv/bin/python bench/cpu_vs_ort.py [--kiln build/tools/kiln] [--iterations 50] [--threads 1] [--markdown]

For each model (the bundled demo CNN at batch 1 and 8 by default, or --model PATH --shape name:1x3x64x64),
runs `kiln bench --json` and ONNX Runtime with the same input shapes, warm-up and iteration count, and prints
median latencies and the ratio kiln / ORT (lower is better; < 1 means kiln is faster).
ORT runs with intra_op_num_threads = --threads (default 1, as kiln's CPU executor is single-threaded today).
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import time

import numpy as np
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_shape(s):
    name, dims = s.split(":")
    return name, [int(d) for d in dims.split("x")]


def ort_median_ms(model, feeds, warmup, iters, threads):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    for _ in range(warmup):
        sess.run(None, feeds)
    t = []
    for _ in range(iters):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        t.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(t)


def kiln_median_ms(kiln, model, shape_arg, warmup, iters):
    out = subprocess.run([kiln, "bench", model, "--shapes", shape_arg, "--warmup", str(warmup),
                          "--iterations", str(iters), "--json"], check=True, capture_output=True, text=True).stdout
    return json.loads(out)["latency_ms"]["p50"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", default=os.path.join(ROOT, "build", "tools", "kiln"))
    ap.add_argument("--model", action="append")
    ap.add_argument("--shape", action="append", help="name:AxBxC, one per --model")
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    demo = os.path.join(ROOT, "models", "kiln_demo_cnn.onnx")
    cases = list(zip(a.model, a.shape)) if a.model else [(demo, "input:1x3x64x64"), (demo, "input:8x3x64x64")]
    rows = []
    rng = np.random.default_rng(0)
    for model, shape_arg in cases:
        name, dims = parse_shape(shape_arg)
        feeds = {name: rng.uniform(-1, 1, dims).astype(np.float32)}
        k = kiln_median_ms(a.kiln, model, shape_arg, a.warmup, a.iterations)
        o = ort_median_ms(model, feeds, a.warmup, a.iterations, a.threads)
        rows.append((os.path.basename(model), shape_arg, k, o, k / o))
    host = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, ORT {ort.__version__}, " \
           f"ORT threads {a.threads}, median of {a.iterations}"
    print(f"# kiln CPU vs ONNX Runtime ({time.strftime('%Y-%m-%d')}; {host})")
    print("| model | input | kiln p50 ms | ORT p50 ms | kiln / ORT |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]:.2f} | {r[3]:.2f} | {r[4]:.2f}x |")


if __name__ == "__main__":
    main()
