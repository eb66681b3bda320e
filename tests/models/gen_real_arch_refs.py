"""The ctest fixture of the real-architecture tests: for each committed model in argv[1] (tests/models/real_arch,
listed by its manifest.json) writes seeded inputs and ONNX Runtime 1.23.2 (CPU) reference outputs into
argv[2]/<model>_<exporter>/<case>/ as in_<input>.npy and out_<output>.npy, for the cases
  b1      batch 1
  b3      batch 3 (text models: rows 1 and 2 padded by the attention mask)
  b3_alt  b3 with only row 0 changed (real_arch_inputs.perturb), for the input-sensitivity checks
and argv[2]/cases.txt with one "<model>_<exporter>" per line. tests/unit/test_real_arch.cpp reads them. Needs only
numpy, onnx and onnxruntime (the project .venv), not torch.

    .venv/bin/python tests/models/gen_real_arch_refs.py tests/models/real_arch OUT_DIR
"""
import json
import os
import sys

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from real_arch_inputs import make_input, perturb  # noqa: E402

src, out = sys.argv[1], sys.argv[2]
with open(os.path.join(src, "manifest.json")) as f:
    manifest = json.load(f)
os.makedirs(out, exist_ok=True)
so = ort.SessionOptions()
so.intra_op_num_threads = 1
cases = []
for name, m in sorted(manifest["models"].items()):
    for exporter, e in sorted(m["exports"].items()):
        tag = f"{name}_{exporter}"
        sess = ort.InferenceSession(os.path.join(src, e["file"]), so, providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(m["seed"])
        feeds = {}
        for batch in (1, 3):
            feeds[f"b{batch}"] = {i["name"]: make_input(i["kind"], i["shape"][1:], batch, rng) for i in m["inputs"]}
        feeds["b3_alt"] = {i["name"]: perturb(i["kind"], feeds["b3"][i["name"]], rng) for i in m["inputs"]}
        for case, fd in feeds.items():
            d = os.path.join(out, tag, case)
            os.makedirs(d, exist_ok=True)
            res = sess.run(None, fd)
            for n, a in fd.items():
                np.save(os.path.join(d, f"in_{n}.npy"), a)
            for o, a in zip(sess.get_outputs(), res):
                assert np.isfinite(a).all() and a.std() > 0.1, (tag, case, o.name, a.std())
                np.save(os.path.join(d, f"out_{o.name}.npy"), a)
        cases.append(tag)
with open(os.path.join(out, "cases.txt"), "w") as f:
    f.write("".join(c + "\n" for c in cases))
print(f"{len(cases)} real-architecture cases in {out}")
