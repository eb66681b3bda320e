"""Real-architecture test models: small configurations of ResNet-18, MobileNetV2, EfficientNet-B0, ViT, Swin, BERT,
GPT-2 (causal decoder) and a T5 encoder with seeded random weights, each exported from PyTorch by BOTH exporters:

  <name>_dynamo.onnx       torch.onnx.export(..., dynamo=True)   (torch.export + onnxscript, opset 20, IR 10)
  <name>_torchscript.onnx  torch.onnx.export(..., dynamo=False)  (TorchScript exporter, opset 17)

with a dynamic batch dim (dynamo: torch.export.Dim.DYNAMIC; TorchScript: dynamic_axes "batch").
The files and manifest.json (inputs, their kinds, outputs, seeds, numerics, sizes, ops) are committed under
tests/models/real_arch/; torch is not needed to run the tests: tests/models/gen_real_arch_refs.py (the ctest fixture)
makes inputs and ONNX Runtime reference outputs from the committed files. Used by tests/unit/test_real_arch.cpp;
docs/models.md says what each model is and why the weights look as they do.

Made with: torch 2.9.1 (CPU), torchvision 0.24.1, transformers 4.57.6, onnxscript 0.7.2, onnx 1.23.2,
onnxruntime 1.23.2 (the venv at /work/torchenv on the development machine). To remake all, or some:

    /work/torchenv/bin/python tests/models/gen_real_arch.py [OUT_DIR [NAME ...]]   # default tests/models/real_arch
    /work/torchenv/bin/python tests/models/gen_real_arch.py OUT_DIR --probe [NAME ...]   # numerics only

Seeds: torch.manual_seed(SEEDS[name]) before each model is constructed and initialized (SEEDS below); the same
weights go to both exporters. Weights: Linear / conv ~ N(0, (gain / sqrt(fan_in))^2), norm scales ~ U(0.5, 1.5),
biases ~ U(-0.2, 0.2), embeddings ~ N(0, 1); CNNs: BatchNorm statistics calibrated on random inputs, small
residual-branch scales, logits with an input-dependent part of std 1 plus a per-class offset of 2..4; ViT / Swin:
logits scaled to std 2. numerics() asserts the premises of the tests (FP32 margin, PyTorch float16 / bfloat16 error
within the tolerance table's bounds, input sensitivity). The script checks that each export loads in ONNX Runtime
and matches PyTorch at batch 1 and 3, that its size is <= 2 MB and the total <= 20 MB.
"""
import contextlib
import copy
import json
import math
import os
import sys
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torchvision
import transformers
from torch import nn
from torchvision.models import SwinTransformer, VisionTransformer, mobilenet_v2
from torchvision.models.efficientnet import EfficientNet, MBConv, _efficientnet_conf
from torchvision.models.mobilenetv2 import InvertedResidual
from torchvision.models.resnet import BasicBlock, ResNet
from transformers import masking_utils
from transformers.pytorch_utils import Conv1D

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from real_arch_inputs import VOCAB, make_input, perturb  # noqa: E402

warnings.filterwarnings("ignore")

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "real_arch")
SEEDS = {"resnet18": 101, "mobilenet_v2": 102, "efficientnet_b0": 103, "vit": 104, "swin": 105, "bert": 106,
         "gpt2": 107, "t5_encoder": 108}
SEQ = 16
MAX_FILE, MAX_TOTAL = 2 << 20, 20 << 20


# ---- weight initialization ------------------------------------------------------------------------------------------
def init_weights(model, gain=1.0, emb_std=1.0):
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            fan_in = m.weight[0].numel()
            nn.init.normal_(m.weight, 0.0, gain / math.sqrt(fan_in))
            if m.bias is not None:
                nn.init.uniform_(m.bias, -0.2, 0.2)
        elif isinstance(m, Conv1D):  # GPT-2's transposed linear: weight [in, out]
            nn.init.normal_(m.weight, 0.0, gain / math.sqrt(m.weight.shape[0]))
            nn.init.uniform_(m.bias, -0.2, 0.2)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, emb_std)
        elif isinstance(m, (nn.BatchNorm2d, nn.LayerNorm)) or type(m).__name__ == "T5LayerNorm":
            if getattr(m, "weight", None) is not None:
                nn.init.uniform_(m.weight, 0.5, 1.5)
            if getattr(m, "bias", None) is not None:
                nn.init.uniform_(m.bias, -0.2, 0.2)
    # Parameters outside modules (ViT's class token and position embedding, Swin's relative position bias table).
    for name, p in model.named_parameters(recurse=True):
        if any(k in name for k in ("class_token", "pos_embedding", "relative_position_bias_table")):
            nn.init.normal_(p, 0.0, 0.5)


@torch.no_grad()
def calibrate_bn(model, shape, steps=4):
    """BatchNorm running statistics from train-mode passes on random inputs (cumulative average)."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    for _ in range(steps):
        model(torch.randn(8, *shape))
    model.eval()


def small_residual_gamma(model, lo=0.05, hi=0.15):
    """The last BatchNorm of every residual branch gets a small scale (torchvision ResNet's zero_init_residual idea,
    not quite zero): without it a random BN network is chaotic (each layer amplifies perturbations, rounding errors
    included), and no FP16 / BF16 engine of it could stay within the tolerance table's bounds."""
    for m in model.modules():
        if isinstance(m, BasicBlock):
            bn = m.bn2
        elif isinstance(m, InvertedResidual) and m.use_res_connect:
            bn = m.conv[-1]
        elif isinstance(m, MBConv) and m.use_res_connect:
            bn = m.block[-1][1]
        else:
            continue
        nn.init.uniform_(bn.weight, lo, hi)


@torch.no_grad()
def scale_head(model, head, shape, target_std=2.0):
    y = model(torch.randn(8, *shape))
    s = target_std / float(y.std())
    head.weight.mul_(s)
    head.bias.mul_(s)


@torch.no_grad()
def set_head(model, head, shape, offset=(2.0, 4.0)):
    """Classifier head: the input-dependent part of the logits gets std 1 over random inputs, and each class a
    constant offset of magnitude U(offset) and random sign, so the logits are far from zero: the input-dependent part
    is what the sensitivity checks see, the offset keeps the relative-L2 bounds of FP16 / BF16 within reach of a
    random deep CNN (docs/models.md)."""
    y = model(torch.randn(32, *shape))
    s = 1.0 / float(y.std(0).mean())
    head.weight.mul_(s)
    head.bias.mul_(s)
    mean = y.mean(0) * s
    c = head.bias.numel()
    target = torch.empty(c).uniform_(*offset) * torch.where(torch.rand(c) < 0.5, -1.0, 1.0)
    head.bias.add_(target - mean)


# ---- the models -----------------------------------------------------------------------------------------------------
class SmallResNet(ResNet):
    """torchvision's ResNet-18 (BasicBlock, [2, 2, 2, 2], its _make_layer and forward) at widths 12/24/48/96; the
    torchvision constructor fixes the widths at 64..512."""

    def __init__(self, widths=(12, 24, 48, 96), layers=(2, 2, 2, 2), num_classes=10):
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes, self.dilation, self.groups, self.base_width = widths[0], 1, 1, 64
        self.conv1 = nn.Conv2d(3, widths[0], kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(BasicBlock, widths[0], layers[0])
        self.layer2 = self._make_layer(BasicBlock, widths[1], layers[1], stride=2)
        self.layer3 = self._make_layer(BasicBlock, widths[2], layers[2], stride=2)
        self.layer4 = self._make_layer(BasicBlock, widths[3], layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[3], num_classes)


def image_model(model, head, hw, cnn=True):
    """CNNs: He-scaled weights, small residual-branch scales, calibrated BatchNorm, logits offset per class.
    Transformers (ViT, Swin; LayerNorm, no BatchNorm): unit-gain weights, logits scaled to std 2 as they come (their
    class-token / pooled features carry a large input-independent part of their own)."""
    init_weights(model, gain=math.sqrt(2.0) if cnn else 1.0)
    if cnn:
        small_residual_gamma(model)
        calibrate_bn(model, (3, hw, hw))
        set_head(model, head, (3, hw, hw))
    else:
        scale_head(model, head, (3, hw, hw))
    return model


def make_resnet18():
    m = SmallResNet()
    return image_model(m, m.fc, 64), {"input": ("image", [3, 64, 64])}, ["logits"]


def make_mobilenet_v2():
    # torchvision's MobileNetV2 at width 0.25, its first 4 stages (10 of 17 inverted residual blocks) and the
    # 1280-channel head: the full depth is beyond the BF16 bound with random weights (docs/models.md).
    setting = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2]]
    m = mobilenet_v2(width_mult=0.25, num_classes=10, inverted_residual_setting=setting)
    return image_model(m, m.classifier[1], 64), {"input": ("image", [3, 64, 64])}, ["logits"]


def make_efficientnet_b0():
    # torchvision's EfficientNet-B0 block list (MBConv with squeeze-excitation, SiLU, stochastic depth) at width
    # 0.25 and depth 0.5, its first 4 of 7 stages (the full depth is beyond the BF16 bound with random weights).
    setting, _ = _efficientnet_conf("efficientnet_b0", width_mult=0.25, depth_mult=0.5)
    setting = setting[:4]
    m = EfficientNet(setting, dropout=0.2, num_classes=10)
    return image_model(m, m.classifier[1], 64), {"input": ("image", [3, 64, 64])}, ["logits"]


def make_vit():
    m = VisionTransformer(image_size=32, patch_size=4, num_layers=2, num_heads=4, hidden_dim=64, mlp_dim=128,
                          num_classes=10)
    return image_model(m, m.heads.head, 32, cnn=False), {"input": ("image", [3, 32, 32])}, ["logits"]


def make_swin():
    # swin_t's structure (patch merging, shifted windows with the attention mask, relative position bias) at
    # 2 stages: 32x32 input, patch 2 -> 16x16 tokens, window 4 (shift 2) -> 8x8 after merging.
    m = SwinTransformer(patch_size=[2, 2], embed_dim=32, depths=[2, 2], num_heads=[2, 4], window_size=[4, 4],
                        num_classes=10)
    return image_model(m, m.head, 32, cnn=False), {"input": ("image", [3, 32, 32])}, ["logits"]


class BertWrap(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, input_ids, attention_mask, token_type_ids):
        out = self.m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                     return_dict=False)
        return out[0], out[1]


class Gpt2Wrap(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, input_ids, attention_mask, position_ids):
        return self.m(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                      use_cache=False, return_dict=False)[0]


class T5Wrap(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, input_ids, attention_mask):
        return self.m(input_ids=input_ids, attention_mask=attention_mask, return_dict=False)[0]


def make_bert():
    cfg = transformers.BertConfig(vocab_size=VOCAB, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                  intermediate_size=128, max_position_embeddings=64, type_vocab_size=2)
    m = transformers.BertModel(cfg).eval()  # default attention implementation (sdpa)
    init_weights(m, gain=1.5)
    ins = {"input_ids": ("ids", [SEQ]), "attention_mask": ("mask", [SEQ]), "token_type_ids": ("token_type", [SEQ])}
    return BertWrap(m).eval(), ins, ["last_hidden_state", "pooler_output"]


def make_gpt2():
    cfg = transformers.GPT2Config(vocab_size=VOCAB, n_positions=64, n_embd=64, n_layer=2, n_head=4,
                                  resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    m = transformers.GPT2Model(cfg).eval()
    init_weights(m, gain=1.5)
    ins = {"input_ids": ("ids", [SEQ]), "attention_mask": ("mask", [SEQ]), "position_ids": ("position", [SEQ])}
    return Gpt2Wrap(m).eval(), ins, ["last_hidden_state"]


def make_t5_encoder():
    cfg = transformers.T5Config(vocab_size=VOCAB, d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4,
                                relative_attention_num_buckets=32, relative_attention_max_distance=64,
                                feed_forward_proj="gated-gelu", dropout_rate=0.0)
    m = transformers.T5EncoderModel(cfg).eval()
    init_weights(m, gain=1.0)
    ins = {"input_ids": ("ids", [SEQ]), "attention_mask": ("mask", [SEQ])}
    return T5Wrap(m).eval(), ins, ["last_hidden_state"]


MAKERS = {"resnet18": make_resnet18, "mobilenet_v2": make_mobilenet_v2, "efficientnet_b0": make_efficientnet_b0,
          "vit": make_vit, "swin": make_swin, "bert": make_bert, "gpt2": make_gpt2, "t5_encoder": make_t5_encoder}


def _broadcast_for_bhqkv(mask_function, bh_indices=True):
    """transformers.masking_utils._vmap_for_bhqkv without torch.vmap, which the TorchScript tracer cannot trace
    (RuntimeError unordered_map::at): the same [batch, head, q, kv] boolean mask by broadcasting the index vectors."""

    def inner(batch_idx, head_idx, q_idx, kv_idx):
        q, kv = q_idx[:, None], kv_idx[None, :]
        if bh_indices:
            b, h = batch_idx[:, None, None, None], head_idx[None, :, None, None]
            out = mask_function(b, h, q[None, None], kv[None, None])
            return out.expand(batch_idx.shape[0], head_idx.shape[0], q_idx.shape[0], kv_idx.shape[0])
        return mask_function(None, None, q, kv).expand(q_idx.shape[0], kv_idx.shape[0])

    return inner


@contextlib.contextmanager
def vmap_free_masks():
    """Without vmap, and with plain tensor indexing (its TransformGetItemToIndex context exists for vmap and does not
    trace either)."""
    saved = masking_utils._vmap_for_bhqkv, masking_utils.TransformGetItemToIndex
    masking_utils._vmap_for_bhqkv, masking_utils.TransformGetItemToIndex = _broadcast_for_bhqkv, contextlib.nullcontext
    try:
        yield
    finally:
        masking_utils._vmap_for_bhqkv, masking_utils.TransformGetItemToIndex = saved


def export(name, model, ins, outs, out_dir):
    rng = np.random.default_rng(SEEDS[name])
    ex = {n: torch.from_numpy(make_input(k, r, 2, rng)) for n, (k, r) in ins.items()}
    args = tuple(ex.values())
    names = list(ins)
    files = {}
    path = os.path.join(out_dir, f"{name}_torchscript.onnx")
    # GPT-2's causal mask (transformers' masking_utils) is built with torch.vmap; TorchScript needs it without.
    with vmap_free_masks() if name == "gpt2" else contextlib.nullcontext():
        torch.onnx.export(model, args, path, dynamo=False, opset_version=17, input_names=names, output_names=outs,
                          dynamic_axes={n: {0: "batch"} for n in names + outs}, do_constant_folding=True)
    files["torchscript"] = path
    path = os.path.join(out_dir, f"{name}_dynamo.onnx")
    # Dim.DYNAMIC, not Dim("batch", min=1): torch.export adds guards such as batch != 1 (ViT, BERT) or batch > 1
    # (Swin) and refuses a named Dim whose range they cut; the ONNX graph stays symbolic in the batch, and check()
    # runs it at batch 1 and 3 in ONNX Runtime against PyTorch.
    # GPT-2's vmap mask fails here too with a dynamic batch ("8*s44 ... is not tracked with proxy"): same patch.
    with vmap_free_masks() if name == "gpt2" else contextlib.nullcontext():
        torch.onnx.export(model, args, path, dynamo=True, input_names=names, output_names=outs, external_data=False,
                          dynamic_shapes=tuple({0: torch.export.Dim.DYNAMIC} for _ in names))
    files["dynamo"] = path
    return files


def _run(model, feeds, dtype=torch.float32):
    args = [torch.from_numpy(v) for v in feeds.values()]
    y = model(*[a.to(dtype) if a.is_floating_point() else a for a in args])
    return [t.double() for t in (y if isinstance(y, tuple) else (y,))]


@torch.no_grad()
def numerics(model, ins, batch=3, seed=7):
    """What float32 / float16 / bfloat16 arithmetic does to this model, measured in PyTorch against float64 on
    random inputs: the FP32 element-wise margin (max |err| / (atol + rtol |ref|) with the tolerance table's FP32 row;
    must stay well below 1 so that any correct float32 implementation passes), and the relative L2 error of the whole
    model cast to float16 / bfloat16 (every op rounds: a pessimistic stand-in for kiln's autocast engines, which must
    stay within the FP16 / BF16 bounds). Also the input sensitivity: the relative change of row 0's outputs when row
    0's inputs change as in the tests (real_arch_inputs.perturb)."""
    rng = np.random.default_rng(seed)
    feeds = {n: make_input(k, r, batch, rng) for n, (k, r) in ins.items()}
    ref = _run(copy.deepcopy(model).double(), feeds, torch.float64)
    base = _run(model, feeds)
    res = {"fp32_margin": max(float(((o - r).abs() / (1e-5 + 1e-4 * r.abs())).max()) for o, r in zip(base, ref))}
    for key, dt in (("fp16_rel_l2", torch.float16), ("bf16_rel_l2", torch.bfloat16)):
        res[key] = max(float((o - r).norm() / r.norm()) for o, r in zip(_run(copy.deepcopy(model).to(dt), feeds, dt), ref))
    alt = {n: perturb(ins[n][0], v, rng) for n, v in feeds.items()}
    res["sensitivity"] = min(float((m[0] - o[0]).norm() / o[0].norm()) for m, o in zip(_run(model, alt), base))
    return {k: float(f"{v:.3g}") for k, v in res.items()}


@torch.no_grad()
def check(name, model, ins, outs, files):
    info = {}
    for exporter, path in files.items():
        size = os.path.getsize(path)
        assert size <= MAX_FILE, (path, size)
        mp = onnx.load(path)
        onnx.checker.check_model(mp)
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        assert [i.name for i in sess.get_inputs()] == list(ins), (path, [i.name for i in sess.get_inputs()])
        assert [o.name for o in sess.get_outputs()] == outs, (path, [o.name for o in sess.get_outputs()])
        for batch in (1, 3):
            rng = np.random.default_rng(1000 + batch)
            feeds = {n: make_input(k, r, batch, rng) for n, (k, r) in ins.items()}
            want = model(*[torch.from_numpy(v) for v in feeds.values()])
            want = want if isinstance(want, tuple) else (want,)
            got = sess.run(None, feeds)
            for o, w, g in zip(outs, want, got):
                w = w.numpy()
                assert g.shape == w.shape, (path, o, g.shape, w.shape)
                err = float(np.abs(g - w).max())
                assert err <= 1e-3 * max(1.0, float(np.abs(w).max())), (path, o, batch, err)
                assert w.std() > 0.1, (path, o, batch, w.std())
        ops = sorted({n.op_type for n in mp.graph.node})
        info[exporter] = {"file": os.path.basename(path), "bytes": size,
                          "opset": next(o.version for o in mp.opset_import if o.domain in ("", "ai.onnx")),
                          "ir_version": mp.ir_version, "functions": len(mp.functions), "nodes": len(mp.graph.node),
                          "ops": ops}
        print(f"  {exporter:12s} {size / 1024:7.1f} KiB  opset {info[exporter]['opset']}  "
              f"{len(mp.graph.node)} nodes  {len(mp.functions)} functions", flush=True)
    return info


def main():
    os.makedirs(OUT, exist_ok=True)
    only = sys.argv[2:]  # optional model names, for remaking a few (the manifest keeps the others)
    man_path = os.path.join(OUT, "manifest.json")
    manifest = {"models": {}}
    if only and os.path.exists(man_path):
        with open(man_path) as f:
            manifest = json.load(f)
    manifest["made_with"] = {"torch": torch.__version__, "torchvision": torchvision.__version__,
                             "transformers": transformers.__version__, "onnx": onnx.__version__,
                             "onnxruntime": ort.__version__}
    manifest["vocab"] = VOCAB
    probe = "--probe" in only  # only print numerics(), no export
    only = [o for o in only if o != "--probe"]
    for name, make in MAKERS.items():
        if only and name not in only:
            continue
        print(name, flush=True)
        torch.manual_seed(SEEDS[name])
        model, ins, outs = make()
        model.eval()
        num = numerics(model, ins)
        print("  numerics", num, flush=True)
        # The premises of the tests: any correct float32 implementation passes the FP32 row, the all-ops-rounding
        # float16 / bfloat16 PyTorch models stay within the FP16 / BF16 rows, and outputs follow the inputs.
        assert num["fp32_margin"] <= 0.3 and num["fp16_rel_l2"] <= 5e-3 and num["bf16_rel_l2"] <= 2e-2, (name, num)
        assert num["sensitivity"] >= 0.05, (name, num)
        if probe:
            continue
        files = export(name, model, ins, outs, OUT)
        manifest["models"][name] = {
            "seed": SEEDS[name], "class": type(model.m if hasattr(model, "m") else model).__name__,
            "params": sum(p.numel() for p in model.parameters()),
            "inputs": [{"name": n, "kind": k, "shape": ["batch"] + r} for n, (k, r) in ins.items()],
            "outputs": outs, "numerics": num, "exports": check(name, model, ins, outs, files)}
    if probe:
        return
    total = sum(e["bytes"] for m in manifest["models"].values() for e in m["exports"].values())
    assert total <= MAX_TOTAL, total
    print(f"total {total / 2**20:.2f} MiB", flush=True)
    with open(man_path, "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
