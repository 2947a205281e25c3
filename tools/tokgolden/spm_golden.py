"""Writes golden SentencePiece-BPE token ids for a GGUF llama vocabulary.

An independent re-implementation of llama2.c's encode() (run.c): a dummy
prefix space, one token per UTF-8 character (bytes + 3 when the character is
not in the vocabulary), then repeatedly merge the adjacent pair whose
concatenation is the best-scoring vocabulary entry (leftmost on ties).

Usage: python3 spm_golden.py MODEL.gguf OUT.json
"""
import json
import sys

import gguf_vocab

CASES = [
    "",
    "Once upon a time",
    "Once upon a time, there was a little girl named Lily.",
    "Lily's mom said, \"Lily, let's go to the park.\"",
    "Hello world",
    " leading space",
    "trailing space ",
    "two  spaces   three",
    "line one\nline two\n\nline four",
    "tab\tseparated\tvalues",
    "numbers 0123456789 and 3.14",
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8",
    "emoji \U0001F600 and \u2603",
    "The quick brown fox jumps over the lazy dog!",
    "She said \u201chi\u201d \u2014 and left\u2026",
    "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nWhat is a ball? [/INST]",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "One day, Tim and his dog went to the park to play with a big red ball.",
]


def encode(text, tokens, scores, bos):
    lookup = {t: i for i, t in enumerate(tokens)}
    out = []
    if bos:
        out.append(1)
    if text:
        out.append(lookup["\u2581"])
    for ch in text:
        piece = "\u2581" if ch == " " else ch
        if piece in lookup:
            out.append(lookup[piece])
        else:
            out.extend(b + 3 for b in ch.encode("utf-8"))
    while True:
        best, best_id, best_i = -1e10, -1, -1
        for i in range(len(out) - 1):
            cand = tokens[out[i]] + tokens[out[i + 1]]
            j = lookup.get(cand, -1)
            if j != -1 and scores[j] > best:
                best, best_id, best_i = scores[j], j, i
        if best_i == -1:
            break
        out[best_i:best_i + 2] = [best_id]
    return out


def main():
    meta = gguf_vocab.read_metadata(sys.argv[1])
    tokens = meta["tokenizer.ggml.tokens"]
    scores = meta["tokenizer.ggml.scores"]
    cases = []
    for text in CASES:
        cases.append({"text": text, "bos": True, "ids": encode(text, tokens, scores, True)})
        cases.append({"text": text, "bos": False, "ids": encode(text, tokens, scores, False)})
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        f.write("[\n")
        f.write(",\n".join(json.dumps(c, ensure_ascii=False) for c in cases))
        f.write("\n]\n")


if __name__ == "__main__":
    main()
