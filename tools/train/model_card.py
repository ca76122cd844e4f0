"""Writes models/<name>/README.md (the model card) for both demo models from what the pipeline recorded:
models/data/fortunes-corpus.json, RUN/run.json, models/<name>/eval.json and, when given, the engine's
`blockserve bench quality --json` output.

usage: python model_card.py RUN_DIR MODELS_DIR [--bench bench.json]
"""
from __future__ import annotations

import argparse
import json
import os

import torch

from export import NAMES

ARCH = {
    "block": "Block Transformer (Ho et al. 2024): block length L = 4, concat embedder (4 x 32 -> 128), "
             "GPT-NeoX block decoder 3 layers, prefix token decoder 3 layers with R = 2 prefix vectors "
             "(expansion Conv1d 128 -> 256), d = 128, 4 heads (head dim 32, rotary on 8 dims), FFN 512, "
             "untied output layer",
    "vanilla": "GPT-NeoX (Pythia layout): 4 layers, d = 128, 4 heads (head dim 32, rotary on 8 dims), FFN 512, "
               "untied output layer",
}
FLOPS = ("Per generated token the block model runs its 3 block-decoder layers once per 4 tokens and its 3 "
         "token-decoder layers on 5 window rows per 4 tokens: 3/4 + 3 x 5/4 = 4.5 layer passes, against the "
         "vanilla model's 4 (plus one 4096 x 128 output layer each); training sees the same windows.")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("models")
    ap.add_argument("--bench", action="append", default=[], help="`blockserve bench quality --json` output (repeatable)")
    args = ap.parse_args()
    run = json.load(open(os.path.join(args.run, "run.json")))
    corpus = json.load(open(os.path.join(args.models, "data", "fortunes-corpus.json")))
    benches = [json.load(open(b)) for b in args.bench]
    evals = {k: json.load(open(os.path.join(args.models, n, "eval.json"))) for k, n in NAMES.items()}
    r = run["recipe"]
    for kind, name in NAMES.items():
        e = evals[kind]
        other = evals["vanilla" if kind == "block" else "block"]
        lines = [
            f"# {name}",
            "",
            "A **demo** model trained by this project (tools/train) so that `npm start` writes readable text on a "
            "fresh machine. It is tiny and trained for about an hour on two shared CPU cores on fortune cookies: it is "
            "**not** one of the Block Transformer paper's models and says nothing about their quality. The server "
            "flags it `demo: true` in `/v1/models`.",
            "",
            f"Its twin, `{other['model']}`, was trained in the same run on the same batches "
            f"(`--model {'demo-vanilla' if kind == 'block' else 'demo-block'}`).",
            "",
            "## Architecture",
            "",
            f"- {ARCH[kind]}.",
            f"- Vocabulary 4096 (byte-level BPE trained on the training split, `tokenizer.json`; `<|endoftext|>` = 0, "
            f"`<|padding|>` = 1). Parameters in `model.safetensors`: {e['train']['params_in_file']:,} (f32, "
            f"{os.path.getsize(os.path.join(args.models, name, 'model.safetensors')) / 2**20:.1f} MiB).",
            f"- Trained on {r['ctx']}-token windows; served with a 512-token context (text past 256 tokens is out of the "
            "training distribution).",
        ]
        if kind == "block":
            lines += ["- `config.yaml` is the authors' trainer-config form plus `position_mode: contiguous`: the token "
                      "decoder was trained (and is decoded) with window positions 0..R+L-2, not the authors' "
                      "`generate()` quirk. Prompts are left-padded with token 0 to whole blocks, as in training."]
        lines += [f"- {FLOPS}", "",
                  "## Data",
                  "",
                  f"- Source: {corpus['source']} (`apt-get download` + `dpkg-deb -x`). Licence: {corpus['licence']}.",
                  f"- {corpus['raw_bytes']:,} bytes of cookie files ({len(corpus['files'])} files; `art` and `ascii-art` "
                  "left out). Preprocessing (tools/train/prepare_corpus.py): split on `%` lines, tabs expanded, trailing "
                  "spaces and blank edge lines removed, exact duplicates dropped.",
                  f"- Split by sha1(cookie) mod 20: training {corpus['train_cookies']:,} cookies "
                  f"({corpus['train_chars']:,} characters, {run['train_tokens_in_corpus']:,} tokens), validation "
                  f"{corpus['val_cookies']:,} cookies ({corpus['val_chars']:,} characters, {run['val_tokens']:,} tokens; "
                  "`models/data/fortunes-val.jsonl`).",
                  "",
                  "## Training",
                  "",
                  f"- PyTorch {torch.__version__} on CPU, `tools/train/train.py` (both models in one process, one "
                  f"batch per step for both). AdamW (betas {r['betas'][0]}/{r['betas'][1]}, weight decay {r['weight_decay']}), "
                  f"peak LR {r['lr']:g}, {r['warmup']} warm-up steps, cosine to {r['lr'] * r['min_lr_frac']:g}, gradient "
                  f"clip {r['grad_clip']}, dropout {r['dropout']}, batch {r['batch']} x {r['ctx']} tokens, seed {r['seed']}.",
                  "- Windows start at a cookie, left-padded with 0-3 `<|endoftext|>` tokens (never targets), the way the "
                  "engine pads a prompt to a whole first block; cookies are joined by `<|endoftext|>`.",
                  f"- Steps: {e['train']['steps']} ({e['train']['tokens_seen']:,} tokens seen, about "
                  f"{e['train']['tokens_seen'] / run['train_tokens_in_corpus']:.1f} epochs). Wall time of the run "
                  f"{e['train']['wall_seconds'] / 60:.1f} min for both models together; this model's own steps "
                  f"{e['train']['seconds_in_this_model'] / 60:.1f} min (2 shared, busy cores: timings are noisy). The step "
                  "count came from a wall-clock budget (`--budget-seconds`); `--steps N` repeats it.",
                  "",
                  "## Evaluation (held-out split)",
                  "",
                  f"Convention: {e['convention']} (the engine's teacher-forced scoring"
                  + ("; token-decoder positions 0..R+L-2" if kind == "block" else "") + ").",
                  "",
                  "| figure | loss (nats/token) | perplexity | tokens |",
                  "|---|---|---|---|",
                  f"| training script, whole split | {e['val']['loss']:.4f} | {e['val']['ppl']:.2f} | {e['val']['tokens']:,} |",
                  ]
        if kind == "vanilla":
            lines.append(f"| training script, targets from position 4 (the block model's targets) | "
                         f"{e['vanilla_from_L']['loss']:.4f} | {e['vanilla_from_L']['ppl']:.2f} | {e['vanilla_from_L']['tokens']:,} |")
        if kind == "block":
            ap = e["authors_padded"]
            lines.append(f"| training script, each window after 3 pad tokens (the authors' lm-eval rule; positions 1..255, "
                         f"the vanilla model's targets) | {ap['val']['loss']:.4f} | {ap['val']['ppl']:.2f} | {ap['val']['tokens']:,} |")
        lines.append(f"| training script, first {e['subset']['windows']} windows (pinned by test/shipped-models.test.ts) | "
                     f"{e['subset']['loss']:.4f} | {e['subset']['ppl']:.3f} | {e['subset']['tokens']:,} |")
        for bench in benches:
            row = next(x for x in bench["rows"] if x["model"] == name)
            twin = next(x for x in bench["rows"] if x["model"] != name)
            lines += ["", f"The engine (`blockserve bench quality --batch {bench['batch']} --prompt {bench['prompt']} --gen "
                      f"{bench['gen']}`, backend {bench['backend']}, {row['windows']} windows, the authors' scoring rule: positions "
                      f"1..255 of each window for both models): perplexity {row['ppl']:.3f} over {row['scored']:,} tokens; greedy decode "
                      f"{row['tokensPerSecond']:.0f} tokens/s (its twin: {twin['tokensPerSecond']:.0f}) at batch {bench['batch']}, "
                      f"{bench['prompt']}-token prompts, {bench['gen']} generated tokens, on a shared 2-core machine."]
        lines += ["", "## Sample outputs", "",
                  f"Greedy, prompt `{e['prompt']}`:", "", "```", e["prompt"] + e["greedy_text"], "```", "",
                  "Sampled (temperature 0.8, top-k 40, seed 7, 64 tokens at most; tools/train/export.py):", ""]
        for s in e["samples"]:
            lines += ["```", s["prompt"] + s["text"], "```"]
        lines += ["", "## Reproduce", "", "```", "bash tools/train/run.sh   # see tools/train/README.md", "```", ""]
        with open(os.path.join(args.models, name, "README.md"), "w") as fh:
            fh.write("\n".join(lines))
        print("wrote", os.path.join(args.models, name, "README.md"))


if __name__ == "__main__":
    main()
