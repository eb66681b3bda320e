"""The models, ONNX export, inputs, contestants and timing of bench/gpu_vs_torch.py (one model per process).

Everything here runs inside the child process the script starts per model: torch is imported first, then kiln's
libkiln.so through python/kiln_ctypes.py, so kiln shares the process (and the CUDA runtime / cuBLASLt / cuDNN
torch already loaded) and enqueues on torch's tensors and torch's current stream.
"""
import contextlib
import gc
import math
import os
import statistics
import time

import torch

SEQ = 128
# name -> kind, constructor arguments, default batches. resnet18 / bert_tiny are small stand-ins for quick checks.
MODELS = {
    "resnet50": {"kind": "resnet", "arch": "resnet50", "batches": (1, 128)},
    "bert_base": {"kind": "bert", "cfg": {}, "batches": (1, 64)},
    "resnet18": {"kind": "resnet", "arch": "resnet18", "batches": (1, 8)},
    "bert_tiny": {"kind": "bert", "batches": (1, 8),
                  "cfg": {"hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2,
                          "intermediate_size": 512}},
}
CONTESTANTS = ["kiln", "eager", "eager_graph", "compile", "compile_ro"]
TITLES = {"kiln": "kiln (FP16, CUDA graphs)", "eager": "torch eager", "eager_graph": "torch eager + CUDA graph",
          "compile": "torch.compile", "compile_ro": "torch.compile reduce-overhead"}


class BertWrap(torch.nn.Module):
    """BertModel(input_ids, attention_mask) -> last_hidden_state, one tensor like the exported graph's output."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, input_ids, attention_mask):
        return self.m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def make_model(name):
    """The fp32 model on the CPU in eval mode, random weights (seed 0)."""
    spec = MODELS[name]
    torch.manual_seed(0)
    if spec["kind"] == "resnet":
        import torchvision
        return getattr(torchvision.models, spec["arch"])(weights=None).eval()
    from transformers import BertConfig, BertModel
    cfg = BertConfig(attn_implementation="sdpa", **spec["cfg"])
    m = BertModel(cfg, add_pooling_layer=False)
    if getattr(m.config, "_attn_implementation", "sdpa") != "sdpa":
        raise RuntimeError(f"BertModel uses attention '{m.config._attn_implementation}', not sdpa")
    return BertWrap(m).eval()


def input_names(name):
    return ["input"] if MODELS[name]["kind"] == "resnet" else ["input_ids", "attention_mask"]


def make_inputs(name, batch, device, float_dtype):
    """Seeded inputs. ResNet: an N(0,1) image. BERT: token ids, and an attention mask whose rows keep a random
    length in [SEQ/2, SEQ] (padding after it), so every contestant applies the mask."""
    g = torch.Generator().manual_seed(1000 + batch)
    if MODELS[name]["kind"] == "resnet":
        x = torch.randn(batch, 3, 224, 224, generator=g).to(float_dtype)
        return [x.to(device)]
    ids = torch.randint(0, 30522, (batch, SEQ), generator=g)  # BertConfig's default vocabulary
    lengths = torch.randint(SEQ // 2, SEQ + 1, (batch,), generator=g)
    mask = (torch.arange(SEQ)[None, :] < lengths[:, None]).to(torch.int64)
    return [ids.to(device), mask.to(device)]


def export_onnx(name, model, path, exporter):
    """Exports `model` (fp32, CPU) with a dynamic batch axis. Returns the exporter actually used."""
    names = input_names(name)
    args = tuple(make_inputs(name, 2, "cpu", torch.float32))
    tmp = path + ".tmp.onnx"
    with torch.no_grad():
        if exporter == "torchscript":
            dyn = {n: {0: "batch"} for n in names}
            dyn["out"] = {0: "batch"}
            torch.onnx.export(model, args, tmp, input_names=names, output_names=["out"], opset_version=17,
                              dynamic_axes=dyn, do_constant_folding=True, dynamo=False)
        else:
            # BERT's trace guards batch != 1 (0/1 specialization), so the range starts at 2; the ONNX graph is
            # symbolic in the batch and kiln's profiles decide what runs.
            batch = torch.export.Dim("batch", min=1 if MODELS[name]["kind"] == "resnet" else 2, max=4096)
            keys = ["x"] if MODELS[name]["kind"] == "resnet" else ["input_ids", "attention_mask"]
            dyn = {k: {0: batch} for k in keys}
            torch.onnx.export(model, args, tmp, input_names=names, output_names=["out"], dynamic_shapes=dyn,
                              dynamo=True, optimize=True, external_data=False)
    os.replace(tmp, path)
    return exporter


def onnx_summary(path):
    """Node count and the most frequent op types of the exported graph."""
    import onnx
    m = onnx.load(path, load_external_data=False)
    counts = {}
    for n in m.graph.node:
        counts[n.op_type] = counts.get(n.op_type, 0) + 1
    top = sorted(counts.items(), key=lambda kv: -kv[1])[:8]
    opset = next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), None)
    return {"nodes": len(m.graph.node), "opset": opset, "top_ops": top}


# ---- statistics and checks --------------------------------------------------------------------------------------

def percentile(sorted_v, p):
    """Linear interpolation between closest ranks."""
    if not sorted_v:
        return float("nan")
    k = (len(sorted_v) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return sorted_v[lo] + (sorted_v[hi] - sorted_v[lo]) * (k - lo)


def summarize(times_ms):
    s = sorted(times_ms)
    return {"median_ms": statistics.median(s), "p10_ms": percentile(s, 10), "p90_ms": percentile(s, 90),
            "min_ms": s[0], "n": len(s)}


def rel_l2(a, b):
    """||a - b|| / ||b|| in float64; inf when a has non-finite values where b has none."""
    a = a.detach().double().flatten()
    b = b.detach().double().flatten()
    if a.shape != b.shape:
        return float("inf")
    if not torch.isfinite(a).all() and torch.isfinite(b).all():
        return float("inf")
    den = torch.linalg.vector_norm(b).item()
    num = torch.linalg.vector_norm(a - b).item()
    return num / den if den > 0 else num


def time_fn(fn, device, warmup, iters):
    """Latency of fn() per call: CUDA events around each call on torch's current stream, waiting for the end
    event before the next call (so each sample is one request's latency, launch overhead included); on the CPU,
    perf_counter. Returns the milliseconds of `iters` calls after `warmup` calls."""
    for _ in range(warmup):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
        out = []
        for _ in range(iters):
            s = torch.cuda.Event(enable_timing=True)
            e = torch.cuda.Event(enable_timing=True)
            s.record()
            fn()
            e.record()
            e.synchronize()
            out.append(s.elapsed_time(e))
        return out
    out = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


@contextlib.contextmanager
def torch_memory(device, sink):
    """sink["torch_peak_bytes"]: max_memory_allocated during the block minus what was allocated before it."""
    if device != "cuda":
        yield
        return
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    try:
        yield
    finally:
        torch.cuda.synchronize()
        sink["torch_peak_bytes"] = torch.cuda.max_memory_allocated() - base


def cleanup():
    gc.collect()
    try:
        torch._dynamo.reset()
    except Exception:
        pass
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.empty_cache()


@contextlib.contextmanager
def capturable_bert_mask():
    """Hugging Face's SDPA mask code tests `mask.all()` on the device (a host sync, which CUDA graph capture
    forbids) to drop an all-ones mask. Inside this block the mask is always kept, as in the traced / compiled graph;
    with the padded masks used here the result is the same. Patches what this transformers version has:
    modeling_bert._prepare_4d_attention_mask_for_sdpa (4.x) and masking_utils._ignore_bidirectional_mask_sdpa
    (newer); with neither, the capture may fail and the row says why."""
    patched = []
    try:
        import transformers.models.bert.modeling_bert as mb
        from transformers.modeling_attn_mask_utils import AttentionMaskConverter
        if hasattr(mb, "_prepare_4d_attention_mask_for_sdpa"):
            def expand(mask, dtype, tgt_len=None):
                return AttentionMaskConverter._expand_mask(mask=mask, dtype=dtype, tgt_len=tgt_len)
            patched.append((mb, "_prepare_4d_attention_mask_for_sdpa", mb._prepare_4d_attention_mask_for_sdpa))
            mb._prepare_4d_attention_mask_for_sdpa = expand
    except Exception:
        pass
    try:
        import transformers.masking_utils as mu
        if hasattr(mu, "_ignore_bidirectional_mask_sdpa"):
            patched.append((mu, "_ignore_bidirectional_mask_sdpa", mu._ignore_bidirectional_mask_sdpa))
            mu._ignore_bidirectional_mask_sdpa = lambda *args, **kwargs: False
    except Exception:
        pass
    try:
        yield
    finally:
        for mod, attr, old in patched:
            setattr(mod, attr, old)


# ---- torch contestants: each returns (fn, output getter, setup seconds, notes) -------------------------------------

def torch_eager(model, inputs, device):
    out = {}

    def fn():
        out["y"] = model(*inputs)

    t0 = time.perf_counter()
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return fn, lambda: out["y"], time.perf_counter() - t0, ""


def torch_eager_graph(model, inputs, device, is_bert):
    ctx = capturable_bert_mask() if is_bert else contextlib.nullcontext()
    t0 = time.perf_counter()
    with ctx:
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(3):
                model(*inputs)
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            y = model(*inputs)
    torch.cuda.synchronize()
    note = "mask always expanded (capturable)" if is_bert else ""
    return g.replay, lambda: y, time.perf_counter() - t0, note


def cudagraph_skips():
    try:
        from torch._dynamo.utils import counters
        return sum(counters["inductor"].get(k, 0) for k in ("cudagraph_skips",))
    except Exception:
        return 0


def torch_compiled(model, inputs, device, mode):
    skips0 = cudagraph_skips()
    cm = torch.compile(model, mode=mode, dynamic=False)
    out = {}

    def fn():
        out["y"] = cm(*inputs)

    t0 = time.perf_counter()
    fn()  # compiles
    if mode == "reduce-overhead":
        fn()  # cudagraph trees record on a later call
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
    note = "setup = first calls (compilation)"
    if mode == "reduce-overhead" and cudagraph_skips() > skips0:
        note += "; inductor skipped CUDA graphs (see the log)"
    return fn, lambda: out["y"], time.perf_counter() - t0, note
