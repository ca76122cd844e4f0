"""Write test/fixtures/authors/*: fixtures made by the authors' own classes, not by a reimplementation.

    git clone https://github.com/itsnamgyu/block-transformer /tmp/authors && git -C /tmp/authors checkout 17842dd
    /work/venv-authors/bin/python tools/reference/make_authors_fixtures.py /tmp/authors

(venv-authors: /work/venv-ref's torch + transformers 4.39.3 plus requirements-authors.txt.) For each shape
in SHAPES (a narrow token decoder, block lengths 2 and 8, uneven depths, sequential residual): random weights
(seed fixed, rerunning rewrites identical files), their config tree as config.yaml, and in expected.json
- score: their BlockTransformer.forward() logits over whole blocks (training positions);
- generate: their generate() (batch of 1, greedy, reference positions) tokens and step logits;
- authors_scoring: their lm-eval wrappers (block_transformer_pad.py / _nopad.py) on a right-padded batch of
  two texts: the log-softmax rows their HFLM reads, per text.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
import transformers
import yaml
from safetensors.torch import save_file

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from authors_code import Shape, build_block_transformer, load_lmeval_models, wrapper_logprobs  # noqa: E402
from make_fixtures import randomize  # noqa: E402

ROOT = HERE.parents[1]
OUT = ROOT / "test" / "fixtures" / "authors"
MAX_NEW = 16
MIN_MARGIN = 1e-3
REFERENCE = f"authors' code 17842dd, transformers {transformers.__version__}, torch {torch.__version__.split('+')[0]}"

SHAPES = [
    # token decoder half as wide as the block decoder: the expansion maps 64 -> 4 x 32
    Shape("narrow_token_decoder", block_length=4, expansion_ratio=4, block_width=64, token_width=32,
          block_layers=2, token_layers=2, block_heads=4, token_heads=2),
    # L = 2, R = 3, three block-decoder layers over one token-decoder layer
    Shape("l2_uneven_depth", block_length=2, expansion_ratio=3, block_width=64, token_width=64,
          block_layers=3, token_layers=1, block_heads=4, token_heads=4),
    # L = 8, sequential residual (use_parallel_residual false), YAML without random_pad_first_block
    Shape("l8_sequential_nopad", block_length=8, expansion_ratio=2, block_width=64, token_width=64,
          block_layers=1, token_layers=2, block_heads=4, token_heads=4, parallel_residual=False,
          pad_first_block=None),
]

torch.set_grad_enabled(False)
torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)


def config_tree(s: Shape) -> dict:
    """The authors' trainer-YAML shape (conf/trainer/block_*.yaml)."""
    def dec(d, layers, heads):
        return {"vocab_size": s.vocab_size, "num_hidden_layers": layers, "hidden_size": d,
                "num_attention_heads": heads, "intermediate_size": 4 * d,
                "use_parallel_residual": s.parallel_residual}
    tree = {"name": s.name, "block_length": s.block_length, "max_length": 2048}
    if s.pad_first_block is not None:
        tree["random_pad_first_block"] = s.pad_first_block
    tree.update({
        "tokenizer": {"embedder": "pythia", "token_decoder": "pythia"},
        "embedder": {"cls": "lookup", "n_embedding_tokens": 1, "projection_method": "concat",
                     "config": {"vocab_size": s.vocab_size, "hidden_size": s.block_width // s.block_length}},
        "block_decoder": {"cls": "gpt-neo-x", "config": dec(s.block_width, s.block_layers, s.block_heads)},
        "token_decoder": {"cls": "gpt-neo-x", "expansion_method": "expansion_layer",
                          "expansion_ratio": s.expansion_ratio, "decoding_strategy": "prefix",
                          "config": dec(s.token_width, s.token_layers, s.token_heads)},
        "precision": "fp32",
    })
    return tree


def write_f32(path: Path, t: torch.Tensor) -> list[int]:
    arr = t.detach().to(torch.float32).numpy().astype("<f4")
    path.write_bytes(arr.tobytes())
    return list(arr.shape)


def ids(seed: int, n: int) -> list[int]:
    # 2..257: never EOS/pad (0) or <|padding|> (1), and inside the byte tokenizer's ids
    return [int(x) for x in np.random.default_rng(seed).integers(2, 258, size=n)]


def forward_logits(model, seq: list[int], L: int) -> torch.Tensor:
    x = torch.tensor(seq).view(1, -1, L)
    out = model(input_ids=x, attention_mask=torch.ones_like(x),
                block_attention_mask=torch.ones(1, x.shape[1], dtype=torch.long), skip_padding_blocks=False)
    return out["logits"].reshape(-1, model.token_decoder.config.vocab_size)


def generate(model, prompt: list[int]) -> tuple[list[int], torch.Tensor]:
    """Their generate() with a hook on embed_out: one logits row per generated token (EOS ends the run)."""
    captured: list[torch.Tensor] = []
    hook = model.token_decoder.embed_out.register_forward_hook(lambda _m, _i, o: captured.append(o.reshape(-1, o.shape[-1])[-1:].clone()))
    try:
        out = model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                             max_length=len(prompt) + MAX_NEW)
    finally:
        hook.remove()
    new = out[0, len(prompt):].tolist()
    if 0 in new:
        new = new[:new.index(0) + 1]
    return new, torch.cat(captured)[:len(new)]


def margin(logits: torch.Tensor) -> float:
    top2 = logits.topk(2, dim=-1).values
    return float((top2[:, 0] - top2[:, 1]).min())


def make(repo: Path, s: Shape, seed: int, lmeval, log: list[str]) -> None:
    d = OUT / s.name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    model = build_block_transformer(repo, s)
    randomize(model, seed)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(d / "model.safetensors"), metadata={"format": "pt"})
    (d / "config.yaml").write_text(yaml.safe_dump(config_tree(s), sort_keys=False))
    L = s.block_length
    exp = {"kind": "block", "vocab_size": s.vocab_size, "reference": REFERENCE, "score": [], "generate": [],
           "authors_scoring": []}

    for i, blocks in enumerate((3, 5)):
        seq = ids(seed * 100 + i, blocks * L)
        shape = write_f32(d / f"score_{i}.f32", forward_logits(model, seq, L))
        exp["score"].append({"input_ids": seq, "logits": f"score_{i}.f32", "shape": shape})

    # Their generate() always left-pads to a multiple of L; a model trained without first-block padding is
    # only given prompts of whole blocks here, where padding or not is the same.
    lengths = [1, 2 * L + 1, 4 * L - 1] if s.pad_first_block else [L, 2 * L, 3 * L]
    for gi, n in enumerate(lengths):
        for attempt in range(100):
            prompt = ids(seed * 1000 + 10 * gi + 100000 * attempt, n)
            out, logits = generate(model, prompt)
            if margin(logits) >= MIN_MARGIN:
                break
        assert logits.argmax(-1).tolist() == out
        shape = write_f32(d / f"gen_{gi}.f32", logits)
        exp["generate"].append({"position_mode": "reference", "pad_first_block": bool(s.pad_first_block),
                                "prompt_ids": prompt, "max_new_tokens": MAX_NEW, "output_ids": out,
                                "step_logits": f"gen_{gi}.f32", "step_logits_shape": shape})
        log.append(f"[{s.name}] generate prompt {n}: {len(out)} tokens, min margin {margin(logits):.4f}")

    texts = [ids(seed * 7 + 1, 3 * L + 1), ids(seed * 7 + 2, 5 * L - 1)]
    for wrapper in ("pad", "nopad"):
        for ti, (text, rows) in enumerate(zip(texts, wrapper_logprobs(lmeval[wrapper], model, texts))):
            name = f"scoring_{wrapper}_{ti}.f32"
            shape = write_f32(d / name, rows)
            exp["authors_scoring"].append({"wrapper": wrapper, "input_ids": text, "logprobs": name, "shape": shape})
        log.append(f"[{s.name}] authors' {wrapper} wrapper: texts of {[len(t) for t in texts]} tokens in one batch")
    (d / "expected.json").write_text(json.dumps(exp, indent=1) + "\n")


def main() -> None:
    repo = Path(sys.argv[1])
    lmeval = load_lmeval_models(repo)
    log = [REFERENCE]
    for i, s in enumerate(SHAPES):
        make(repo, s, 11 + i, lmeval, log)
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    log.append(f"authors fixtures total size: {total / 1e6:.2f} MB")
    print("\n".join(log))


if __name__ == "__main__":
    main()
