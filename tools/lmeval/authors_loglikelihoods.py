"""Loglikelihoods of (context, continuation) requests computed by the authors' own evaluation code: their
vendored lm-eval HFLM with their block wrapper (lm_eval/models/block_transformer_pad.py or _nopad.py) over
their BlockTransformer, or their plain HFLM over GPTNeoXForCausalLM for a vanilla checkpoint. Everything of
theirs is imported from a checkout at run time (tools/reference/authors_code.py). Run with the authors'
interpreter (transformers 4.39.3), not lm_eval's:

    /work/venv-authors/bin/python tools/lmeval/authors_loglikelihoods.py --repo /tmp/authors \
        --model test/fixtures/authors/narrow_token_decoder --tokenizer test/fixtures/byte-tokenizer/tokenizer.json \
        --requests requests.json --out authors.json

The wrapper follows the checkpoint's training: random_pad_first_block true -> their padded wrapper
('block'), absent or false -> their no-pad one ('block_no_pad', what their eval notes prescribe for the
300M+ models). requests.json: [[context, continuation], ...]; out: {"wrapper", "loglikelihoods", "is_greedy"}.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reference"))
from authors_code import Shape, build_block_transformer, load_lmeval_models, tokenizer_from_file  # noqa: E402

torch.set_grad_enabled(False)
torch.set_num_threads(1)


def shape_from_config(tree: dict) -> Shape:
    b, t = tree["block_decoder"]["config"], tree["token_decoder"]["config"]
    return Shape(name=tree["name"], block_length=tree["block_length"],
                 expansion_ratio=tree["token_decoder"]["expansion_ratio"],
                 block_width=b["hidden_size"], token_width=t["hidden_size"],
                 block_layers=b["num_hidden_layers"], token_layers=t["num_hidden_layers"],
                 block_heads=b["num_attention_heads"], token_heads=t["num_attention_heads"],
                 parallel_residual=b.get("use_parallel_residual", True),
                 pad_first_block=tree.get("random_pad_first_block"), vocab_size=tree["embedder"]["config"]["vocab_size"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True, type=Path)
    ap.add_argument("--model", required=True, type=Path)
    ap.add_argument("--tokenizer", required=True, type=Path)
    ap.add_argument("--requests", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    a = ap.parse_args()

    lmeval = load_lmeval_models(a.repo)
    tok = tokenizer_from_file(a.tokenizer)
    config_yaml = a.model / "config.yaml"
    if config_yaml.exists():
        tree = yaml.safe_load(config_yaml.read_text())
        model = build_block_transformer(a.repo, shape_from_config(tree))
        model.load_state_dict(load_file(str(a.model / "model.safetensors")), strict=True)
        wrapper = "pad" if tree.get("random_pad_first_block") is True else "nopad"
        lm = lmeval[wrapper](pretrained=model.to(torch.float32), tokenizer=tok, device="cpu", batch_size=4)
    else:
        from transformers import GPTNeoXForCausalLM
        model = GPTNeoXForCausalLM.from_pretrained(str(a.model), torch_dtype=torch.float32).eval()
        wrapper = "hf"
        lm = lmeval["HFLM"](pretrained=model, tokenizer=tok, device="cpu", batch_size=4)

    Instance = lmeval["Instance"]
    pairs = json.loads(a.requests.read_text())
    reqs = [Instance(request_type="loglikelihood", doc={}, arguments=(c, x), idx=i) for i, (c, x) in enumerate(pairs)]
    res = lm.loglikelihood(reqs)
    a.out.write_text(json.dumps({"wrapper": wrapper, "loglikelihoods": [r[0] for r in res],
                                 "is_greedy": [r[1] for r in res]}, indent=1) + "\n")


if __name__ == "__main__":
    main()
