#!/usr/bin/env python3
"""Writes the ONNX backend node tests of the installed onnx package as test folders.

The onnx 1.23 wheel ships the node test *definitions* (onnx/backend/test/case/node/*.py) but not their data
folder (onnx/backend/test/data/node/ is absent from the wheel), so this script regenerates it in upstream's layout:

    OUT/test_X/model.onnx
    OUT/test_X/test_data_set_0/{input_N.pb, output_N.pb}

Tensor inputs/outputs are serialized TensorProtos, sequences SequenceProtos, optionals OptionalProtos, exactly as
onnx.backend.test.cmd_tools does for model tests. NumPy's global RNG is seeded first, so the data is the same on
every run (upstream's committed data used another random draw of the same test definitions).

It also writes OUT/schemas.json: every operator schema of the installed onnx, `{"Op" or "domain.Op": [since
versions]}`, so the runner can show which ONNX versions of an op kiln's registry does not list.

Usage: gen_node_tests.py OUT_DIR   (writes OUT_DIR/.stamp last, so a rerun with the same versions is skipped)
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import warnings

import numpy as np


def _serialize(value, vi) -> bytes:
    from onnx import TensorProto, numpy_helper

    t = vi.type
    if t.HasField("map_type"):
        return numpy_helper.from_dict(value, vi.name).SerializeToString()
    if t.HasField("sequence_type"):
        return numpy_helper.from_list(value, vi.name).SerializeToString()
    if t.HasField("optional_type"):
        return numpy_helper.from_optional(value, vi.name).SerializeToString()
    if isinstance(value, TensorProto):
        return value.SerializeToString()
    return numpy_helper.from_array(np.asarray(value), vi.name).SerializeToString()


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = sys.argv[1]
    import onnx
    import onnx.defs
    from onnx.backend.test.case import node as node_cases

    stamp = os.path.join(out, ".stamp")
    want = f"onnx {onnx.__version__}, numpy {np.__version__}, seed 0; gen_node_tests v2\n"
    if os.path.exists(stamp) and open(stamp).read() == want:
        print(f"node tests already generated in {out} ({want.strip()})")
        return 0

    np.random.seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = node_cases.collect_testcases()
    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    n = 0
    for case in cases:
        if case.kind != "node" or case.model is None:
            continue
        d = os.path.join(tmp, case.name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "model.onnx"), "wb") as f:
            f.write(case.model.SerializeToString())
        g = case.model.graph
        for i, (inputs, outputs) in enumerate(case.data_sets):
            ds = os.path.join(d, f"test_data_set_{i}")
            os.makedirs(ds, exist_ok=True)
            for j, v in enumerate(inputs):
                with open(os.path.join(ds, f"input_{j}.pb"), "wb") as f:
                    f.write(_serialize(v, g.input[j]))
            for j, v in enumerate(outputs):
                with open(os.path.join(ds, f"output_{j}.pb"), "wb") as f:
                    f.write(_serialize(v, g.output[j]))
        n += 1
    schemas: dict[str, list[int]] = {}
    for sc in onnx.defs.get_all_schemas_with_history():
        key = f"{sc.domain}.{sc.name}" if sc.domain not in ("", "ai.onnx") else sc.name
        schemas.setdefault(key, []).append(sc.since_version)
    with open(os.path.join(tmp, "schemas.json"), "w") as f:
        json.dump({k: sorted(set(v)) for k, v in sorted(schemas.items())}, f, indent=0)
    with open(os.path.join(tmp, ".stamp"), "w") as f:
        f.write(want)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    print(f"wrote {n} node tests to {out} ({want.strip()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
