"""Input rules for the real-architecture models (tests/models/real_arch/manifest.json names each input's kind).
Shared by gen_real_arch.py (torch, makes the models) and gen_real_arch_refs.py (the ctest fixture, numpy only)."""
import numpy as np

VOCAB = 1000


def make_input(kind, rest, batch, rng):
    """One input of shape [batch] + rest. Text masks pad the last 3*b tokens of row b (row 0 is never padded)."""
    shape = [batch] + list(rest)
    if kind == "image":
        return rng.standard_normal(shape).astype(np.float32)
    if kind == "ids":
        return rng.integers(0, VOCAB, shape).astype(np.int64)
    if kind == "mask":
        m = np.ones(shape, np.int64)
        for b in range(1, batch):
            m[b, shape[1] - 3 * b:] = 0
        return m
    if kind == "token_type":
        t = np.zeros(shape, np.int64)
        t[:, shape[1] // 2:] = 1
        return t
    if kind == "position":
        return np.tile(np.arange(shape[1], dtype=np.int64), (batch, 1))
    raise ValueError(f"unknown input kind {kind}")


def perturb(kind, x, rng):
    """The sensitivity case: only row 0 changes. Images: + 0.5 N(0, 1) noise; token ids: the last token of row 0
    (never padding) becomes another id. Other kinds stay as they are. Returns a new array."""
    y = x.copy()
    if kind == "image":
        y[0] += 0.5 * rng.standard_normal(y[0].shape).astype(np.float32)
    elif kind == "ids":
        y[0, -1] = (y[0, -1] + 1 + rng.integers(0, VOCAB - 1)) % VOCAB
        assert y[0, -1] != x[0, -1]
    return y
