"""Writes golden pre-tokenizer splits for pkg/tokenizer's hand-written scanners.

The expressions are the ones in Hugging Face tokenizer.json files (and
llama.cpp), run by the third-party `regex` module, which supports the
lookahead and Unicode classes that Go's regexp lacks.

Usage: python3 pretok_golden.py OUT.json
"""
import json
import random
import sys

import regex

GPT2 = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
LLAMA3 = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
QWEN2 = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""


def smollm(text):
    out = []
    for piece in regex.split(r"(\p{N})", text):
        if piece:
            out.extend(regex.findall(GPT2, piece))
    return out


SPLITTERS = {
    "gpt2": lambda s: regex.findall(GPT2, s),
    "llama-bpe": lambda s: regex.findall(LLAMA3, s),
    "qwen2": lambda s: regex.findall(QWEN2, s),
    "smollm": smollm,
}

FIXED = [
    "Hello world",
    "I'm sure they'll say we've done it, didn't they? YOU'RE RIGHT'S",
    "Numbers: 1, 12, 123, 1234, 12345, 3.14159 and 1,000,000.",
    "  leading, trailing  ",
    "tabs\tand\nnewlines\r\n\r\nand   spaces   \n  x",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8 \u4e2d\u6587\u5b57 \ud55c\uad6d\uc5b4",
    "caf\u00e9 na\u0131\u0308ve e\u0301 \u00a0nbsp\u3000ideographic",
    "emoji \U0001F600\U0001F44D!! ok",
    "code: if (x == 42) { return y->z; }\n",
    "<|im_start|>user\nHi<|im_end|>",
    "superscript x\u00b2 and arabic \u0663\u0664\u0665\u0666 digits",
    "'s 'S 'Ll 'VE ' alone '",
    "$100 #hashtag @user e-mail@example.com http://x.y/z?q=1",
]

ALPHABET = list("aZk'sStTlLdDrRvVem 0123456789.,!?$-") + [
    " ", " ", "  ", "\n", "\r\n", "\t", "\u00a0", "\u3000", "\u65e5", "\u00e9",
    "\u0301", "\U0001F600", "\u00b2", "\u0663", "'s", "'ll", "'RE",
]


def main():
    rng = random.Random(20261128)
    texts = list(FIXED)
    for _ in range(300):
        n = rng.randint(1, 24)
        texts.append("".join(rng.choice(ALPHABET) for _ in range(n)))
    cases = []
    for t in texts:
        for name, split in SPLITTERS.items():
            words = split(t)
            assert "".join(words) == t, (name, t, words)
            cases.append({"pre": name, "text": t, "words": words})
    with open(sys.argv[1], "w", encoding="utf-8") as f:
        f.write("[\n")
        f.write(",\n".join(json.dumps(c, ensure_ascii=True) for c in cases))
        f.write("\n]\n")


if __name__ == "__main__":
    main()
