"""Check the committed block fixtures against the authors' own code (not part of the project).

    git clone https://github.com/itsnamgyu/block-transformer /tmp/authors && git -C /tmp/authors checkout 17842dd
    /work/venv-ref/bin/python tools/reference/crosscheck_authors.py /tmp/authors

Imports their BlockTransformer, GPTNeoXBlockDecoder, GPTNeoXTokenDecoder and LookupEmbedder from that checkout
(nothing of theirs is copied here), builds them the way their model/utils.py loader does, loads our
model.safetensors strictly, and compares:
- score fixtures with their forward() logits;
- reference-mode generations (batch of 1) with their generate(): tokens and step logits;
- contiguous-mode generations with their forward() over prompt + output (teacher forcing uses the
  contiguous positions, so its logits at the generated positions must equal our step logits);
- their batched generate() (prompts of different lengths left-padded with 0) with our batch-of-1 runs.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from block_reference import EOS_ID, PAD_ID, neox_config  # noqa: E402
from make_fixtures import FIXTURES, MAX_NEW, TINY  # noqa: E402

torch.set_grad_enabled(False)


def build_authors_model(authors: Path):
    sys.path.insert(0, str(authors))
    from model.block_transformer import BlockTransformer
    from model.block_decoder.gpt_neo_x import GPTNeoXBlockDecoder
    from model.embedder.lookup import LookupConfig, LookupEmbedder
    from model.token_decoder.gpt_neo_x import GPTNeoXTokenDecoder

    d = TINY.hidden_size
    block_decoder = GPTNeoXBlockDecoder(neox_config(TINY.vocab_size, d, TINY.block_layers, TINY.heads, TINY.ffn),
                                        n_embedding_tokens=1)
    emb_cfg = LookupConfig(vocab_size=TINY.vocab_size, hidden_size=TINY.embedder_width)
    embedder = LookupEmbedder(emb_cfg, block_length=TINY.block_length, n_embedding_tokens=1,
                              projection_method="concat", projection_hidden_size=d)
    token_decoder = GPTNeoXTokenDecoder(neox_config(TINY.vocab_size, d, TINY.token_layers, TINY.heads, TINY.ffn),
                                        block_length=TINY.block_length, n_embedding_tokens=1,
                                        projection_hidden_size=d, expansion_method="expansion_layer",
                                        expansion_ratio=TINY.expansion_ratio, decoding_strategy="prefix")
    token_decoder.generation_config.pad_token_id = PAD_ID  # as their load_block_transformer_from_config does
    model = BlockTransformer(embedder=embedder, block_decoder=block_decoder, token_decoder=token_decoder,
                             use_token_decoding_loss=True, decoding_strategy="prefix").eval()
    return model


def load_f32(d: Path, name: str, shape) -> np.ndarray:
    return np.fromfile(d / name, dtype="<f4").reshape(shape)


def check(name: str, model) -> list[str]:
    d = FIXTURES / name
    state = {k: v.to(torch.float32) for k, v in load_file(str(d / "model.safetensors")).items()}
    model.load_state_dict(state, strict=True)
    exp = json.loads((d / "expected.json").read_text())
    L = TINY.block_length
    lines = []

    def forward_logits(ids: list[int]) -> torch.Tensor:
        x = torch.tensor(ids).view(1, -1, L)
        n = x.shape[1]
        out = model(input_ids=x, attention_mask=torch.ones_like(x), block_attention_mask=torch.ones(1, n,
                    dtype=torch.long), skip_padding_blocks=False)
        return out["logits"].reshape(-1, TINY.vocab_size)

    for case in exp["score"]:
        err = float(np.abs(forward_logits(case["input_ids"]).numpy() - load_f32(d, case["logits"], case["shape"])).max())
        lines.append(f"[{name}] score len {len(case['input_ids'])}: max |d| vs authors' forward {err:.2e}")

    captured: list[torch.Tensor] = []
    hook = model.token_decoder.embed_out.register_forward_hook(lambda _m, _i, o: captured.append(o.clone()))
    for case in exp["generate"]:
        p = case["prompt_ids"]
        want = load_f32(d, case["step_logits"], case["step_logits_shape"])
        if case["position_mode"] == "reference":
            captured.clear()
            out = model.generate(torch.tensor([p]), attention_mask=torch.ones(1, len(p), dtype=torch.long),
                                 max_length=len(p) + MAX_NEW)
            new = out[0, len(p):].tolist()
            if EOS_ID in new:
                new = new[:new.index(EOS_ID) + 1]
            got = torch.cat([c.reshape(-1, TINY.vocab_size) for c in captured])[:len(new)].numpy()
            err = float(np.abs(got - want[:len(got)]).max())
            lines.append(f"[{name}] reference gen len {len(p)} pad={case['pad_first_block']}: tokens equal "
                         f"{new == case['output_ids']}, max |d| step logits vs authors' generate {err:.2e}")
        else:
            pad = (-len(p)) % L if case["pad_first_block"] else 0
            seq = [EOS_ID] * pad + p + case["output_ids"]
            seq += [EOS_ID] * ((-len(seq)) % L)
            logits = forward_logits(seq).numpy()  # row j predicts seq[L + j]
            first = pad + len(p) - L
            got = logits[first:first + len(case["output_ids"])]
            err = float(np.abs(got - want).max())
            lines.append(f"[{name}] contiguous gen len {len(p)} pad={case['pad_first_block']}: max |d| step "
                         f"logits vs authors' forward() on prompt+output {err:.2e}")
    hook.remove()

    refs = [c for c in exp["generate"] if c["position_mode"] == "reference" and c["pad_first_block"]]
    if len(refs) > 1:
        width = max(len(c["prompt_ids"]) for c in refs)
        ids = torch.full((len(refs), width), EOS_ID, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for r, c in enumerate(refs):
            ids[r, width - len(c["prompt_ids"]):] = torch.tensor(c["prompt_ids"])
            mask[r, width - len(c["prompt_ids"]):] = 1
        out = model.generate(ids, attention_mask=mask, max_length=width + MAX_NEW)
        for r, c in enumerate(refs):
            new = out[r, width:].tolist()
            lines.append(f"[{name}] authors' batched generate, prompt len {len(c['prompt_ids'])}: tokens equal "
                         f"to our batch-of-1 {new[:len(c['output_ids'])] == c['output_ids']}")
    return lines


def main() -> None:
    model = build_authors_model(Path(sys.argv[1]).resolve())
    for name in ("block_tiny", "block_tiny_bf16"):
        print("\n".join(check(name, model)))


if __name__ == "__main__":
    main()
