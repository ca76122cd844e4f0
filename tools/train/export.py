"""Writes the trained pair in the layout the engine loads, then evaluates what was written.

usage: python export.py CORPUS_DIR TOKENIZER_JSON RUN_DIR MODELS_DIR

For each model, MODELS_DIR/<name>/ gets model.safetensors (f32, as trained; the evaluation below
reloads the written file, so it scores exactly what the engine loads),
config.yaml (block, the authors' trainer form) or config.json (vanilla, HF form), tokenizer.json and
eval.json: validation loss / perplexity on the whole held-out split, the same on a fixed subset (its
token ids included, for the engine test) and a greedy continuation of a fixed prompt.

Perplexity convention (the engine's teacher-forced scoring): the split is cut into non-overlapping
256-token windows; the block model predicts every token from position L = 4 of a window on (block 0
is never predicted), token-decoder positions 0..R+L-2 (the authors' forward()); the vanilla model
predicts every token from position 1. `vanilla_from_L` also gives the vanilla model's figure on the
block model's targets, for a like-for-like comparison.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil

import torch
import yaml
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer

from data import read_split, stream, val_chunks
from models import EOS_ID, IGNORE, BlockLM, VanillaLM
from train import RECIPE, build

NAMES = {"block": "blockserve-demo-block-2m", "vanilla": "blockserve-demo-vanilla-2m"}
SUBSET_WINDOWS = 8  # 2048 tokens: small enough for a quick engine test
PROMPT = "The meaning of life is"
GREEDY_TOKENS = 32
# Trained on 256-token windows; served with room for a full window plus a continuation (rotary has no
# table to outgrow; text past 256 tokens is out of the training distribution and degrades).
SERVED_CONTEXT = 512


def block_config(r: dict) -> dict:
    d = r["d"]
    layers = lambda n: {"num_hidden_layers": n, "hidden_size": d, "num_attention_heads": r["heads"],
                        "intermediate_size": 4 * d, "max_position_embeddings": SERVED_CONTEXT // r["L"]}
    return {
        "name": NAMES["block"],
        "block_length": r["L"],
        "max_length": SERVED_CONTEXT,
        "random_pad_first_block": True,
        # Trained with token-decoder positions 0..R+L-2 (the authors' forward()); decode the same way.
        "position_mode": "contiguous",
        "embedder": {"cls": "lookup", "projection_method": "concat",
                     "config": {"vocab_size": r["vocab"], "hidden_size": d // r["L"]}},
        "block_decoder": {"cls": "gpt-neo-x", "config": layers(r["block_layers"])},
        "token_decoder": {"cls": "gpt-neo-x", "expansion_method": "expansion_layer",
                          "expansion_ratio": r["R"], "decoding_strategy": "prefix",
                          "config": layers(r["token_layers"])},
    }


@torch.no_grad()
def window_nll(model, chunks) -> torch.Tensor:
    """[windows, predicted positions] NLL in float64 (f32 logits, as the engine)."""
    out = []
    for i in range(0, len(chunks), 16):
        x = torch.from_numpy(chunks[i: i + 16])
        out.append(model.nll(x, x).double())
    return torch.cat(out)


@torch.no_grad()
def block_nll_padded(model: BlockLM, chunks) -> torch.Tensor:
    """The authors' lm-eval convention for a model trained with first-block padding: L-1 pad tokens
    before each window, so every token but the window's first is predicted. [windows, ctx-1]."""
    L = model.L
    out = []
    for i in range(0, len(chunks), 16):
        x = torch.from_numpy(chunks[i: i + 16])
        b, T = x.shape
        pad = torch.full((b, L - 1), EOS_ID, dtype=x.dtype)
        tail = torch.full((b, (-(T + L - 1)) % L), EOS_ID, dtype=x.dtype)
        ids = torch.cat([pad, x, tail], dim=1)
        labels = ids.clone()
        labels[:, : L - 1] = IGNORE
        if tail.shape[1]:
            labels[:, -tail.shape[1]:] = IGNORE
        nll = model.nll(ids, labels).double()  # predicts ids[:, L:]: window tokens 1..T-1, then the tail
        out.append(nll[:, : T - 1])
    return torch.cat(out)


def summary(nll: torch.Tensor) -> dict:
    mean = float(nll.mean())
    return {"tokens": nll.numel(), "nll_sum": float(nll.sum()), "loss": mean, "ppl": math.exp(mean)}


@torch.no_grad()
def greedy(model, prompt: list[int], n: int, L: int | None) -> list[int]:
    """Greedy continuation recomputed from scratch each step (no cache: nothing to get wrong). The block
    model sees the prompt left-padded with token 0 to whole blocks, as the engine feeds it, and its next
    token's logits come from the teacher-forced forward with the sequence completed by zeros."""
    seq = list(prompt)
    pad = (-len(prompt)) % L if L else 0
    out = []
    for _ in range(n):
        ids = [EOS_ID] * pad + seq
        if L:
            full = ids + [EOS_ID] * ((-(len(ids) + 1)) % L + 1)  # room for the next token's row
            logits = model.logits(torch.tensor([full]))[0]
            row = logits[len(ids) - L]
        else:
            row = model.lm(input_ids=torch.tensor([ids])).logits[0, -1]
        nxt = int(row.argmax())
        out.append(nxt)
        seq.append(nxt)
        if nxt == EOS_ID:
            break
    return out


SAMPLE_PROMPTS = ["The meaning of life is", "A computer", "Q: Why did the chicken cross the road?\nA:"]


@torch.no_grad()
def sample(model, prompt: list[int], n: int, L: int | None, gen: torch.Generator, temperature=0.8, top_k=40) -> list[int]:
    """Like greedy() but drawing from the top-k tokens at the given temperature (for the model card)."""
    seq, pad, out = list(prompt), ((-len(prompt)) % L if L else 0), []
    for _ in range(n):
        ids = [EOS_ID] * pad + seq
        if L:
            full = ids + [EOS_ID] * ((-(len(ids) + 1)) % L + 1)
            row = model.logits(torch.tensor([full]))[0][len(ids) - L]
        else:
            row = model.lm(input_ids=torch.tensor([ids])).logits[0, -1]
        top = torch.topk(row / temperature, top_k)
        nxt = int(top.indices[torch.multinomial(torch.softmax(top.values, -1), 1, generator=gen)])
        out.append(nxt)
        seq.append(nxt)
        if nxt == EOS_ID:
            break
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus")
    ap.add_argument("tokenizer")
    ap.add_argument("run")
    ap.add_argument("models")
    args = ap.parse_args()
    torch.set_num_threads(1)
    r = dict(RECIPE)
    tok = Tokenizer.from_file(args.tokenizer)
    val_ids, _ = stream(tok, read_split(args.corpus, "val"))
    chunks = val_chunks(val_ids, r["ctx"])
    run = json.load(open(os.path.join(args.run, "run.json")))
    block, vanilla = build(r)
    models = {"block": block, "vanilla": vanilla}
    prompt_ids = tok.encode(PROMPT, add_special_tokens=False).ids
    results = {}
    for kind, m in models.items():
        m.load_state_dict(torch.load(os.path.join(args.run, f"{kind}.pt")))
        out = os.path.join(args.models, NAMES[kind])
        os.makedirs(out, exist_ok=True)
        state = {k: v.float().contiguous() for k, v in m.export_state().items()}
        save_file(state, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
        shutil.copyfile(args.tokenizer, os.path.join(out, "tokenizer.json"))
        if kind == "block":
            with open(os.path.join(out, "config.yaml"), "w") as fh:
                fh.write(f"# {NAMES['block']}: a small Block Transformer trained by tools/train on Debian's fortunes\n"
                         "# (see README.md beside this file). The authors' trainer-config form.\n")
                yaml.safe_dump(block_config(r), fh, sort_keys=False)
        else:
            full = m.cfg.to_dict()
            keep = ["vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                    "hidden_act", "rotary_pct", "rotary_emb_base", "layer_norm_eps", "use_parallel_residual",
                    "tie_word_embeddings", "bos_token_id", "eos_token_id", "initializer_range"]
            cfg = {"architectures": ["GPTNeoXForCausalLM"], "model_type": "gpt_neox", "torch_dtype": "float32",
                   "max_position_embeddings": SERVED_CONTEXT, "attention_dropout": 0.0, "hidden_dropout": 0.0,
                   **{k: full[k] for k in keep}}
            with open(os.path.join(out, "config.json"), "w") as fh:
                json.dump(cfg, fh, indent=2, sort_keys=True)
        # Evaluate exactly what was written.
        written = {k: v.float() for k, v in load_file(os.path.join(out, "model.safetensors")).items()}
        target = m if kind == "block" else m.lm
        missing, unexpected = target.load_state_dict(written, strict=False)
        assert not unexpected and all("rotary" in k or "attention.bias" in k or "masked_bias" in k
                                      or k == "block_decoder.gpt_neox.embed_in.weight" for k in missing), missing
        m.eval()
        nll = window_nll(m, chunks)
        res = {"model": NAMES[kind], "weights_dtype": "f32",
               "convention": f"non-overlapping {r['ctx']}-token windows of the validation split; predicted "
                             f"positions {m.first_predicted()}..{r['ctx'] - 1} of each window",
               "val": summary(nll),
               "subset": {"windows": SUBSET_WINDOWS, **summary(nll[:SUBSET_WINDOWS])},
               "prompt": PROMPT, "prompt_ids": prompt_ids,
               "greedy_ids": greedy(m, prompt_ids, GREEDY_TOKENS, r["L"] if kind == "block" else None)}
        if kind == "vanilla":
            res["vanilla_from_L"] = summary(nll[:, r["L"] - 1:])
        else:
            padded = block_nll_padded(m, chunks)
            res["authors_padded"] = {"convention": f"each window preceded by {r['L'] - 1} pad tokens (the authors' "
                                                   "lm-eval rule for models trained with first-block padding): "
                                                   "positions 1..255 predicted, the vanilla model's targets",
                                     "val": summary(padded), "subset": summary(padded[:SUBSET_WINDOWS])}
        res["greedy_text"] = tok.decode(res["greedy_ids"])
        gen = torch.Generator().manual_seed(7)
        res["samples"] = [{"prompt": p, "text": tok.decode(sample(m, tok.encode(p, add_special_tokens=False).ids, 64,
                                                                  r["L"] if kind == "block" else None, gen),
                                                           skip_special_tokens=True)}
                          for p in SAMPLE_PROMPTS for _ in range(2)]
        res["subset"]["ids"] = chunks[:SUBSET_WINDOWS].tolist()
        res["train"] = {"steps": run.get("done_steps"), "wall_seconds": run.get("wall_seconds"),
                        "seconds_in_this_model": round(run["seconds"][kind], 1),
                        "tokens_seen": run.get("done_steps", 0) * r["batch"] * r["ctx"],
                        "params_in_file": sum(v.numel() for v in state.values())}
        with open(os.path.join(out, "eval.json"), "w") as fh:
            json.dump(res, fh)
        results[kind] = {k: v for k, v in res.items() if k not in ("subset",)}
        results[kind]["subset_ppl"] = res["subset"]["ppl"]
        print(json.dumps(results[kind]), flush=True)


if __name__ == "__main__":
    main()
