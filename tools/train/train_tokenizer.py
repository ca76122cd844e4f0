"""Byte-level BPE tokenizer for the demo models, trained on the training split only.

Same pipeline as GPT-NeoX-20B's tokenizer.json (NFC normalizer, ByteLevel pre-tokenizer without prefix
space, BPE, ByteLevel decoder), so the engine's tokenizer loader takes it unchanged, and the same two
special tokens at the same ids: <|endoftext|> = 0 (separator / end of text, also the left-pad token),
<|padding|> = 1.

usage: python train_tokenizer.py CORPUS_DIR OUT/tokenizer.json [--vocab 4096]
"""
from __future__ import annotations

import argparse
import json
import os

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

SPECIALS = ["<|endoftext|>", "<|padding|>"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus")
    ap.add_argument("out")
    ap.add_argument("--vocab", type=int, default=4096)
    args = ap.parse_args()
    with open(os.path.join(args.corpus, "train.jsonl")) as fh:
        texts = [json.loads(l) for l in fh]
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=args.vocab, min_frequency=2, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    for i, s in enumerate(SPECIALS):
        assert tok.token_to_id(s) == i, f"{s} must be id {i}"
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tok.save(args.out)
    sample = texts[0]
    assert tok.decode(tok.encode(sample).ids) == sample, "round trip failed"
    n = sum(len(tok.encode(t).ids) for t in texts[:2000])
    c = sum(len(t) for t in texts[:2000])
    print(f"vocab {tok.get_vocab_size()}, {c / n:.2f} chars/token on 2000 training cookies")


if __name__ == "__main__":
    main()
