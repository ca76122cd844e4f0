"""A reference Block Transformer built from Hugging Face GPT-NeoX modules plus the documented glue.

Written for blockserve's parity fixtures (see test/fixtures/README.md). It follows the behaviour of the
authors' code (github.com/itsnamgyu/block-transformer @17842dd) as read from it, but is our own code:

- embedder: one nn.Embedding(vocab, d/L); the L token vectors of a block are concatenated into one d vector.
- block decoder: an HF GPTNeoXModel run on block vectors (its embed_in exists only so the checkpoint has the
  same tensors as the authors'; it is never used). Positions 0..n-1 come from HF itself (no position_ids
  passed), padding blocks are masked with HF's attention_mask, exactly like the authors' generate().
- token decoder: an HF GPTNeoXForCausalLM subclass whose forward puts R prefix vectors (Conv1d(d, R*d, 1)
  of the block-decoder state) in front of the token embeddings.

Generation has two position modes for the token decoder:
- "reference": HF GenerationMixin.generate is called exactly the way the authors' BlockTransformer.generate
  does (input [[EOS]] placeholder + all-ones mask, max_length = tokens + 1), so whatever position ids HF
  4.39 derives from the attention mask are the ones used.
- "contiguous": an explicit greedy loop with explicit position ids: prefix at 0..R-1, the k-th token fed at
  R-1+k (the same positions as scoring).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM, GPTNeoXModel
from transformers.modeling_outputs import CausalLMOutputWithPast

# Values the authors' configs inherit from EleutherAI/pythia-410m-deduped's config.json (their
# `model_name_or_path`), except the sizes, which every fixture sets explicitly.
PYTHIA_DEFAULTS = dict(
    hidden_act="gelu",  # exact erf GELU in HF
    rotary_pct=0.25,
    rotary_emb_base=10000,
    max_position_embeddings=2048,
    layer_norm_eps=1e-5,
    use_parallel_residual=True,
    tie_word_embeddings=False,
    bos_token_id=0,
    eos_token_id=0,
    initializer_range=0.02,
)

EOS_ID = 0  # <|endoftext|>: ends a sequence, also the token-decoder placeholder and the left-pad token
PAD_ID = 1  # <|padding|>: what the authors set as the token decoder's generation pad id


def neox_config(vocab_size: int, hidden_size: int, layers: int, heads: int, ffn: int) -> GPTNeoXConfig:
    cfg = GPTNeoXConfig(vocab_size=vocab_size, hidden_size=hidden_size, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=ffn, **PYTHIA_DEFAULTS)
    cfg._attn_implementation = "eager"
    return cfg


@dataclass
class BlockShape:
    vocab_size: int
    block_length: int  # L
    expansion_ratio: int  # R
    hidden_size: int  # d, same for both decoders here
    embedder_width: int  # d / L
    block_layers: int
    token_layers: int
    heads: int
    ffn: int


class PositionRecorder:
    """Forward pre-hook on one attention module: records the position_ids HF hands it, with the query length."""

    def __init__(self, attention: nn.Module):
        self.calls: list[dict] = []
        self.enabled = False
        attention.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, _module, args, kwargs):
        if not self.enabled:
            return
        hidden = args[0] if args else kwargs["hidden_states"]
        pos = kwargs.get("position_ids")
        self.calls.append({"query_len": int(hidden.shape[1]),
                           "position_ids": None if pos is None else pos.tolist()})


class PrefixTokenDecoder(GPTNeoXForCausalLM):
    """GPTNeoXForCausalLM whose first forward step prepends the R expanded block vectors.

    Inputs follow the authors' convention: input_ids start with a placeholder EOS that is replaced by the
    prefix on the first step (no cache); later steps (with cache) receive only the newest token.
    """

    def __init__(self, config: GPTNeoXConfig, block_hidden: int, expansion_ratio: int):
        super().__init__(config)
        self.expansion_ratio = expansion_ratio
        self.expansion_layer = nn.Conv1d(block_hidden, config.hidden_size * expansion_ratio, kernel_size=1)
        self.logit_log: list[torch.Tensor] | None = None  # when a list, each forward appends its last logits

    def expand(self, block_states: torch.Tensor) -> torch.Tensor:
        """[b, d_block] -> [b, R, d]; prefix r is output channels [r*d, (r+1)*d)."""
        out = self.expansion_layer(block_states.unsqueeze(-1))  # [b, R*d, 1]
        return out.squeeze(-1).reshape(block_states.shape[0], self.expansion_ratio, self.config.hidden_size)

    def prepare_inputs_for_generation(self, input_ids, past_key_values=None, **kwargs):
        prefix = kwargs.pop("prefix_embeds")
        inputs = super().prepare_inputs_for_generation(input_ids, past_key_values=past_key_values, **kwargs)
        inputs["prefix_embeds"] = prefix
        return inputs

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None,
                prefix_embeds=None, use_cache=None, return_dict=None, **_unused):
        batch = input_ids.shape[0]
        if past_key_values is None:
            # first step: drop the placeholder, put the prefix vectors in its place
            embeds = torch.cat([prefix_embeds, self.gpt_neox.embed_in(input_ids[:, 1:])], dim=1)
        else:
            embeds = self.gpt_neox.embed_in(input_ids)
        mask = None
        if attention_mask is not None:
            ones = attention_mask.new_ones((batch, self.expansion_ratio))
            mask = torch.cat([ones, attention_mask[:, 1:]], dim=1)
        out = self.gpt_neox(inputs_embeds=embeds, attention_mask=mask, position_ids=position_ids,
                            past_key_values=past_key_values, use_cache=use_cache, return_dict=True)
        logits = self.embed_out(out.last_hidden_state)
        if self.logit_log is not None:
            self.logit_log.append(logits[:, -1, :].detach().clone())
        return CausalLMOutputWithPast(logits=logits, past_key_values=out.past_key_values)


class BlockDecoder(nn.Module):
    def __init__(self, config: GPTNeoXConfig):
        super().__init__()
        self.gpt_neox = GPTNeoXModel(config)


class Embedder(nn.Module):
    def __init__(self, vocab_size: int, width: int):
        super().__init__()
        self.embeddings = nn.Embedding(vocab_size, width)


class BlockTransformerRef(nn.Module):
    """Module tree whose state_dict names are exactly the authors' checkpoint names."""

    def __init__(self, shape: BlockShape):
        super().__init__()
        assert shape.embedder_width * shape.block_length == shape.hidden_size
        self.shape = shape
        self.embedder = Embedder(shape.vocab_size, shape.embedder_width)
        self.block_decoder = BlockDecoder(neox_config(shape.vocab_size, shape.hidden_size, shape.block_layers,
                                                      shape.heads, shape.ffn))
        td_cfg = neox_config(shape.vocab_size, shape.hidden_size, shape.token_layers, shape.heads, shape.ffn)
        self.token_decoder = PrefixTokenDecoder(td_cfg, shape.hidden_size, shape.expansion_ratio)
        gc = self.token_decoder.generation_config
        gc.eos_token_id, gc.pad_token_id, gc.bos_token_id = EOS_ID, PAD_ID, EOS_ID
        gc.do_sample, gc.num_beams = False, 1
        self.td_positions = PositionRecorder(self.token_decoder.gpt_neox.layers[0].attention)
        self.bd_positions = PositionRecorder(self.block_decoder.gpt_neox.layers[0].attention)

    # ---- pieces -------------------------------------------------------------------------------------
    def embed_blocks(self, blocks: torch.Tensor) -> torch.Tensor:
        """[b, n, L] token ids -> [b, n, d]: token j of a block fills dims [j*d/L, (j+1)*d/L)."""
        b, n, L = blocks.shape
        return self.embedder.embeddings(blocks).reshape(b, n, L * self.shape.embedder_width)

    def run_block_decoder(self, block_embeds, block_mask, past=None):
        return self.block_decoder.gpt_neox(inputs_embeds=block_embeds, attention_mask=block_mask,
                                           past_key_values=past, use_cache=True, return_dict=True)

    # ---- scoring (teacher forcing, the authors' forward()) ------------------------------------------
    @torch.no_grad()
    def score(self, input_ids: list[int]) -> torch.Tensor:
        """Logits [T-L, V]: row j predicts input_ids[L+j]; token-decoder positions 0..R+L-2."""
        L, R = self.shape.block_length, self.shape.expansion_ratio
        assert len(input_ids) % L == 0 and len(input_ids) >= 2 * L
        blocks = torch.tensor(input_ids).view(1, -1, L)
        n = blocks.shape[1]
        h = self.run_block_decoder(self.embed_blocks(blocks), torch.ones(1, n, dtype=torch.long)).last_hidden_state
        prefix = self.token_decoder.expand(h[0, :-1])  # [n-1, R, d]: block i conditions block i+1
        targets = blocks[0, 1:]  # [n-1, L]
        embeds = torch.cat([prefix, self.token_decoder.gpt_neox.embed_in(targets[:, :-1])], dim=1)
        out = self.token_decoder.gpt_neox(inputs_embeds=embeds, return_dict=True).last_hidden_state
        logits = self.token_decoder.embed_out(out[:, R - 1:, :])  # [n-1, L, V]
        return logits.reshape(-1, self.shape.vocab_size)

    # ---- token decoding of one block ----------------------------------------------------------------
    def decode_block_hf(self, prefix: torch.Tensor, count: int):
        """Reference mode: HF generate, called the way the authors' token decoder calls it."""
        b = prefix.shape[0]
        placeholder = torch.full((b, 1), EOS_ID, dtype=torch.long)
        self.token_decoder.logit_log = []
        out = self.token_decoder.generate(input_ids=placeholder, attention_mask=torch.ones_like(placeholder),
                                          prefix_embeds=prefix, max_length=count + 1, do_sample=False)
        logits = torch.stack(self.token_decoder.logit_log, dim=1)  # [b, steps, V]
        self.token_decoder.logit_log = None
        return out[:, 1:], logits

    def decode_block_explicit(self, prefix: torch.Tensor, count: int, prefix_positions: list[int],
                              token_position):
        """Greedy loop with explicit position ids. token_position(k) = position of the k-th fed token (k>=1).
        Finished rows (after EOS) keep producing PAD_ID, as HF generate does."""
        b = prefix.shape[0]
        td = self.token_decoder
        pos = torch.tensor([prefix_positions] * b)
        out = td.gpt_neox(inputs_embeds=prefix, position_ids=pos, use_cache=True, return_dict=True)
        tokens, logits_rows = [], []
        done = torch.zeros(b, dtype=torch.bool)
        for k in range(count):
            logits = td.embed_out(out.last_hidden_state[:, -1, :])
            nxt = logits.argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, PAD_ID), nxt)
            tokens.append(nxt)
            logits_rows.append(logits)
            done |= nxt == EOS_ID
            if k + 1 == count or bool(done.all()):
                break
            pos = torch.full((b, 1), token_position(k + 1), dtype=torch.long)
            out = td.gpt_neox(inputs_embeds=td.gpt_neox.embed_in(nxt[:, None]), position_ids=pos,
                              past_key_values=out.past_key_values, use_cache=True, return_dict=True)
        return torch.stack(tokens, dim=1), torch.stack(logits_rows, dim=1)

    def decode_block(self, prefix, count, mode):
        R = self.shape.expansion_ratio
        if mode == "reference":
            return self.decode_block_hf(prefix, count)
        if mode == "reference_explicit":  # what we claim HF does; cross-checked against "reference"
            return self.decode_block_explicit(prefix, count, [0] * R, lambda k: k)
        if mode == "contiguous":
            return self.decode_block_explicit(prefix, count, list(range(R)), lambda k: R - 1 + k)
        raise ValueError(mode)

    # ---- block-by-block generation (the authors' generate() loop) -----------------------------------
    @torch.no_grad()
    def generate(self, prompts: list[list[int]], max_new_tokens: int, mode: str, pad_first_block: bool):
        """Greedy generation for a batch of prompts, authors' style: prompts are left-padded with token 0
        (mask 0) to a common length, then (pad_first_block) to a multiple of L; masking is per block.
        Returns per prompt (new token ids up to and including EOS, step logits [n, V])."""
        L = self.shape.block_length
        b = len(prompts)
        width = max(len(p) for p in prompts)
        if pad_first_block:
            width += (-width) % L
        elif width % L:
            raise ValueError("without first-block padding the reference needs prompts of a multiple of L")
        ids = torch.full((b, width), EOS_ID, dtype=torch.long)
        mask = torch.zeros((b, width), dtype=torch.long)
        for i, p in enumerate(prompts):
            ids[i, width - len(p):] = torch.tensor(p)
            mask[i, width - len(p):] = 1
        blocks = ids.view(b, -1, L)
        block_mask = mask.view(b, -1, L).any(-1).long()

        embeds = self.embed_blocks(blocks)
        past = None
        unfinished = torch.ones(b, dtype=torch.long)
        new_tokens = [[] for _ in range(b)]
        step_logits = [[] for _ in range(b)]
        produced = 0
        while True:
            out = self.run_block_decoder(embeds, block_mask, past)
            active = unfinished.bool()
            count = min(max_new_tokens - produced, L)
            prefix = self.token_decoder.expand(out.last_hidden_state[active, -1, :])
            toks, logits = self.decode_block(prefix, count, mode)
            next_block = torch.full((b, L), EOS_ID, dtype=torch.long)
            next_block[active, :toks.shape[1]] = toks
            for row, i in enumerate(torch.nonzero(active).flatten().tolist()):
                for k in range(toks.shape[1]):
                    if new_tokens[i] and new_tokens[i][-1] == EOS_ID:
                        break
                    new_tokens[i].append(int(toks[row, k]))
                    step_logits[i].append(logits[row, k])
            unfinished = unfinished * (next_block != EOS_ID).all(-1).long()
            produced += L
            if produced >= max_new_tokens or int(unfinished.sum()) == 0:
                break
            embeds = torch.zeros(b, 1, self.shape.hidden_size)
            embeds[active] = self.embed_blocks(next_block[active][:, None, :])
            past = out.past_key_values
            block_mask = torch.cat([block_mask, unfinished[:, None]], dim=1)
        return [(new_tokens[i], torch.stack(step_logits[i])) for i in range(b)]
