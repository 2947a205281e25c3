"""Trains a small byte-level BPE vocabulary and writes golden token ids.

An independent reference for pkg/tokenizer's GPT-2 path: byte-level
encoding and the merge loop follow OpenAI's original encoder.py (merge every
occurrence of the lowest-ranked pair, repeat), pre-tokenization runs the
real expressions through Python's `regex` module, and Llama 3's
ignore_merges rule emits a word found whole in the vocabulary.

Usage: python3 bpe_golden.py OUT.json
"""
import json
import sys
from collections import Counter

import regex

from pretok_golden import GPT2, LLAMA3, QWEN2

SPECIALS = ["<|begin_of_text|>", "<|eot_id|>"]

CORPUS = """Once upon a time, there was a little girl named Lily. She loved to play outside in
the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.
Lily's mom said, "Lily, let's go to the park." Lily was sad and didn't know what to do.
They'll play tomorrow; we've got 123 balls and 4567 toys. I'm happy! You're right, it's 2024.
The quick brown fox jumps over the lazy dog. The dog didn't care.
"""

TEXTS = [
    "Once upon a time, there was a little girl named Lily.",
    "She'll say they've 12345 balls... DON'T they?",
    "The park\n\nwas  big\tand   red  ",
    "caf\u00e9 \u65e5\u672c \U0001F600 ok",
    "<|begin_of_text|>Lily<|eot_id|> played",
    "the the the thethe",
    "x = 3.14159; y = 1,000,000",
]


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


B2U = bytes_to_unicode()


def encode_word(w):
    return "".join(B2U[b] for b in w.encode("utf-8"))


def train(corpus, pattern, n_merges):
    words = Counter(tuple(encode_word(w)) for w in regex.findall(pattern, corpus))
    merges = []
    for _ in range(n_merges):
        pairs = Counter()
        for w, c in words.items():
            for p in zip(w, w[1:]):
                pairs[p] += c
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        new = Counter()
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new[tuple(out)] += c
        words = new
    return merges


def bpe(word, ranks):
    word = list(word)
    while len(word) > 1:
        pairs = set(zip(word, word[1:]))
        best = min(pairs, key=lambda p: ranks.get(p, float("inf")))
        if best not in ranks:
            break
        out, i = [], 0
        while i < len(word):
            if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                out.append(word[i] + word[i + 1])
                i += 2
            else:
                out.append(word[i])
                i += 1
        word = out
    return word


def encode(text, pattern, ids, ranks, ignore_merges):
    out = []
    special_re = "(" + "|".join(regex.escape(s) for s in SPECIALS) + ")"
    for part in regex.split(special_re, text):
        if not part:
            continue
        if part in SPECIALS:
            out.append(ids[part])
            continue
        for w in regex.findall(pattern, part):
            enc = encode_word(w)
            if ignore_merges and enc in ids:
                out.append(ids[enc])
                continue
            out.extend(ids[p] for p in bpe(enc, ranks))
    return out


def main():
    merges = train(CORPUS, LLAMA3, 160)
    tokens = [B2U[b] for b in range(256)]
    for a, b in merges:
        if a + b not in tokens:
            tokens.append(a + b)
    tokens += SPECIALS
    types = [1] * (len(tokens) - len(SPECIALS)) + [3] * len(SPECIALS)
    ids = {t: i for i, t in enumerate(tokens)}
    ranks = {m: i for i, m in enumerate(merges)}
    cases = []
    for pre, pattern, ignore in [("llama-bpe", LLAMA3, True), ("qwen2", QWEN2, False), ("gpt2", GPT2, False)]:
        for t in TEXTS:
            cases.append({"pre": pre, "text": t, "ids": encode(t, pattern, ids, ranks, ignore)})
    with open(sys.argv[1], "w", encoding="utf-8") as f:
        json.dump({"tokens": tokens, "types": types, "merges": [a + " " + b for a, b in merges], "cases": cases}, f, ensure_ascii=True)
        f.write("\n")


if __name__ == "__main__":
    main()
