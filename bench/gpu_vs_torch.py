"""kiln against PyTorch on one GPU, in the same process and the same run (issue 6, item 3; docs/benchmarks.md).

    python3 bench/gpu_vs_torch.py [--models resnet50,bert_base] [--batches 1,128] [--contestants kiln,eager,...]
                                  [--quick] [--out bench/results/gpu/DATE-CARD-torchbench.md] [--kiln-lib PATH]
                                  [--work DIR] [--exporter auto|dynamo|torchscript] [--profile-mode per-batch|dynamic]
                                  [--device cuda|cpu] [--budget SECONDS]

Each model runs in its own process (this script re-invokes itself with --child): it builds the model with random
weights, exports it to ONNX with a dynamic batch, builds a kiln FP16 engine through libkiln.so's C API
(python/kiln_ctypes.py) and times, at each batch, kiln (enqueue on the torch tensors' device pointers, on torch's
current stream, CUDA graphs on) and PyTorch .half() under inference_mode: eager, eager + torch.cuda.CUDAGraph,
torch.compile, torch.compile(mode="reduce-overhead"). A contestant that fails gets a row "failed: <reason>".
The parent writes a dated markdown table (and the raw numbers as JSON next to it).

--device cpu is a dry run for machines without a GPU: fp32 kiln CPU engine (host buffers) against torch eager and
torch.compile on the CPU, perf_counter timing; eager_graph and compile_ro are skipped. It checks the export, the
build, the wrapper and the table. --quick: 5 warm-up and 50 timed calls (the minimum the table accepts) instead of 20 and 100.
"""
import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FP16_BOUND = 1e-2  # docs/tolerances.md, FP16 row (relative L2)
FP32_DRY_BOUND = 1e-4  # --device cpu compares fp32 with fp32


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="resnet50,bert_base")
    ap.add_argument("--batches", default="", help="comma-separated; default per model (ResNet-50 1,128; BERT 1,64)")
    ap.add_argument("--contestants", default="kiln,eager,eager_graph,compile,compile_ro")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--iterations", type=int, default=None)
    ap.add_argument("--out", default="", help="markdown file (default bench/results/gpu/DATE-CARD-torchbench.md)")
    ap.add_argument("--kiln-lib", default="", help="libkiln.so (default: $KILN_LIB, then python/libkiln.so, "
                                                   "then the loader path)")
    ap.add_argument("--work", default="", help="folder for ONNX files, plans, timing caches, logs (default: temp)")
    ap.add_argument("--exporter", choices=["auto", "dynamo", "torchscript"], default="auto",
                    help="auto: dynamo when onnxscript is installed (the cleaner graph for kiln), else torchscript")
    ap.add_argument("--reexport", action="store_true", help="export again even when the ONNX file is in --work")
    ap.add_argument("--profile-mode", choices=["per-batch", "dynamic"], default="per-batch")
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument("--budget", type=float, default=0, help="seconds for the whole run (children get what is left)")
    ap.add_argument("--merge", nargs="+", default=[], metavar="JSON",
                    help="no run: write one table from the .json files of earlier runs (e.g. one per model)")
    ap.add_argument("--child", default="", help=argparse.SUPPRESS)
    ap.add_argument("--result", default="", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    a.warmup = a.warmup if a.warmup is not None else (5 if a.quick else 20)
    a.iterations = a.iterations if a.iterations is not None else (50 if a.quick else 100)
    if a.iterations < 50 and a.device == "cuda":
        ap.error("--iterations must be at least 50")
    return a


# ============================================ child: one model ====================================================

def child(a):
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    sys.path.insert(0, os.path.join(ROOT, "python"))
    import torch  # before libkiln.so: kiln then shares torch's CUDA runtime, cuBLASLt and cuDNN

    import torchbench_lib as L

    name, device = a.child, a.device
    res = {"model": name, "device": device, "rows": [], "env": {}, "kiln": {}, "onnx": {}, "errors": []}

    def save():
        tmp = a.result + ".tmp"
        with open(tmp, "w") as f:
            json.dump(res, f, indent=1, default=str)
        os.replace(tmp, a.result)

    if a.kiln_lib:
        os.environ["KILN_LIB"] = os.path.abspath(a.kiln_lib)
    env = res["env"]
    env.update({"torch": torch.__version__, "python": platform.python_version(), "host": platform.node()})
    if device == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("--device cuda: torch sees no CUDA device")
        env.update({"card": torch.cuda.get_device_name(0), "cuda": torch.version.cuda,
                    "cudnn": torch.backends.cudnn.version()})
        torch.backends.cudnn.benchmark = True
    else:
        env["card"] = "CPU " + cpu_name()
    save()

    spec = L.MODELS[name]
    batches = [int(b) for b in a.batches.split(",")] if a.batches else list(spec["batches"])
    contestants = [c for c in a.contestants.split(",") if c]
    fdt = torch.float16 if device == "cuda" else torch.float32

    # ---- model and export ----
    auto_exporter = a.exporter == "auto"
    if auto_exporter:
        try:
            import onnxscript  # noqa: F401  (the dynamo exporter needs it)
            a.exporter = "dynamo"
        except ImportError:
            a.exporter = "torchscript"
            res["onnx"]["exporter_note"] = "onnxscript is not installed: TorchScript exporter"
    model = L.make_model(name)
    onnx_path = os.path.join(a.work, f"{name}.{a.exporter}.onnx")
    t0 = time.perf_counter()
    if a.reexport or not os.path.exists(onnx_path):
        try:
            L.export_onnx(name, model, onnx_path, a.exporter)
        except Exception as e:  # noqa: BLE001
            if not auto_exporter:
                raise
            # The dynamo exporter was only preferred: fall back to the TorchScript exporter, and say so.
            res["onnx"]["exporter_note"] = "dynamo export failed (" + reason(e) + "): TorchScript exporter"
            res["errors"].append("dynamo export: " + traceback.format_exc(limit=6))
            a.exporter = "torchscript"
            onnx_path = os.path.join(a.work, f"{name}.{a.exporter}.onnx")
            t0 = time.perf_counter()
            L.export_onnx(name, model, onnx_path, a.exporter)
        res["onnx"]["export_s"] = time.perf_counter() - t0
    else:
        res["onnx"]["export_s"] = None  # reused from --work
    res["onnx"].update(L.onnx_summary(onnx_path))
    res["onnx"]["exporter"] = a.exporter
    save()

    # ---- inputs, FP32 reference, eager FP16 outputs for the check ----
    model = model.to(device)
    inputs = {b: L.make_inputs(name, b, device, fdt) for b in batches}
    ref32, eager_out = {}, {}
    with torch.inference_mode():
        for b in batches:
            ref_in = [t.float() if t.is_floating_point() else t for t in inputs[b]]
            ref32[b] = model(*ref_in).float()
        model = model.to(fdt)
        for b in batches:
            eager_out[b] = model(*inputs[b]).clone()
    res["torch_weight_bytes"] = sum(t.numel() * t.element_size()
                                    for t in list(model.parameters()) + list(model.buffers()))
    if device == "cuda":
        torch.cuda.synchronize()
    bound = FP16_BOUND if device == "cuda" else FP32_DRY_BOUND

    def add_row(c, b, status, **kw):
        row = {"contestant": c, "batch": b, "status": status}
        row.update(kw)
        res["rows"].append(row)
        save()
        ms = f"median {kw['median_ms']:.3f} ms" if "median_ms" in kw else ""
        print(f"[{name}] {c} batch {b}: {status} {ms}", flush=True)

    def finish_row(c, b, times, y, setup_s, note, mem):
        st = L.summarize(times)
        st["samples_per_s"] = b * 1e3 / st["median_ms"]
        r_e = L.rel_l2(y, eager_out[b])
        r_32 = L.rel_l2(y, ref32[b])
        check = ""
        if c == "kiln":
            check = "pass" if r_e <= bound else "FAIL"
        add_row(c, b, "ok", setup_s=setup_s, rel_l2_eager=r_e, rel_l2_fp32=r_32, check=check, notes=note,
                **mem, **st)

    # ---- contestants ----
    for c in contestants:
        if device == "cpu" and c not in ("kiln", "eager", "compile"):
            for b in batches:
                add_row(c, b, "skipped: needs CUDA (--device cpu)")
            continue
        try:
            if c == "kiln":
                run_kiln(a, L, torch, name, onnx_path, batches, inputs, finish_row, add_row, res, save)
                continue
            for b in batches:
                mem = {}
                try:
                    with torch.inference_mode(), L.torch_memory(device, mem):
                        if c == "eager":
                            fn, get, setup_s, note = L.torch_eager(model, inputs[b], device)
                        elif c == "eager_graph":
                            fn, get, setup_s, note = L.torch_eager_graph(model, inputs[b], device,
                                                                         spec["kind"] == "bert")
                        elif c == "compile":
                            fn, get, setup_s, note = L.torch_compiled(model, inputs[b], device, None)
                        elif c == "compile_ro":
                            fn, get, setup_s, note = L.torch_compiled(model, inputs[b], device, "reduce-overhead")
                        else:
                            raise ValueError(f"unknown contestant '{c}'")
                        times = L.time_fn(fn, device, a.warmup, a.iterations)
                        y = get().clone()
                    if "torch_peak_bytes" in mem:
                        mem = {"mem_bytes": mem["torch_peak_bytes"], "mem_what": "torch peak delta"}
                    finish_row(c, b, times, y, setup_s, note, mem)
                except Exception as e:  # noqa: BLE001 — one failing contestant must not end the run
                    add_row(c, b, "failed: " + reason(e))
                    res["errors"].append(f"{c} batch {b}: " + traceback.format_exc(limit=6))
                finally:
                    fn = get = None
                    L.cleanup()
        except Exception as e:  # noqa: BLE001
            add_row(c, None, "failed: " + reason(e))
            res["errors"].append(f"{c}: " + traceback.format_exc(limit=8))
        L.cleanup()
    save()
    return 0


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip() + f", {os.cpu_count()} threads"
    except OSError:
        pass
    return platform.processor() or platform.machine()


def reason(e):
    msg = f"{type(e).__name__}: {e}".strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return msg[:240]


TORCH_DTYPES = {"float32": "float32", "float16": "float16", "bfloat16": "bfloat16", "int64": "int64",
                "int32": "int32", "bool": "bool", "float64": "float64", "int8": "int8", "uint8": "uint8"}


def run_kiln(a, L, torch, name, onnx_path, batches, inputs, finish_row, add_row, res, save):
    import kiln_ctypes as kc

    device = a.device
    kc.set_log_level(3)
    info = res["kiln"]
    info.update({"version": kc.version(), "build_id": kc.build_id(), "lib": kc.library_path() or "loader path"})
    names = L.input_names(name)
    shapes = {b: {n: tuple(t.shape) for n, t in zip(names, inputs[b])} for b in batches}
    if a.profile_mode == "per-batch":
        profiles = [{n: (s, s, s) for n, s in shapes[b].items()} for b in batches]
        info["profiles"] = f"one per batch ({len(batches)}; min = opt = max; tactics timed per profile)"
    else:
        lo, hi = min(batches), max(batches)
        profiles = [{n: (shapes[lo][n], shapes[hi][n], shapes[hi][n]) for n in names}]
        info["profiles"] = f"one dynamic-batch profile (min {lo}, opt {hi}, max {hi})"
    target, precision = ("cuda", "fp16") if device == "cuda" else ("cpu", "fp32")
    cache = os.path.join(a.work, f"{name}.{device}.timing-cache")
    if os.path.exists(cache):
        os.remove(cache)
    kw = dict(target=target, precision=precision, profiles=profiles, keep_io_types=False, timing_cache=cache)
    t0 = time.perf_counter()
    eng = kc.Engine.build(onnx_path, **kw)
    info["build_cold"] = dict(eng.build_stats(), wall_s=time.perf_counter() - t0)
    save()
    t0 = time.perf_counter()
    warm = kc.Engine.build(onnx_path, **kw)
    info["build_warm"] = dict(warm.build_stats(), wall_s=time.perf_counter() - t0)
    del warm
    plan = os.path.join(a.work, f"{name}.{device}.kiln")
    eng.save(plan)
    info["plan_bytes"] = os.path.getsize(plan)
    info["engine_memory"] = eng.memory_info()
    info["inputs"] = [tuple(d) for d in eng.inputs]
    info["outputs"] = [tuple(d) for d in eng.outputs]
    save()

    free0 = torch.cuda.mem_get_info()[0] if device == "cuda" else 0
    ctx = eng.create_context(use_cuda_graphs=(device == "cuda"))
    out_name = eng.outputs[0].name
    stream = torch.cuda.current_stream().cuda_stream if device == "cuda" else 0
    for b in batches:
        try:
            ins = {}
            notes = []
            for d, t in zip(eng.inputs, inputs[b]):
                want = getattr(torch, TORCH_DTYPES[d.dtype])
                if t.dtype != want:
                    notes.append(f"{d.name} cast to {d.dtype}")
                    t = t.to(want)
                ins[d.name] = t.contiguous()
            oshapes = ctx.output_shapes({n: tuple(t.shape) for n, t in ins.items()})
            outs = {}
            for o, (dt, s) in oshapes.items():
                if any(x < 0 for x in s):
                    raise RuntimeError(f"output {o} has a data-dependent shape {s}")
                outs[o] = torch.empty(s, dtype=getattr(torch, TORCH_DTYPES[dt]), device=device)
            if device == "cuda":
                f = ctx.prepare_enqueue({n: kc.DeviceTensor.from_torch(t) for n, t in ins.items()},
                                        {n: kc.DeviceTensor.from_torch(t) for n, t in outs.items()})

                def fn():
                    f(stream)
            else:
                feeds = {n: t.numpy() for n, t in ins.items()}
                last = {}

                def fn():
                    last.update(ctx.run(feeds))
            t0 = time.perf_counter()
            fn()
            if device == "cuda":
                torch.cuda.synchronize()
            setup_s = time.perf_counter() - t0
            times = L.time_fn(fn, device, a.warmup, a.iterations)
            if device == "cuda":
                torch.cuda.synchronize()
                y = outs[out_name].clone()
            else:
                y = torch.from_numpy(last[out_name].copy())
            mem = {}
            if device == "cuda":
                st = ctx.stats()
                mem = {"mem_bytes": st["weight_bytes"] + st["arena_bytes"] + st["dynamic_pool_bytes"],
                       "mem_what": "kiln weights + arena"}
            finish_row("kiln", b, times, y, setup_s, "; ".join(notes), mem)
        except Exception as e:  # noqa: BLE001
            add_row("kiln", b, "failed: " + reason(e))
            res["errors"].append(f"kiln batch {b}: " + traceback.format_exc(limit=6))
    st = ctx.stats()
    info["context_stats"] = st
    if device == "cuda":
        torch.cuda.synchronize()
        info["device_bytes_delta"] = free0 - torch.cuda.mem_get_info()[0]
    del ctx, eng
    save()


# ============================================ parent: all models, the table ========================================

def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    a = parse_args(argv)
    if a.child:
        return child(a)
    if a.merge:
        return merge(a)
    start = time.time()
    work = a.work or tempfile.mkdtemp(prefix="kiln-torchbench-")
    os.makedirs(work, exist_ok=True)
    results = []
    for m in [x for x in a.models.split(",") if x]:
        result = os.path.join(work, f"{m}.result.json")
        log = os.path.join(work, f"{m}.log")
        if os.path.exists(result):
            os.remove(result)
        cmd = [sys.executable, os.path.abspath(__file__)] + argv + ["--work", work, "--child", m,
                                                                             "--result", result]
        timeout = None
        if a.budget:
            timeout = max(30.0, a.budget - (time.time() - start) - 15)
        print(f"gpu_vs_torch: {m} (log {log})", flush=True)
        rc, why = 0, ""
        with open(log, "w") as lf:
            try:
                rc = subprocess.run(cmd, stdout=lf, stderr=subprocess.STDOUT, timeout=timeout).returncode
            except subprocess.TimeoutExpired:
                rc, why = -1, f"timed out after {timeout:.0f} s"
        r = {"model": m, "rows": [], "env": {}, "kiln": {}, "onnx": {}, "errors": []}
        if os.path.exists(result):
            with open(result) as f:
                r = json.load(f)
        if rc != 0:
            why = why or f"exit {rc}: " + last_line(log)
            r["failed"] = why
            print(f"gpu_vs_torch: {m} failed: {why}", flush=True)
        results.append(r)
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    write(a, results, date)
    print(f"gpu_vs_torch: done in {time.time() - start:.0f} s; work folder {work}")
    return 0 if all(not r.get("failed") for r in results) else 1


def merge(a):
    results, date = [], ""
    for path in a.merge:
        with open(path) as f:
            j = json.load(f)
        results += j["results"]
        date = max(date, j.get("date", ""))
        for k in ("warmup", "iterations", "device", "exporter", "profile_mode"):
            setattr(a, k, j["args"].get(k, getattr(a, k)))
    write(a, results, date)
    return 0


def write(a, results, date):
    env = next((r["env"] for r in results if r.get("env")), {})
    out = a.out or os.path.join(ROOT, "bench", "results", "gpu", f"{date}-{card_slug(env.get('card', ''))}-torchbench.md")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    import torchbench_table
    text = torchbench_table.markdown(a, results, env, date)
    with open(out, "w") as f:
        f.write(text)
    with open(os.path.splitext(out)[0] + ".json", "w") as f:
        json.dump({"date": date, "args": vars(a), "results": results}, f, indent=1, default=str)
    print(text)
    print(f"gpu_vs_torch: wrote {out} (and .json)")


def last_line(path):
    try:
        with open(path, errors="replace") as f:
            lines = [x.strip() for x in f.read().splitlines() if x.strip()]
        return lines[-1][:240] if lines else "(no output)"
    except OSError:
        return "(no log)"


def card_slug(card):
    if (card or "").startswith("CPU"):
        return "cpu-dry"
    m = re.search(r"\b([A-Z]\d{2,4}|RTX ?\d{4}|[A-Z]{1,2}\d{3})\b", card or "")
    return (m.group(1) if m else (card or "unknown").split()[0]).lower().replace(" ", "")


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    sys.exit(main())
