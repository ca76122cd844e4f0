"""Writes official.safetensors with the official `safetensors` library (run with the torch venv:
/work/venv-ref/bin/python engine/weights/testdata/make_official.py). The TS reader is tested on it, so
the reader is checked against the format's own writer, not only against our writer."""
import os
import torch
from safetensors.torch import save_file

here = os.path.dirname(os.path.abspath(__file__))
tensors = {
    # Values exactly representable in each dtype, so the test can state them.
    "a.f32": torch.tensor([[1.0, -2.5, 3.25], [0.0, 1e-3, -7.0]], dtype=torch.float32),
    "b.f16": torch.tensor([1.0, -2.0, 0.5, 65504.0, 2.0**-24], dtype=torch.float16),
    "c.bf16": torch.tensor([[1.0, -2.0], [3.140625, 2.0**100]], dtype=torch.bfloat16),
    "d.scalar": torch.tensor(42.0, dtype=torch.float32),
    "e.empty": torch.zeros((0, 4), dtype=torch.float16),
}
save_file(tensors, os.path.join(here, "official.safetensors"), metadata={"format": "pt", "note": "blockserve test"})
# A dtype we refuse (I64), beside a float we accept.
save_file(
    {"ids": torch.arange(6, dtype=torch.int64).reshape(2, 3), "w": torch.ones(2, dtype=torch.float32)},
    os.path.join(here, "official_i64.safetensors"),
)
