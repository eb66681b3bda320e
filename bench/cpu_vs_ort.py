"""kiln CPU latency against ONNX Runtime (CPU), measured in the same run on the same host, with the same threads.

    .venv/bin/python bench/cpu_vs_ort.py [--model PATH ...] [--batches 1,8] [--threads 1,N]
                                         [--torch-python /work/torchenv/bin/python] [--rounds 3] [--iterations 20]
                                         [--out bench/results/cpu-vs-ort-DATE.md | --no-write]

Models: every --model given; without one, the bundled demo CNN and tests/models/real_arch/*.onnx. With
--torch-python, full-size ResNet-50 (torchvision) and BERT-base (Hugging Face, sequence 128) are exported on the fly
into a temporary folder by bench/export_torch_models.py (run with that Python; nothing is committed) and measured
at --full-batches (default 1). Axis 0 of every input is the batch; other dimensions must be fixed in the model.

For each (model, batch, threads): kiln builds a plan once (`kiln build`, KILN_CPU_THREADS = threads, so tactics
are timed with the thread count they will run with; the build time is reported), then `rounds` times, alternately,
`kiln bench PLAN --threads T --json` and an ONNX Runtime session (intra_op_num_threads = T, inter_op = 1, all graph
optimizations) each time the same warm-up (default 20 runs) and iteration count; the table gives the median over
the rounds of each round's p50. Alternating rounds spread a changing load on a shared machine over both. Random inputs: floats in
[-1, 1), integers in [0, 2) (token ids and attention masks), for both.
"""
import argparse
import glob
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ONNX_TO_NP = {1: np.float32, 6: np.int32, 7: np.int64, 9: np.bool_, 10: np.float16, 11: np.float64}


def model_inputs(path):
    """[(name, np dtype, dims)] with dims[0] = None (the batch); other dims must be fixed."""
    m = onnx.load(path, load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    out = []
    for i in m.graph.input:
        if i.name in inits:
            continue
        t = i.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
        if any(d is None for d in dims[1:]):
            sys.exit(f"{path}: input {i.name} has a dynamic dimension besides the batch: {dims}")
        out.append((i.name, ONNX_TO_NP[t.elem_type], [None] + dims[1:]))
    return out


def shape_arg(inputs, batch):
    return ",".join(f"{n}:" + "x".join(str(batch if d is None else d) for d in dims) for n, _, dims in inputs)


def ort_p50(sess, feeds, warmup, iters):
    for _ in range(warmup):
        sess.run(None, feeds)
    t = []
    for _ in range(iters):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        t.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(t)


def kiln_env(threads):
    env = dict(os.environ)
    env["KILN_CPU_THREADS"] = str(threads)
    env["OPENBLAS_NUM_THREADS"] = "1"  # kiln splits GEMMs over its own threads
    return env


def measure(kiln, model, inputs, batch, threads, a, tmp):
    shapes = shape_arg(inputs, batch)
    plan = os.path.join(tmp, f"{os.path.basename(model)}.b{batch}.t{threads}.kiln")
    t0 = time.perf_counter()
    subprocess.run([kiln, "-q", "build", model, "-o", plan, "--shapes", shapes, "--timing-cache",
                    os.path.join(tmp, "timing.cache")], check=True, env=kiln_env(threads), capture_output=True)
    build_s = time.perf_counter() - t0
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {}
    for n, dt, dims in inputs:
        shape = [batch if d is None else d for d in dims]
        feeds[n] = (rng.integers(0, 2, shape).astype(dt) if np.issubdtype(dt, np.integer)
                    else rng.uniform(-1, 1, shape).astype(dt))
    k, o = [], []
    for _ in range(a.rounds):
        out = subprocess.run([kiln, "-q", "bench", plan, "--threads", str(threads), "--warmup", str(a.warmup),
                              "--iterations", str(a.iterations), "--int-range", "0:2", "--json"], check=True,
                             capture_output=True, text=True, env=kiln_env(threads)).stdout
        k.append(json.loads(out)["latency_ms"]["p50"])
        o.append(ort_p50(sess, feeds, a.warmup, a.iterations))
    return statistics.median(k), statistics.median(o), build_s


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kiln", default=os.path.join(ROOT, "build", "tools", "kiln"))
    ap.add_argument("--model", action="append", help="ONNX model (repeatable)")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--full-batches", default="1", help="batches for the exported full-size models")
    ap.add_argument("--threads", default=f"1,{os.cpu_count()}")
    ap.add_argument("--torch-python", help="Python with torch/torchvision/transformers: export ResNet-50, BERT-base")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=20)
    # 20: a kiln round is a fresh process whose first runs are slow (thread start-up and placement, first-touch
    # buffers: at 5, ResNet-18 b8 at 2 threads measured 1.2-2.0 ms against 0.95 ms warm), while the ORT session
    # lives across rounds; each side gets the same warm-up runs per round.
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results",
                                                  f"cpu-vs-ort-{time.strftime('%Y-%m-%d')}.md"))
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--note", default="", help="a line for the table's header (e.g. what else ran on the host)")
    a = ap.parse_args()

    batches = [int(b) for b in a.batches.split(",")]
    threads = [int(t) for t in a.threads.split(",")]
    cases = []  # (label, path, batches)
    if a.model:
        cases += [(os.path.basename(m), m, batches) for m in a.model]
    else:
        cases.append(("kiln_demo_cnn.onnx", os.path.join(ROOT, "models", "kiln_demo_cnn.onnx"), batches))
        for m in sorted(glob.glob(os.path.join(ROOT, "tests", "models", "real_arch", "*.onnx"))):
            cases.append((os.path.relpath(m, ROOT), m, batches))
    with tempfile.TemporaryDirectory(prefix="kiln_cpu_vs_ort_") as tmp:
        if a.torch_python:
            out = subprocess.run([a.torch_python, os.path.join(ROOT, "bench", "export_torch_models.py"),
                                  os.path.join(tmp, "torch"), "--models", "resnet50,bert_base"], check=True,
                                 capture_output=True, text=True).stdout
            full = [int(b) for b in a.full_batches.split(",")]
            for line in out.splitlines():
                if line.startswith("{"):
                    info = json.loads(line)
                    cases.append((f"{info['name']} (exported)", info["path"], full))
        load_before = os.getloadavg()
        rows = []
        for label, path, bs in cases:
            inputs = model_inputs(path)
            for b in bs:
                for t in threads:
                    k, o, build_s = measure(a.kiln, path, inputs, b, t, a, tmp)
                    rows.append((label, b, t, k, o, k / o, build_s))
                    print(f"{label} batch {b} threads {t}: kiln {k:.3f} ms, ORT {o:.3f} ms, {k / o:.2f}x "
                          f"(kiln build {build_s:.1f} s)", file=sys.stderr, flush=True)
        load_after = os.getloadavg()

    kiln_version = subprocess.run([a.kiln, "--version"], capture_output=True, text=True).stdout.strip()
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    lines = [f"# kiln CPU vs ONNX Runtime — {time.strftime('%Y-%m-%d')}", "",
             f"Host: {cpu}, {os.cpu_count()} cores; {kiln_version}; ONNX Runtime {ort.__version__}. "
             f"Load average {load_before[0]:.1f} before, {load_after[0]:.1f} after.",
             f"`bench/cpu_vs_ort.py --rounds {a.rounds} --iterations {a.iterations} --warmup {a.warmup}`: per row, "
             f"{a.rounds} alternating rounds of kiln (`kiln bench`, plan built once with the same thread count) and "
             f"ONNX Runtime (intra_op_num_threads = threads, all graph optimizations), {a.iterations} timed runs "
             f"each; the median of the rounds' p50.", ""]
    if a.note:
        lines += [a.note, ""]
    lines += ["| model | batch | threads | kiln ms | ORT ms | kiln / ORT | kiln build s |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]:.3f} | {r[4]:.3f} | {r[5]:.2f}x | {r[6]:.1f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if not a.no_write:
        os.makedirs(os.path.dirname(a.out), exist_ok=True)
        with open(a.out, "w") as f:
            f.write(text)
        print(f"wrote {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
