"""Imports the authors' own code from a checkout of github.com/itsnamgyu/block-transformer (commit 17842dd) at run
time: nothing of theirs is copied into this repository. Shared by make_authors_fixtures.py and tools/lmeval/.

Needs transformers 4.39.3 (their model classes import GPTNeoXFlashAttention2, gone in later releases) plus what
their vendored lm_eval imports: accelerate, peft, evaluate, sqlitedict, jinja2 (tools/reference/requirements-authors.txt).
"""
from __future__ import annotations

import importlib
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import GPTNeoXConfig, PreTrainedTokenizerFast

PYTHIA_DEFAULTS = dict(rotary_pct=0.25, rotary_emb_base=10000, max_position_embeddings=2048, layer_norm_eps=1e-5,
                       hidden_act="gelu", use_parallel_residual=True, tie_word_embeddings=False,
                       bos_token_id=0, eos_token_id=0)


@dataclass
class Shape:
    """One Block Transformer: L, R, widths (db block decoder, dt token decoder), depths, heads, residual."""
    name: str
    block_length: int
    expansion_ratio: int
    block_width: int
    token_width: int
    block_layers: int
    token_layers: int
    block_heads: int
    token_heads: int
    parallel_residual: bool = True
    pad_first_block: bool | None = True  # None: key absent from the YAML (trained without padding)
    vocab_size: int = 512


def neox(vocab: int, d: int, layers: int, heads: int, parallel: bool) -> GPTNeoXConfig:
    cfg = GPTNeoXConfig(vocab_size=vocab, hidden_size=d, num_hidden_layers=layers, num_attention_heads=heads,
                        intermediate_size=4 * d, **{**PYTHIA_DEFAULTS, "use_parallel_residual": parallel})
    cfg._attn_implementation = "eager"
    return cfg


def add_checkout(repo: Path) -> None:
    repo = repo.resolve()
    if not (repo / "model" / "block_transformer.py").is_file():
        raise SystemExit(f"{repo} is not a checkout of itsnamgyu/block-transformer (no model/block_transformer.py)")
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))


def build_block_transformer(repo: Path, s: Shape):
    """Their BlockTransformer, built the way their model/utils.py loader does (projection_hidden_size = the
    block decoder's width; the token decoder's own width from its config)."""
    add_checkout(repo)
    from model.block_transformer import BlockTransformer
    from model.block_decoder.gpt_neo_x import GPTNeoXBlockDecoder
    from model.embedder.lookup import LookupConfig, LookupEmbedder
    from model.token_decoder.gpt_neo_x import GPTNeoXTokenDecoder

    block_decoder = GPTNeoXBlockDecoder(neox(s.vocab_size, s.block_width, s.block_layers, s.block_heads,
                                             s.parallel_residual), n_embedding_tokens=1)
    embedder = LookupEmbedder(LookupConfig(vocab_size=s.vocab_size, hidden_size=s.block_width // s.block_length),
                              block_length=s.block_length, n_embedding_tokens=1, projection_method="concat",
                              projection_hidden_size=s.block_width)
    token_decoder = GPTNeoXTokenDecoder(neox(s.vocab_size, s.token_width, s.token_layers, s.token_heads,
                                             s.parallel_residual),
                                        block_length=s.block_length, n_embedding_tokens=1,
                                        projection_hidden_size=block_decoder.hidden_size,
                                        expansion_method="expansion_layer", expansion_ratio=s.expansion_ratio,
                                        decoding_strategy="prefix")
    token_decoder.generation_config.pad_token_id = 1  # as their load_block_transformer_from_config does
    return BlockTransformer(embedder=embedder, block_decoder=block_decoder, token_decoder=token_decoder,
                            use_token_decoding_loss=True, decoding_strategy="prefix").eval()


def load_lmeval_models(repo: Path):
    """Their vendored lm_eval's model module (HFLM, BlockTransformerWrapper pad / no-pad), without running
    lm_eval/__init__.py (which pulls in the whole evaluator and task registry)."""
    add_checkout(repo)
    if "lm_eval" in sys.modules and getattr(sys.modules["lm_eval"], "__path__", [None])[0] != str(repo / "lm_eval"):
        raise SystemExit("another lm_eval is already imported; run the authors' code in its own interpreter")
    pkg = types.ModuleType("lm_eval")
    pkg.__path__ = [str(repo.resolve() / "lm_eval")]
    sys.modules["lm_eval"] = pkg
    pad = importlib.import_module("lm_eval.models.block_transformer_pad")
    nopad = importlib.import_module("lm_eval.models.block_transformer_nopad")
    hf = importlib.import_module("lm_eval.models.huggingface")
    instance = importlib.import_module("lm_eval.api.instance")
    return {"pad": pad.BlockTransformerWrapper, "nopad": nopad.BlockTransformerWrapper, "HFLM": hf.HFLM,
            "Instance": instance.Instance}


def tokenizer_from_file(path: Path) -> PreTrainedTokenizerFast:
    """Special tokens as Pythia's tokenizer has them: <|endoftext|> is bos, eos and unk; no pad token (their
    HFLM then pads with unk = 0, which is what their block wrappers use as the pad id)."""
    return PreTrainedTokenizerFast(tokenizer_file=str(path), bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                   unk_token="<|endoftext|>")


def wrapper_logprobs(wrapper_cls, model, texts: list[list[int]]) -> list[torch.Tensor]:
    """Their wrapper's _model_call on the texts as one batch, right-padded with 0 as their HFLM batches
    requests, then log_softmax as their HFLM does. Returns, per text, the rows that predict its own tokens:
    row i -> token i+1 (pad wrapper) or token L+i (no-pad wrapper)."""
    L = model.token_decoder.block_length
    width = max(len(t) for t in texts)
    batch = torch.zeros(len(texts), width, dtype=torch.long)
    for r, t in enumerate(texts):
        batch[r, :len(t)] = torch.tensor(t)
    lm = object.__new__(wrapper_cls)  # their _model_call needs only .model and .tokenizer
    lm._model = model
    lm.tokenizer = types.SimpleNamespace(pad_token_id=0, eos_token_id=0)
    with torch.no_grad():
        logprobs = torch.log_softmax(lm._model_call(batch), dim=-1)
    first = 1 if wrapper_cls.__module__.endswith("_pad") else L
    return [logprobs[r, :len(t) - first] for r, t in enumerate(texts)]
