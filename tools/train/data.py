"""Token streams and windows shared by training and evaluation (so both see exactly the same data)."""
from __future__ import annotations

import json
import os

import numpy as np
from tokenizers import Tokenizer

from models import EOS_ID, IGNORE


def read_split(corpus: str, split: str) -> list[str]:
    with open(os.path.join(corpus, f"{split}.jsonl")) as fh:
        return [json.loads(l) for l in fh]


def stream(tok: Tokenizer, cookies: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Cookies joined as c1 EOS c2 EOS ... ; returns (ids, start offset of each cookie)."""
    ids, starts = [], []
    for enc in tok.encode_batch(cookies, add_special_tokens=False):
        starts.append(len(ids))
        ids.extend(enc.ids)
        ids.append(EOS_ID)
    return np.asarray(ids, dtype=np.int64), np.asarray(starts, dtype=np.int64)


def val_chunks(ids: np.ndarray, ctx: int) -> np.ndarray:
    """The validation split as non-overlapping ctx-token windows from its start (the tail is dropped)."""
    n = len(ids) // ctx
    return ids[: n * ctx].reshape(n, ctx)


class TrainWindows:
    """Training windows: each starts at a cookie start, left-padded with k in 0..L-1 EOS tokens, the way
    the engine left-pads a prompt to a whole first block; pads are never targets."""

    def __init__(self, ids: np.ndarray, starts: np.ndarray, ctx: int, L: int, seed: int):
        self.ids, self.ctx, self.L = ids, ctx, L
        self.starts = starts[starts + ctx <= len(ids)]
        self.rng = np.random.default_rng(seed)

    def batch(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        x = np.empty((size, self.ctx), dtype=np.int64)
        y = np.empty_like(x)
        for i in range(size):
            s = int(self.rng.choice(self.starts))
            k = int(self.rng.integers(0, self.L))
            x[i, :k] = EOS_ID
            x[i, k:] = self.ids[s: s + self.ctx - k]
            y[i] = x[i]
            y[i, :k] = IGNORE
        return x, y
