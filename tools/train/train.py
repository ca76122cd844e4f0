"""Trains the demo Block Transformer and the demo vanilla GPT-NeoX side by side: every step draws ONE
batch and takes one optimiser step on each model, so both see exactly the same tokens in the same order.

usage: python train.py CORPUS_DIR TOKENIZER_JSON RUN_DIR [--steps N] [--measure 5]
Writes RUN_DIR/{block,vanilla}.pt (state dicts, f32), RUN_DIR/log.jsonl (loss / val loss per step),
RUN_DIR/run.json (the recipe and timings). Checkpoints are rewritten every --save-every steps.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from tokenizers import Tokenizer

from data import TrainWindows, read_split, stream, val_chunks
from models import IGNORE, BlockLM, VanillaLM

RECIPE = dict(vocab=4096, ctx=256, L=4, R=2, d=128, heads=4, block_layers=3, token_layers=3,
              vanilla_layers=4, batch=8, lr=2e-3, min_lr_frac=0.1, warmup=30, weight_decay=0.1,
              betas=(0.9, 0.95), grad_clip=1.0, dropout=0.0, seed=1234)


def build(r: dict) -> tuple[BlockLM, VanillaLM]:
    torch.manual_seed(r["seed"])
    block = BlockLM(r["vocab"], r["d"], r["block_layers"], r["token_layers"], r["heads"], r["L"], r["R"],
                    max_blocks=r["ctx"] // r["L"], dropout=r["dropout"])
    vanilla = VanillaLM(r["vocab"], r["d"], r["vanilla_layers"], r["heads"], max_pos=r["ctx"], dropout=r["dropout"])
    return block, vanilla


def lr_at(step: int, progress: float, r: dict) -> float:
    """Linear warm-up over the first steps, then cosine to min_lr_frac over progress in [0, 1]."""
    if step < r["warmup"]:
        return r["lr"] * (step + 1) / r["warmup"]
    return r["lr"] * (r["min_lr_frac"] + (1 - r["min_lr_frac"]) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def masked_mean(nll: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    keep = (labels != IGNORE).float()
    return (nll * keep).sum() / keep.sum()


@torch.no_grad()
def evaluate(model, chunks: np.ndarray, batch: int = 16) -> tuple[float, int]:
    """Mean NLL over every predicted position of every validation window (block: positions >= L)."""
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(chunks), batch):
        x = torch.from_numpy(chunks[i: i + batch])
        nll = model.nll(x, x).double()
        total += float(nll.sum())
        count += nll.numel()
    model.train()
    return total / count, count


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus")
    ap.add_argument("tokenizer")
    ap.add_argument("run")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--measure", type=int, default=0, help="only time this many steps and exit")
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--save-every", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per model (each model has its own worker)")
    ap.add_argument("--budget-seconds", type=float, default=0,
                    help="wall-clock budget: the schedule's progress is max(step/steps, elapsed/budget) and training "
                         "stops at progress 1 (the step count reached is recorded; rerun with --steps N to repeat)")
    ap.add_argument("--replay-schedule", default=None,
                    help="a log.jsonl of an earlier run: take each step's schedule progress (and the step count) "
                         "from it, so a wall-clock-budgeted run is repeated exactly")
    ap.add_argument("--eval-windows", type=int, default=32, help="validation windows used for the periodic check")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    r = dict(RECIPE)
    os.makedirs(args.run, exist_ok=True)
    tok = Tokenizer.from_file(args.tokenizer)
    assert tok.get_vocab_size() == r["vocab"], tok.get_vocab_size()
    train_ids, train_starts = stream(tok, read_split(args.corpus, "train"))
    val_ids, _ = stream(tok, read_split(args.corpus, "val"))
    chunks = val_chunks(val_ids, r["ctx"])
    windows = TrainWindows(train_ids, train_starts, r["ctx"], r["L"], r["seed"])
    block, vanilla = build(r)
    models = {"block": block, "vanilla": vanilla}
    opts = {k: torch.optim.AdamW(m.parameters(), lr=r["lr"], betas=r["betas"], weight_decay=r["weight_decay"])
            for k, m in models.items()}
    replay = None
    if args.replay_schedule:
        with open(args.replay_schedule) as fh:
            replay = [json.loads(l)["progress"] for l in fh if l.strip()]
    steps = args.measure or (len(replay) if replay else args.steps)
    info = dict(recipe=r, steps=steps, train_tokens_in_corpus=len(train_ids), val_tokens=len(val_ids),
                val_windows=len(chunks), params={k: sum(p.numel() for p in m.parameters()) for k, m in models.items()},
                seconds={"block": 0.0, "vanilla": 0.0}, started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    print(json.dumps({k: v for k, v in info.items() if k != "recipe"}), flush=True)
    log = open(os.path.join(args.run, "log.jsonl"), "a")
    t_start = time.time()
    warm_start = None
    pool = ThreadPoolExecutor(max_workers=len(models))
    for step in range(steps):
        x, y = windows.batch(r["batch"])
        x, y = torch.from_numpy(x), torch.from_numpy(y)
        if step == r["warmup"]:
            warm_start = time.time()
        progress = max(0.0, (step - r["warmup"]) / max(1, steps - r["warmup"]))
        if args.budget_seconds and warm_start is not None:
            progress = max(progress, (time.time() - t_start) / args.budget_seconds)
        if replay:
            progress = replay[step]
        entry = {"step": step + 1, "lr": lr_at(step, progress, r), "progress": round(progress, 4)}
        def train_step(name: str) -> None:
            m = models[name]
            t0 = time.time()
            for g in opts[name].param_groups:
                g["lr"] = entry["lr"]
            loss = masked_mean(m.nll(x, y), y[:, m.first_predicted():])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(m.parameters(), r["grad_clip"])
            opts[name].step()
            opts[name].zero_grad(set_to_none=True)
            info["seconds"][name] += time.time() - t0
            entry[name] = round(float(loss.detach()), 4)

        # Both models' steps at once, one Python thread each (torch ops release the GIL): on a shared
        # 2-core machine two single-threaded workers lose less to contention than one 2-thread pool.
        list(pool.map(train_step, models))
        last = step + 1 == steps or progress >= 1.0
        if not args.measure and ((step + 1) % args.eval_every == 0 or last):
            for name, m in models.items():
                entry[f"val_{name}"] = round(evaluate(m, chunks[: args.eval_windows])[0], 4)
        entry["elapsed"] = round(time.time() - t_start, 1)
        log.write(json.dumps(entry) + "\n")
        log.flush()
        if (step + 1) % 10 == 0 or last or args.measure:
            print(json.dumps(entry), flush=True)
        if not args.measure and ((step + 1) % args.save_every == 0 or last):
            for name, m in models.items():
                torch.save(m.state_dict(), os.path.join(args.run, f"{name}.pt.tmp"))
                os.replace(os.path.join(args.run, f"{name}.pt.tmp"), os.path.join(args.run, f"{name}.pt"))
            info["done_steps"] = step + 1
            info["wall_seconds"] = round(time.time() - t_start, 1)
            with open(os.path.join(args.run, "run.json"), "w") as fh:
                json.dump(info, fh, indent=1)
        if last:
            break
    print("done", json.dumps(info["seconds"]), flush=True)


if __name__ == "__main__":
    main()
