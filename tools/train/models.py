"""The two demo architectures, as PyTorch modules whose state_dict names are the ones the engine loads.

- BlockLM: the Block Transformer exactly as engine/model/block.ts runs it (docs/block-transformer.md):
  concat embedder (V x d/L), GPT-NeoX block decoder over block vectors (positions 0..n-1, final LN),
  expansion Conv1d(d, R*d, 1) -> R prefix vectors, GPT-NeoX token decoder over
  [P0..P(R-1), e(t0)..e(t(L-2))] at positions 0..R+L-2, untied embed_out. Teacher-forced forward = the
  authors' forward() = the engine's scoring with position mode 'contiguous'.
- vanilla: HF GPTNeoXForCausalLM (the engine's vanilla loader reads its config.json and tensors as is).
The block decoder's embed_in (never read by the model) is left out of the saved checkpoint.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM, GPTNeoXModel

EOS_ID = 0
IGNORE = -100


def neox_config(vocab: int, d: int, layers: int, heads: int, max_pos: int, dropout: float = 0.0) -> GPTNeoXConfig:
    cfg = GPTNeoXConfig(vocab_size=vocab, hidden_size=d, num_hidden_layers=layers, num_attention_heads=heads,
                        intermediate_size=4 * d, hidden_act="gelu", rotary_pct=0.25, rotary_emb_base=10000,
                        max_position_embeddings=max_pos, layer_norm_eps=1e-5, use_parallel_residual=True,
                        tie_word_embeddings=False, bos_token_id=EOS_ID, eos_token_id=EOS_ID,
                        initializer_range=0.02, attention_dropout=dropout, hidden_dropout=dropout)
    cfg._attn_implementation = "eager"
    return cfg


class _Holder(nn.Module):
    """Gives a GPT-NeoX stack the `.gpt_neox` prefix the checkpoint names use."""

    def __init__(self, cfg: GPTNeoXConfig):
        super().__init__()
        self.gpt_neox = GPTNeoXModel(cfg)


class _Embedder(nn.Module):
    def __init__(self, vocab: int, width: int):
        super().__init__()
        self.embeddings = nn.Embedding(vocab, width)


class _TokenDecoder(nn.Module):
    def __init__(self, cfg: GPTNeoXConfig, R: int):
        super().__init__()
        self.gpt_neox = GPTNeoXModel(cfg)
        self.embed_out = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        self.expansion_layer = nn.Conv1d(cfg.hidden_size, cfg.hidden_size * R, kernel_size=1)


class BlockLM(nn.Module):
    def __init__(self, vocab: int, d: int, block_layers: int, token_layers: int, heads: int,
                 L: int = 4, R: int = 2, max_blocks: int = 2048, dropout: float = 0.0):
        super().__init__()
        self.V, self.d, self.L, self.R = vocab, d, L, R
        self.embedder = _Embedder(vocab, d // L)
        self.block_decoder = _Holder(neox_config(vocab, d, block_layers, heads, max_blocks, dropout))
        self.token_decoder = _TokenDecoder(neox_config(vocab, d, token_layers, heads, max_blocks, dropout), R)
        init = 0.02
        for m in self.modules():  # the same init HF gives the vanilla model
            if isinstance(m, (nn.Linear, nn.Conv1d)):
                nn.init.normal_(m.weight, std=init)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, std=init)

    def logits(self, ids: torch.Tensor) -> torch.Tensor:
        """ids [b, T], T a multiple of L -> logits [b, T-L, V]; row j predicts ids[:, L+j]."""
        b, T = ids.shape
        L, R, d = self.L, self.R, self.d
        n = T // L
        blocks = ids.view(b, n, L)
        block_in = self.embedder.embeddings(blocks).reshape(b, n, d)
        h = self.block_decoder.gpt_neox(inputs_embeds=block_in).last_hidden_state  # [b, n, d]
        ctx = h[:, :-1].reshape(-1, d)  # block i conditions block i+1
        prefix = self.token_decoder.expansion_layer(ctx.unsqueeze(-1)).squeeze(-1).view(-1, R, d)
        targets = blocks[:, 1:].reshape(-1, L)
        local = torch.cat([prefix, self.token_decoder.gpt_neox.embed_in(targets[:, :-1])], dim=1)
        out = self.token_decoder.gpt_neox(inputs_embeds=local).last_hidden_state[:, R - 1:]
        return self.token_decoder.embed_out(out).view(b, (n - 1) * L, self.V)

    def nll(self, ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Per-token NLL [b, T-L] of labels[:, L:] (IGNORE -> 0 and masked by the caller)."""
        lg = self.logits(ids)
        tgt = labels[:, self.L:]
        return F.cross_entropy(lg.reshape(-1, self.V), tgt.reshape(-1), ignore_index=IGNORE,
                               reduction="none").view(tgt.shape)

    def first_predicted(self) -> int:
        return self.L

    def export_state(self) -> dict[str, torch.Tensor]:
        sd = self.state_dict()
        return {k: v for k, v in sd.items()
                if k != "block_decoder.gpt_neox.embed_in.weight" and not k.endswith((".bias_mask", ".masked_bias"))
                and "rotary_emb" not in k and not k.endswith("attention.bias")}


class VanillaLM(nn.Module):
    def __init__(self, vocab: int, d: int, layers: int, heads: int, max_pos: int = 2048, dropout: float = 0.0):
        super().__init__()
        self.V = vocab
        self.cfg = neox_config(vocab, d, layers, heads, max_pos, dropout)
        self.lm = GPTNeoXForCausalLM(self.cfg)

    def nll(self, ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Per-token NLL [b, T-1] of labels[:, 1:]."""
        lg = self.lm(input_ids=ids).logits[:, :-1]
        tgt = labels[:, 1:]
        return F.cross_entropy(lg.reshape(-1, self.V), tgt.reshape(-1), ignore_index=IGNORE,
                               reduction="none").view(tgt.shape)

    def first_predicted(self) -> int:
        return 1

    def export_state(self) -> dict[str, torch.Tensor]:
        sd = self.lm.state_dict()
        return {k: v for k, v in sd.items()
                if "rotary_emb" not in k and not k.endswith(("attention.bias", "attention.masked_bias"))}
