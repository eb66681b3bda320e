"""Exports full-size ResNet-50 (torchvision, random weights) and BERT-base (Hugging Face BertModel default config,
random weights, sequence 128) to ONNX with a dynamic batch, for bench/cpu_vs_ort.py. Needs torch, torchvision and
transformers (run it with that Python; nothing it writes is committed):

    /work/torchenv/bin/python bench/export_torch_models.py OUT_DIR [--models resnet50,bert_base,resnet18,bert_small]

Prints one JSON line per model: {"name", "path", "inputs": {name: [dims with batch as -1]}}.
The TorchScript exporter (dynamo=False, opset 17) is used: LayerNormalization is one op there, as ORT also sees it.
"""
import argparse
import json
import os

import torch


def export(model, args, path, input_names, dynamic):
    model.eval()
    with torch.no_grad():
        torch.onnx.export(model, args, path, input_names=input_names, output_names=["out"], opset_version=17,
                          dynamic_axes=dynamic, dynamo=False)


def resnet(name, out):
    import torchvision
    torch.manual_seed(0)
    m = getattr(torchvision.models, name)(weights=None)
    path = os.path.join(out, f"{name}.onnx")
    export(m, (torch.randn(1, 3, 224, 224),), path, ["input"], {"input": {0: "batch"}, "out": {0: "batch"}})
    return {"name": name, "path": path, "inputs": {"input": [-1, 3, 224, 224]}}


def bert(name, out, seq=128):
    from transformers import BertConfig, BertModel
    torch.manual_seed(0)
    cfg = BertConfig() if name == "bert_base" else BertConfig(hidden_size=256, num_hidden_layers=4,
                                                                num_attention_heads=4, intermediate_size=1024)
    cfg.attn_implementation = "eager"
    m = BertModel(cfg, add_pooling_layer=False)

    class Wrap(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask):
            return self.m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    ids = torch.randint(0, cfg.vocab_size, (1, seq))
    mask = torch.ones(1, seq, dtype=torch.int64)
    path = os.path.join(out, f"{name}.onnx")
    export(Wrap(m), (ids, mask), path, ["input_ids", "attention_mask"],
           {"input_ids": {0: "batch"}, "attention_mask": {0: "batch"}, "out": {0: "batch"}})
    return {"name": name, "path": path, "inputs": {"input_ids": [-1, seq], "attention_mask": [-1, seq]}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--models", default="resnet50,bert_base")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for name in a.models.split(","):
        info = resnet(name, a.out) if name.startswith("resnet") else bert(name, a.out)
        print(json.dumps(info), flush=True)


if __name__ == "__main__":
    main()
