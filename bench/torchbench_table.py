"""The markdown report of bench/gpu_vs_torch.py: setup, per model the build facts and the timing table, and the
issue's first targets (kiln vs eager + CUDA graph at batch 1, vs eager at the large batch)."""

TITLES = {"kiln": "kiln FP16 (CUDA graphs)", "eager": "torch eager", "eager_graph": "torch eager + CUDA graph",
          "compile": "torch.compile", "compile_ro": "torch.compile reduce-overhead"}
MODEL_TITLES = {"resnet50": "ResNet-50", "bert_base": "BERT-base (seq 128)", "resnet18": "ResNet-18",
                "bert_tiny": "BERT tiny (2 layers, hidden 128, seq 128)"}
TARGET_MARGIN = 0.05  # issue 6, item 4: kiln faster by at least 5 %


def mib(n):
    return "" if n is None else f"{n / 2**20:.1f}"


def fmt_ms(v):
    return "" if v is None else (f"{v:.3f}" if v < 10 else f"{v:.2f}")


def fmt_e(v):
    if v is None:
        return ""
    return "inf" if v == float("inf") else f"{v:.1e}"


def build_line(kiln):
    def one(s):
        if not s:
            return "—"
        extra = ""
        if "tactic_candidates_timed" in s:  # kiln_build_stats fields since per-profile tactics
            extra = (f", {s['tactic_candidates_timed']} candidates, tactics phase {s.get('tactics_seconds', 0):.1f} s"
                     f" over {s.get('profiles', 0)} profile(s)")
        return (f"{s.get('wall_s', 0):.1f} s ({s.get('tactics_timed', 0)} tactics timed, "
                f"{s.get('timing_cache_hits', 0)} cache hits, {s.get('timing_cache_misses', 0)} misses{extra})")
    return f"cold cache {one(kiln.get('build_cold'))}; warm cache {one(kiln.get('build_warm'))}"


def title(contestant, device):
    if contestant == "kiln" and device != "cuda":
        return "kiln FP32 (CPU)"
    return TITLES.get(contestant, contestant)


def model_section(r, device):
    m = r["model"]
    lines = [f"## {MODEL_TITLES.get(m, m)}", ""]
    o, k = r.get("onnx", {}), r.get("kiln", {})
    if o:
        ops = ", ".join(f"{op} {n}" for op, n in o.get("top_ops", []))
        exp = f"exported in {o['export_s']:.1f} s" if o.get("export_s") else "reused from the work folder"
        lines.append(f"- ONNX ({o.get('exporter')} exporter, opset {o.get('opset')}): {o.get('nodes')} nodes "
                     f"({ops}); {exp}.")
        if o.get("exporter_note"):
            lines.append(f"- Exporter: {o['exporter_note']}.")
    if k.get("build_cold"):
        em = k.get("engine_memory", {})
        lines.append(f"- kiln engine: {k.get('profiles')}; build {build_line(k)}; plan {mib(k.get('plan_bytes'))} "
                     f"MiB; {k['build_cold'].get('nodes', '?')} nodes; host-fallback nodes "
                     f"{em.get('host_fallback_nodes', '?')}.")
    cs = k.get("context_stats")
    if cs and cs.get("device") != "cpu":
        extra = ""
        if k.get("device_bytes_delta") is not None:
            extra = f"; device memory taken by the context (cudaMemGetInfo) {mib(k['device_bytes_delta'])} MiB"
        lines.append(f"- kiln context: {cs.get('device')}, weights {mib(cs.get('weight_bytes'))} MiB, arena "
                     f"{mib(cs.get('arena_bytes'))} MiB; CUDA graphs: {cs.get('cuda_graph_captures')} captures, "
                     f"{cs.get('cuda_graph_replays')} replays, {cs.get('cuda_graph_fallbacks')} fallbacks{extra}.")
    if r.get("torch_weight_bytes"):
        lines.append(f"- PyTorch weights ({'FP16' if device == 'cuda' else 'FP32'}): "
                     f"{mib(r['torch_weight_bytes'])} MiB (resident, not in the memory column).")
    if r.get("failed"):
        lines.append(f"- **the model's process failed: {r['failed']}** (rows below are what it finished)")
    lines.append("")
    lines.append("| batch | contestant | median ms | p10–p90 ms | samples/s | kiln speedup | rel L2 vs eager | "
                 "rel L2 vs FP32 | check | memory MiB | setup s | notes |")
    lines.append("|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---|")
    rows = r.get("rows", [])
    kiln_ms = {x["batch"]: x["median_ms"] for x in rows if x["contestant"] == "kiln" and x["status"] == "ok"}
    order = ["kiln", "eager", "eager_graph", "compile", "compile_ro"]
    rows = sorted(rows, key=lambda x: (x["batch"] if x["batch"] is not None else -1,
                                       order.index(x["contestant"]) if x["contestant"] in order else 99))
    for x in rows:
        b = x["batch"] if x["batch"] is not None else "all"
        name = title(x["contestant"], device)
        if x["status"] != "ok":
            lines.append(f"| {b} | {name} | {x['status']} |  |  |  |  |  |  |  |  |  |")
            continue
        sp = ""
        if x["contestant"] != "kiln" and kiln_ms.get(x["batch"]):
            sp = f"{x['median_ms'] / kiln_ms[x['batch']]:.2f}x"
        mem = mib(x.get("mem_bytes"))
        lines.append(f"| {b} | {name} | {fmt_ms(x['median_ms'])} | {fmt_ms(x['p10_ms'])}–{fmt_ms(x['p90_ms'])} | "
                     f"{x['samples_per_s']:.0f} | {sp} | {fmt_e(x.get('rel_l2_eager'))} | "
                     f"{fmt_e(x.get('rel_l2_fp32'))} | {x.get('check', '')} | {mem} | {x.get('setup_s', 0):.1f} | "
                     f"{x.get('notes', '')} |")
    lines.append("")
    return lines


def targets(results):
    """Issue 6, item 4: batch 1 kiln vs eager + CUDA graph, largest batch kiln vs eager; >= 5 % faster."""
    lines = ["## Targets (issue 6, item 4)", "",
             "| model | batch | kiln ms | against | its ms | kiln faster by | target ≥ 5 % |", "|---|---:|---:|---|---:|---:|---|"]
    for r in results:
        ok = {(x["contestant"], x["batch"]): x["median_ms"] for x in r.get("rows", []) if x["status"] == "ok"}
        batches = sorted({x["batch"] for x in r.get("rows", []) if x["batch"] is not None})
        if not batches:
            continue
        pairs = [(batches[0], "eager_graph")] if batches[0] == 1 else []
        if batches[-1] != 1:
            pairs.append((batches[-1], "eager"))
        for b, other in pairs:
            k, t = ok.get(("kiln", b)), ok.get((other, b))
            if k is None or t is None:
                lines.append(f"| {MODEL_TITLES.get(r['model'], r['model'])} | {b} | {fmt_ms(k)} | {TITLES[other]} | "
                             f"{fmt_ms(t)} | | not measured |")
                continue
            gain = 1 - k / t
            lines.append(f"| {MODEL_TITLES.get(r['model'], r['model'])} | {b} | {fmt_ms(k)} | {TITLES[other]} | "
                         f"{fmt_ms(t)} | {gain * 100:+.1f} % | {'met' if gain >= TARGET_MARGIN else 'not met'} |")
    lines.append("")
    return lines


def markdown(a, results, env, date):
    kiln = next((r["kiln"] for r in results if r.get("kiln", {}).get("version")), {})
    cuda = a.device == "cuda"
    lines = [f"# kiln vs PyTorch — {env.get('card', 'unknown device')}, {date}", ""]
    lines.append(f"- kiln {kiln.get('version', '?')} (build {kiln.get('build_id', '?')}), libkiln.so: "
                 f"{kiln.get('lib', '?')}")
    lines.append(f"- torch {env.get('torch', '?')}, CUDA {env.get('cuda', '-')}, cuDNN {env.get('cudnn', '-')}, "
                 f"Python {env.get('python', '?')}, host {env.get('host', '?')}")
    lines.append("- Models: random weights (seed 0). ResNet-50: torchvision, NCHW 3x224x224, N(0,1) images. "
                 "BERT-base: Hugging Face BertModel default config, attn_implementation=\"sdpa\", no pooler, "
                 "output last_hidden_state; sequence 128, random token ids, attention masks keeping a random length "
                 "in [64, 128] per row (so every contestant applies the mask).")
    exporters = sorted({r.get("onnx", {}).get("exporter") for r in results if r.get("onnx", {}).get("exporter")})
    for e in exporters:
        if e == "dynamo":
            lines.append("- ONNX: dynamo exporter (torch.onnx.export dynamo=True, optimize=True), dynamic batch axis. "
                         "Chosen because it gives kiln the cleanest graph: BERT's Gelu is one op and the attention "
                         "scale needs no per-layer Shape/Sqrt arithmetic (2-layer BERT: 80 kiln nodes against 108 "
                         "with the TorchScript exporter); ResNet is the same either way.")
        else:
            lines.append("- ONNX: TorchScript exporter (torch.onnx.export dynamo=False, opset 17), dynamic batch "
                         "axis" + ("" if a.exporter == "torchscript" else
                                   " (the preferred dynamo exporter was not available or failed: see the "
                                   "model's note)") + ".")
    if cuda:
        lines.append("- kiln: FP16 engine (keep_io_types off: float16 in and out, like the .half() model), CUDA "
                     f"graphs on, {kiln.get('profiles', '?')}; built and run in the PyTorch process through "
                     "libkiln.so's C API (python/kiln_ctypes.py), enqueued on the torch tensors' device pointers "
                     "and torch's current stream.")
        lines.append("- PyTorch: model.half(), torch.inference_mode(), cudnn.benchmark on. eager + CUDA graph: "
                     "torch.cuda.CUDAGraph capture of the eager forward, replayed; torch.compile: default mode, "
                     "dynamic=False; reduce-overhead: inductor with CUDA graphs.")
        lines.append(f"- Timing: {a.warmup} warm-up calls, then {a.iterations} calls each between two CUDA events "
                     "on torch's current stream, waiting for the end event before the next call (latency of one "
                     "request, launch overhead included). Median and p10–p90 in ms. kiln speedup = contestant "
                     "median / kiln median (> 1: kiln is faster).")
        lines.append(f"- Check: kiln's output against torch eager FP16 by relative L2 ≤ {1e-2:g} (docs/tolerances.md, "
                     "FP16 row); every contestant's relative L2 against FP32 eager is shown too.")
        lines.append("- Memory: kiln = weights + activation arena (+ dynamic pool) its context allocated; torch = "
                     "increase of max_memory_allocated over the contestant's setup and runs (weights excluded).")
    else:
        lines.append("- **Dry run on the CPU** (--device cpu): kiln FP32 CPU engine on host buffers against torch "
                     "eager and torch.compile FP32 on the CPU, perf_counter timing; the check bound is relative L2 ≤ 1e-4. The "
                     "numbers say nothing about the GPU.")
    lines.append("")
    for r in results:
        lines += model_section(r, a.device)
    if cuda:
        lines += targets(results)
    errs = [e for r in results for e in r.get("errors", [])]
    if errs:
        lines += ["## Failures (tracebacks, shortened)", "", "```"]
        for e in errs:
            lines += [ln for ln in e.splitlines()[-8:]]
            lines.append("")
        lines += ["```", ""]
    return "\n".join(lines)
