"""Golden encode/decode values from HF `tokenizers` (the Rust library, via Python) for the built-in
GPT-NeoX tokenizer. engine/tokenizer/tokenizer.test.ts checks the TS tokenizer against them.

    python3 -m venv /work/venv-tok && /work/venv-tok/bin/pip install tokenizers
    /work/venv-tok/bin/python tools/reference/tokenizer_golden.py

Writes test/fixtures/tokenizer/golden.json. Deterministic: rerunning gives the same file.
"""
import hashlib
import json
import os
import random

import tokenizers
from tokenizers import Tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOKENIZER = os.path.join(ROOT, "engine", "tokenizer", "gpt-neox-20b", "tokenizer.json")
OUT = os.path.join(ROOT, "test", "fixtures", "tokenizer", "golden.json")

TEXTS = [
    "",
    "Hello, world!",
    " leading space and trailing space ",
    "a  b   c    d     e      f",
    " " * 30 + "x" + " " * 25,
    "\t\ttabs\tand\nnewlines\n\n\nand\r\nwindows\r\n",
    "def f(x):\n    if x:\n        return 1\n\n\n\treturn 2\n",
    "digits 0123456789, pi 3.14159265358979, money $1,000,000.00, 2024-11-28T13:45:00Z",
    "12345678901234567890123456789012345678901234567890",
    "Ünïcödé façade naïve café résumé Ångström",
    "decomposed: e\u0301 a\u0308 n\u0303 A\u030a, angstrom sign \u212b, ligature \ufb01",
    "Zalgo: Z\u0334\u0321\u031ba\u0338l\u0336g\u0337o\u0334",
    "日本語のテキストと中文文本，还有한국어。",
    "😀😃😄 👍 👍🏽 👩🏿‍🚀",
    "family 👨‍👩‍👧‍👦 rainbow 🏳️‍🌈 handshake 🧑🏻‍🤝‍🧑🏿 flags 🇯🇵🇺🇸🇩🇪",
    "مرحبا بالعالم שלום עולם",
    "नमस्ते दुनिया สวัสดีชาวโลก",
    "Привет мир Γειά σου Κόσμε",
    "import numpy as np\n\nclass Model(nn.Module):\n    def forward(self, x: Tensor) -> Tensor:\n        return self.proj(x) ** 2  # square\n",
    "const f = async (a, b) => { await fetch(`/api/${a}?b=${b}`); return a ?? b; };",
    'fn main() {\n    let v: Vec<u8> = vec![1, 2, 3];\n    println!("{:?}", v.iter().map(|x| x * 2).collect::<Vec<_>>());\n}',
    "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 42); return 0; }",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC LIMIT 10;",
    '<div class="x">{"key": [1, 2.5, null, true], "nested": {"a": "b"}}</div>',
    "<|endoftext|>",
    "before<|endoftext|>after<|padding|> x<|endoftext|><|endoftext|>",
    "assistant RWKV <|im_start|>user hi<|im_end|>",
    "pneumonoultramicroscopicsilicovolcanoconiosis " + "supercalifragilistic" * 25,
    "a" * 300,
    "I'm you're it's we'll they've don't He'd O'Neill",
    "!!!??? ... --- *** ___ === ~~~ ``` ''' \"\"\"",
    "∀x∈ℝ: x² ≥ 0, ∑ᵢ aᵢ, ∫ f dx, √2 ≠ 1.41, ∞ ≈ ℵ₀",
    "zero\u200bwidth no\u00a0break ideographic\u3000space line\u2028separator",
    "controls \u0000\u0001\u001f\u007f bell\u0007 escape\u001b[0m",
    "https://example.com/path?q=a+b&x=%20#frag user.name+tag@example.co.uk",
    "| col | val |\n|-----|-----|\n| a   | 1   |\n",
    "abc日本def😀ghi한국jkl",
    "¡¢£¤¥¦§¨©ª«¬\u00ad®¯°±²³´µ¶·¸¹º»¼½¾¿ ÷×",
    "The quick brown fox jumps over the lazy dog. " * 8,
    "   \n   \n\t \t\n",
    "\U0001F600" * 5 + "\U00010348 gothic \U0001D11E music",
]


def byte_token_id(tok, b):
    """The id of the single-byte token for byte b (byte-level alphabet, as in GPT-2)."""
    printable = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    n = 0
    table = {}
    for x in range(256):
        if x in printable:
            table[x] = chr(x)
        else:
            table[x] = chr(256 + n)
            n += 1
    return tok.token_to_id(table[b])


def decode_cases(tok):
    emoji = tok.encode("👩🏿‍🚀", add_special_tokens=False).ids
    euro = tok.encode("€ and 日本", add_special_tokens=False).ids
    f0, x9f, e2, x82, xac = (byte_token_id(tok, b) for b in (0xF0, 0x9F, 0xE2, 0x82, 0xAC))
    rng = random.Random(1234)
    cases = [
        ("lone lead byte F0", [f0]),
        ("lone continuation byte 82", [x82]),
        ("euro sign byte by byte", [e2, x82, xac]),
        ("euro sign missing its last byte, then text", [e2, x82] + tok.encode(" ok", add_special_tokens=False).ids),
        ("four-byte lead cut short twice", [f0, x9f, f0, x9f]),
        ("first half of an emoji", emoji[: len(emoji) // 2]),
        ("emoji tokens reversed", emoji[::-1]),
        ("emoji with <|endoftext|> inside", emoji[:2] + [0] + emoji[2:]),
        ("euro and CJK", euro),
        ("special tokens only", [0, 1, 0]),
        ("space-run added tokens", list(range(50254, 50277))),
        ("ids the tokenizer does not have (padded vocab rows)", [12092, 50277, 50303, 1533]),
        # Bytes that never occur in UTF-8 (C0, C1, F5-FF) have no token in this vocabulary.
        ("every single-byte token", [i for i in (byte_token_id(tok, b) for b in range(256)) if i is not None]),
    ]
    for i in range(6):
        cases.append((f"random ids {i}", [rng.randrange(0, 50277) for _ in range(200)]))
    # Random draws from the multi-byte-piece tokens: many partial characters, stress for streaming.
    pieces = [i for i in range(2, 50254) if "\ufffd" in tok.decode([i])]
    for i in range(4):
        cases.append((f"random partial-character tokens {i}", [rng.choice(pieces) for _ in range(120)]))
    return cases


def main():
    tok = Tokenizer.from_file(TOKENIZER)
    with open(TOKENIZER, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    encode = []
    for text in TEXTS:
        ids = tok.encode(text, add_special_tokens=False).ids
        encode.append({"text": text, "ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False)})
    decode = []
    for name, ids in decode_cases(tok):
        decode.append({
            "name": name,
            "ids": ids,
            "text": tok.decode(ids, skip_special_tokens=False),
            "text_skip_special": tok.decode(ids, skip_special_tokens=True),
        })
    golden = {
        "generator": "tools/reference/tokenizer_golden.py",
        "tokenizers_version": tokenizers.__version__,
        "tokenizer_sha256": sha,
        "vocab_size": tok.get_vocab_size(with_added_tokens=True),
        "encode": encode,
        "decode": decode,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=True, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {OUT}: {len(encode)} encode cases, {len(decode)} decode cases")


if __name__ == "__main__":
    main()
