"""Write blockserve's parity fixtures under test/fixtures/ (run by hand, not by npm test).

    /work/venv-ref/bin/python tools/reference/make_fixtures.py            # from the repo root

Deterministic: every random choice comes from a fixed seed; rerunning rewrites identical files.
See test/fixtures/README.md for what the files hold and the decisions behind them.
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
from transformers import GPTNeoXForCausalLM

sys.path.insert(0, str(Path(__file__).resolve().parent))
from block_reference import (EOS_ID, PAD_ID, BlockShape, BlockTransformerRef,  # noqa: E402
                             neox_config)

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "test" / "fixtures"
VOCAB = 512
MAX_NEW = 40
MIN_MARGIN = 1e-3  # greedy top-1 vs top-2 gap required at every step, so f32 reimplementations cannot flip
REFERENCE = f"transformers {transformers.__version__}, torch {torch.__version__.split('+')[0]}"

TINY = BlockShape(vocab_size=VOCAB, block_length=4, expansion_ratio=2, hidden_size=64, embedder_width=16,
                  block_layers=2, token_layers=2, heads=4, ffn=256)

torch.set_grad_enabled(False)
torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)


# ---- weights ---------------------------------------------------------------------------------------
def randomize(module: torch.nn.Module, seed: int) -> None:
    """Loud random weights so that logits differ clearly: matrices N(0, 0.2), biases N(0, 0.1),
    LayerNorm weight 1 + N(0, 0.1), embeddings N(0, 0.5). Parameters visited in name order."""
    g = torch.Generator().manual_seed(seed)
    for name, p in sorted(module.named_parameters(), key=lambda kv: kv[0]):
        noise = torch.randn(p.shape, generator=g)
        if "layernorm" in name or "layer_norm" in name:
            p.copy_(1 + 0.1 * noise if name.endswith("weight") else 0.1 * noise)
        elif name.endswith("bias"):
            p.copy_(0.1 * noise)
        elif "embed_in" in name or "embeddings" in name:
            p.copy_(0.5 * noise)
        else:
            p.copy_(0.2 * noise)


def tied(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}


# ---- output helpers ----------------------------------------------------------------------------------
def write_f32(path: Path, t: torch.Tensor) -> list[int]:
    arr = t.detach().to(torch.float32).numpy().astype("<f4")
    path.write_bytes(arr.tobytes())
    return list(arr.shape)


def min_margin(logits: torch.Tensor) -> float:
    top2 = logits.topk(2, dim=-1).values
    return float((top2[..., 0] - top2[..., 1]).min())


def prompt_for(seed: int, length: int) -> list[int]:
    g = np.random.default_rng(seed)
    return [int(x) for x in g.integers(2, VOCAB, size=length)]  # never 0 (EOS/pad) or 1 (padding)


def fresh_dir(name: str) -> Path:
    d = FIXTURES / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    return d


# ---- block fixtures ------------------------------------------------------------------------------------
def block_config_yaml(name: str) -> dict:
    """The authors' trainer-YAML shape (conf/trainer/block_*.yaml); sizes explicit, the rest (rotary_pct,
    eps, max positions, ...) left to the Pythia-410m defaults exactly as in their configs."""
    dec = dict(vocab_size=VOCAB, num_hidden_layers=2, hidden_size=TINY.hidden_size,
               num_attention_heads=TINY.heads, intermediate_size=TINY.ffn)
    return {
        "name": name,
        "block_length": TINY.block_length,
        "block_split": {"distribution": "fixed", "distribution_kwargs": {"length": TINY.block_length}},
        "max_length": 2048,
        "random_pad_first_block": True,
        "pad_to_block_boundary": True,
        "tokenizer": {"embedder": "pythia", "token_decoder": "pythia"},
        "embedder": {"cls": "lookup", "model_name_or_path": None, "n_embedding_tokens": 1,
                     "use_pretrained_weights": False, "projection_method": "concat",
                     "config": {"vocab_size": VOCAB, "hidden_size": TINY.embedder_width}},
        "block_decoder": {"cls": "gpt-neo-x", "model_name_or_path": "EleutherAI/pythia-410m-deduped",
                          "use_pretrained_weights": False, "config": dict(dec)},
        "token_decoder": {"cls": "gpt-neo-x", "model_name_or_path": "EleutherAI/pythia-410m-deduped",
                          "use_pretrained_weights": False, "expansion_method": "expansion_layer",
                          "expansion_ratio": TINY.expansion_ratio, "decoding_strategy": "prefix",
                          "config": dict(dec)},
        "precision": "fp32",
    }


def check_reference_positions(model: BlockTransformerRef, log: list[str]) -> dict:
    """Run one HF-generate block decode with the hook on, and prove the explicit schedules equal it."""
    prefix = model.token_decoder.expand(torch.randn(1, TINY.hidden_size, generator=torch.Generator().manual_seed(7)))
    model.td_positions.calls.clear()
    model.td_positions.enabled = True
    toks_hf, logits_hf = model.decode_block(prefix, TINY.block_length, "reference")
    model.td_positions.enabled = False
    seen = list(model.td_positions.calls)
    toks_ex, logits_ex = model.decode_block(prefix, TINY.block_length, "reference_explicit")
    toks_ct, logits_ct = model.decode_block(prefix, TINY.block_length, "contiguous")
    same = torch.equal(toks_hf, toks_ex) and torch.allclose(logits_hf, logits_ex, atol=1e-5, rtol=0)
    diff_ct = float((logits_hf - logits_ct).abs().max())
    log.append(f"token-decoder position_ids seen by layer 0 in HF generate (reference mode): {seen}")
    log.append(f"explicit schedule prefix@[0,0], token k@k reproduces HF generate: {same} "
               f"(max |dlogit| {float((logits_hf - logits_ex).abs().max()):.2e}); "
               f"contiguous differs by max |dlogit| {diff_ct:.3f}")
    assert same, "HF generate does not use the positions we claim"
    return {"hf_calls": seen}


def generation_case(model, prompt, mode, pad_first_block):
    [(out, logits)] = model.generate([prompt], MAX_NEW, mode, pad_first_block)
    return out, logits


def run_ok(model, prompt, mode, pad, want_eos: bool) -> bool:
    """Greedy run keeps a clear top-1 margin at every step (so independent f32 code cannot legitimately
    pick another token), and EOS appears iff wanted; when wanted, mid-block and after the first block."""
    out, logits = generation_case(model, prompt, mode, pad)
    if min_margin(logits) < MIN_MARGIN:
        return False
    if not want_eos:
        return EOS_ID not in out
    i = out.index(EOS_ID) if EOS_ID in out else -1
    return i >= TINY.block_length and i % TINY.block_length != TINY.block_length - 1


def pick_prompt(model, seed, length, runs, want_eos, log) -> list[int]:
    """First prompt (seeds seed, seed+1000, ...) whose runs all satisfy run_ok."""
    for attempt in range(200):
        p = prompt_for(seed + 1000 * attempt, length)
        if all(run_ok(model, p, m, pad, want_eos) for m, pad in runs):
            if attempt:
                log.append(f"prompt len {length} (eos={want_eos}): took attempt {attempt}")
            return p
    raise RuntimeError("no suitable prompt")


def make_block_fixture(name: str, seed: int, store_dtype: torch.dtype, gen_plan, log,
                       eos_like: int | None = None) -> dict:
    d = fresh_dir(name)
    model = BlockTransformerRef(TINY).eval()
    randomize(model, seed)
    if eos_like is not None:
        # With plain random weights token 0 (EOS) never wins a greedy step, so no fixture would show how
        # generation stops. Make its output row close to a token the model often picks.
        w = model.token_decoder.embed_out.weight
        w[EOS_ID] = w[eos_like] + 0.3 * w[EOS_ID]
    state = tied(model)
    stored = {k: v.to(store_dtype).contiguous() for k, v in state.items()}
    # the math runs in f32 from exactly the stored values (bf16 upcast when stored bf16)
    model.load_state_dict({k: v.to(torch.float32) for k, v in stored.items()})
    save_file(stored, str(d / "model.safetensors"), metadata={"format": "pt"})
    (d / "config.yaml").write_text(yaml.safe_dump(block_config_yaml(name), sort_keys=False))
    log.append(f"[{name}] tensors: {len(stored)}, dtype {store_dtype}, "
               f"expansion_layer.weight {list(stored['token_decoder.expansion_layer.weight'].shape)}")

    positions = check_reference_positions(model, log)

    expected = {"kind": "block", "vocab_size": VOCAB, "reference": REFERENCE, "score": [], "generate": []}
    for i, length in enumerate((16, 24)):
        ids = prompt_for(seed * 100 + i, length)
        logits = model.score(ids)
        shape = write_f32(d / f"score_{i}.f32", logits)
        expected["score"].append({"input_ids": ids, "logits": f"score_{i}.f32", "shape": shape})

    prompts = {}
    for length, runs, want_eos in gen_plan:
        prompts[length] = pick_prompt(model, seed * 100 + 10 + length, length, runs, want_eos, log)
    gi = 0
    summary = []
    for length, runs, _ in gen_plan:
        for mode, pad in runs:
            out, logits = generation_case(model, prompts[length], mode, pad)
            assert logits.argmax(-1).tolist() == out
            shape = write_f32(d / f"gen_{gi}.f32", logits)
            expected["generate"].append({"position_mode": mode, "pad_first_block": pad,
                                         "prompt_ids": prompts[length], "max_new_tokens": MAX_NEW,
                                         "output_ids": out, "step_logits": f"gen_{gi}.f32",
                                         "step_logits_shape": shape})
            summary.append((length, mode, pad, len(out), EOS_ID in out, min_margin(logits)))
            gi += 1
    for s in summary:
        log.append(f"[{name}] gen prompt_len={s[0]} mode={s[1]} pad={s[2]}: {s[3]} tokens, eos={s[4]}, "
                   f"min margin {s[5]:.4f}")
    (d / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    return {"model": model, "prompts": prompts, "expected": expected, "positions": positions}


def batched_vs_single(name: str, model: BlockTransformerRef, expected: dict, log) -> None:
    """The authors' generate() over prompts of different lengths in one batch vs. each prompt alone."""
    for mode in ("reference", "contiguous"):
        cases = [c for c in expected["generate"] if c["position_mode"] == mode and c["pad_first_block"]]
        batch = model.generate([c["prompt_ids"] for c in cases], MAX_NEW, mode, True)
        for c, (out, logits) in zip(cases, batch):
            single = np.fromfile(FIXTURES / name / c["step_logits"], dtype="<f4").reshape(c["step_logits_shape"])
            n = min(len(out), len(c["output_ids"]))
            err = float(np.abs(logits[:n].numpy() - single[:n]).max())
            log.append(f"[{name}] batched {mode} prompt_len={len(c['prompt_ids'])}: tokens equal "
                       f"{out == c['output_ids']}, max |dlogit| vs batch-of-1 {err:.2e}")


# ---- vanilla fixtures ------------------------------------------------------------------------------------
def make_vanilla(log) -> None:
    d = fresh_dir("vanilla_tiny")
    cfg = neox_config(VOCAB, 64, 2, 4, 256)
    torch.manual_seed(0)
    model = GPTNeoXForCausalLM(cfg).eval()
    randomize(model, 3)
    model.generation_config.pad_token_id = PAD_ID
    model.save_pretrained(str(d), safe_serialization=True)
    expected = {"kind": "vanilla", "vocab_size": VOCAB, "reference": REFERENCE, "score": [], "generate": []}
    for i, length in enumerate((16, 23)):
        ids = prompt_for(300 + i, length)
        logits = model(torch.tensor([ids])).logits[0]
        shape = write_f32(d / f"score_{i}.f32", logits)
        expected["score"].append({"input_ids": ids, "logits": f"score_{i}.f32", "shape": shape})

    captured: list[torch.Tensor] = []
    model.embed_out.register_forward_hook(lambda _m, _i, out: captured.append(out[:, -1, :].clone()))

    def run(prompts_):
        width = max(len(p) for p in prompts_)
        ids = torch.full((len(prompts_), width), PAD_ID, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for r, p in enumerate(prompts_):
            ids[r, width - len(p):] = torch.tensor(p)
            mask[r, width - len(p):] = 1
        captured.clear()
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=MAX_NEW, do_sample=False,
                             eos_token_id=EOS_ID, pad_token_id=PAD_ID)
        steps = torch.stack(captured, dim=1)
        res = []
        for r in range(len(prompts_)):
            new = out[r, width:].tolist()
            if EOS_ID in new:
                new = new[:new.index(EOS_ID) + 1]
            res.append((new, steps[r, :len(new)]))
        return res

    prompts = []
    for length in (1, 7, 13):
        for attempt in range(50):
            p = prompt_for(400 + length + 1000 * attempt, length)
            if min_margin(run([p])[0][1]) >= MIN_MARGIN:
                break
        prompts.append(p)
    for gi, p in enumerate(prompts):
        [(out, logits)] = run([p])
        assert logits.argmax(-1).tolist() == out
        shape = write_f32(d / f"gen_{gi}.f32", logits)
        expected["generate"].append({"position_mode": "contiguous", "pad_first_block": False, "prompt_ids": p,
                                     "max_new_tokens": MAX_NEW, "output_ids": out,
                                     "step_logits": f"gen_{gi}.f32", "step_logits_shape": shape})
        log.append(f"[vanilla_tiny] gen prompt_len={len(p)}: {len(out)} tokens, eos={EOS_ID in out}, "
                   f"min margin {min_margin(logits):.4f}")
    (d / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")

    for (out, logits), case in zip(run(prompts), expected["generate"]):
        single = np.fromfile(d / case["step_logits"], dtype="<f4").reshape(case["step_logits_shape"])
        n = min(len(out), len(case["output_ids"]))
        log.append(f"[vanilla_tiny] batched (left-pad {PAD_ID}, HF mask positions) prompt_len="
                   f"{len(case['prompt_ids'])}: tokens equal {out == case['output_ids']}, max |dlogit| "
                   f"{float(np.abs(logits[:n].numpy() - single[:n]).max()):.2e}")

    # the same weights, saved in shards; expected: the first score and the second generation, copied
    s = fresh_dir("vanilla_tiny_sharded")
    model.save_pretrained(str(s), safe_serialization=True, max_shard_size="300KB")
    shards = sorted(p.name for p in s.glob("model-*.safetensors"))
    sharded = {**expected, "score": expected["score"][:1], "generate": expected["generate"][1:2]}
    for entry, key in [(sharded["score"][0], "logits"), (sharded["generate"][0], "step_logits")]:
        shutil.copyfile(d / entry[key], s / entry[key])
    (s / "expected.json").write_text(json.dumps(sharded, indent=1) + "\n")
    log.append(f"[vanilla_tiny_sharded] shards: {shards}")


def main() -> None:
    log: list[str] = [f"reference: {REFERENCE}"]
    both_pad = [("reference", True), ("contiguous", True)]
    # (prompt length, runs, EOS wanted). pad_first_block=False: the reference only defines prompts of a
    # multiple of L (and then pads nothing, so those runs equal pad_first_block=True); see README.
    plan_f32 = [(1, both_pad, False), (5, both_pad, False), (8, both_pad, False), (11, both_pad, False),
                (12, [("reference", False)], False), (16, [("contiguous", False)], False),
                (6, [("reference", True)], True), (7, [("contiguous", True)], True)]
    res = make_block_fixture("block_tiny", 1, torch.float32, plan_f32, log, eos_like=13)
    batched_vs_single("block_tiny", res["model"], res["expected"], log)
    plan_bf16 = [(5, both_pad, False), (8, [("reference", False)], False), (11, [("contiguous", True)], False)]
    make_block_fixture("block_tiny_bf16", 2, torch.bfloat16, plan_bf16, log)
    make_vanilla(log)
    total = sum(p.stat().st_size for p in FIXTURES.rglob("*") if p.is_file())
    log.append(f"fixtures total size: {total / 1e6:.2f} MB")
    print("\n".join(log))


if __name__ == "__main__":
    main()
