#!/usr/bin/env python3
"""Golden token ids for pkg/encoder's Unigram (XLM-RoBERTa SentencePiece)
tokenizer.

Trains a small SentencePiece Unigram model on the fixed corpus below with
Debian's python3-sentencepiece, writes it as tokenizer.json the way
Hugging Face's XLM-RoBERTa converter lays it out (<s> <pad> </s> <unk>
first, the pieces from id 4 with their scores, <mask> last; Precompiled
normalizer; Metaspace; the <s> A </s></s> B </s> template), then encodes
the cases with an independent plain-Python reference: the normalizer
(NFKC and SentencePiece's nmt whitespace/control rules standing in for
the precompiled map), Metaspace, and Viterbi over each word with Hugging
Face's tie-breaking and unknown fusion. It reports how often the
reference agrees with SentencePiece's own encoder on single texts (they
differ where SentencePiece strips leading, trailing and repeated spaces,
which the Hugging Face layout does not).

Run from the repository root:

    /usr/bin/python3 tools/encgolden/unigram_golden.py

It writes pkg/encoder/testdata/unigram-tokenizer.json and
pkg/encoder/testdata/unigram-golden.json. Nothing here calls the Go code.
"""
import base64
import io
import json
import math
import os
import re
import unicodedata

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as spm_pb2

OUT = os.path.join("pkg", "encoder", "testdata")

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Retrieval augmented generation answers questions from your own documents.",
    "How frequently should the unit be serviced? It requires maintenance every 37 days.",
    "The battery charges in 90 minutes and lasts for a whole day of use.",
    "Embeddings map sentences to vectors; similar sentences get similar vectors.",
    "A cross-encoder reads the query and the passage together and scores them.",
    "Licences, disclaimers and templates repeat across many documents.",
    "Le café est très bon, naïve résumé déjà vu, Straße und Größe.",
    "El niño comió jamón en la mañana; ¿dónde está la estación?",
    "北京是中国的首都。我们的用户用中文写文档。",
    "检索增强生成从你自己的文档中回答问题。",
    "向量数据库存储句子的嵌入向量，相似的句子距离更近。",
    "東京の天気は晴れです。",
    "Mixed text: 用户 writes 中文 and English in one line.",
    "Numbers 0123456789, 3.14159 and 2026-12-07 appear in logs.",
    "sentencepiece unigram viterbi segmentation with scores",
] * 8

CASES = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "How often should the unit be serviced?",
    "北京是中国的首都。",
    "我们的用户用中文写文档",
    "Mixed 中文 and English 文本 together",
    "Le café est très bon",
    "Cafe\u0301 na\u0308ive",  # decomposed accents: NFKC composes them
    "Ｆｕｌｌｗｉｄｔｈ　ｔｅｘｔ ①②",  # NFKC folds width and circled digits
    "emoji \U0001F600 \U0001F44D\U0001F3FD and \u2603 snow",
    "unknown ☃☃☃ run",
    "two  spaces   three",
    " leading and trailing ",
    "tab\tand\nnewline",
    "zero\u200bwidth and\u00a0nbsp",
    "ctrl\x07char",
    "xyzzy qwxq zzzz",
    "<s> not a special </s> token <mask>",
    "Numbers 42 and 3.14",
    "retrieval " * 200,
]

PAIRS = [
    ("How often should the unit be serviced?", "It requires maintenance every 37 days."),
    ("北京是哪里？", "北京是中国的首都。"),
    ("café", "Le café est très bon " * 40),
    ("retrieval " * 60, "generation " * 60),
]

MAX_LEN = 32


def train():
    f = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS), model_writer=f, model_type="unigram", vocab_size=300,
        character_coverage=1.0, normalization_rule_name="nmt_nfkc", hard_vocab_limit=False,
        num_threads=1, seed_sentencepiece_size=100000, shrinking_factor=0.75)
    return f.getvalue()


def to_tokenizer_json(model_bytes):
    m = spm_pb2.ModelProto()
    m.ParseFromString(model_bytes)
    assert m.pieces[0].piece == "<unk>" and m.pieces[1].piece == "<s>" and m.pieces[2].piece == "</s>"
    vocab = [["<s>", 0.0], ["<pad>", 0.0], ["</s>", 0.0], ["<unk>", 0.0]]
    vocab += [[p.piece, p.score] for p in m.pieces[3:]]
    vocab.append(["<mask>", 0.0])
    special = [(0, "<s>"), (1, "<pad>"), (2, "</s>"), (3, "<unk>"), (len(vocab) - 1, "<mask>")]
    tok = lambda i: {"SpecialToken": {"id": i, "type_id": 0}}
    seq = lambda i: {"Sequence": {"id": i, "type_id": 0}}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for i, c in special],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Precompiled", "precompiled_charsmap": base64.b64encode(m.normalizer_spec.precompiled_charsmap).decode()},
            {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}]},
        "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True},
        "post_processor": {"type": "TemplateProcessing",
                           "single": [tok("<s>"), seq("A"), tok("</s>")],
                           "pair": [tok("<s>"), seq("A"), tok("</s>"), tok("</s>"), seq("B"), tok("</s>")],
                           "special_tokens": {"<s>": {"id": "<s>", "ids": [0], "tokens": ["<s>"]},
                                              "</s>": {"id": "</s>", "ids": [2], "tokens": ["</s>"]}}},
        "decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True},
        "model": {"type": "Unigram", "unk_id": 3, "vocab": vocab, "byte_fallback": False},
    }


# ------------------------------------------------------------ the reference

# SentencePiece's nmt_nfkc adds to NFKC: these become a space, and the C0
# controls other than them (and DEL) are removed.
NMT_SPACES = {0x09, 0x0A, 0x0C, 0x0D, 0x1680, 0x200B, 0x200E, 0x200F, 0x2028, 0x2029, 0x3000, 0xFEFF}
NMT_REMOVED = set(range(0x01, 0x09)) | {0x0B} | set(range(0x0E, 0x20)) | {0x7F, 0x8F, 0x9F}


def normalize(text):
    out = []
    for ch in text:
        c = ord(ch)
        if c in NMT_REMOVED:
            continue
        out.append(" " if c in NMT_SPACES else ch)
    text = unicodedata.normalize("NFKC", "".join(out))
    return re.sub(" {2,}", " ", text)


class Reference:
    def __init__(self, tj):
        m = tj["model"]
        special = {a["id"] for a in tj["added_tokens"] if a["special"]}
        self.unk = m["unk_id"]
        self.pieces = {}
        for i, (p, s) in enumerate(m["vocab"]):
            if i in special or i == self.unk or p in self.pieces:
                continue
            self.pieces[p] = (i, s)
        self.unk_score = min(s for _, s in m["vocab"]) - 10.0
        self.max_chars = max(len(p) for p in self.pieces)

    def words(self, text):
        text = normalize(text)
        if not text:
            return []
        text = text.replace(" ", "\u2581")
        if not text.startswith("\u2581"):
            text = "\u2581" + text
        return [w for w in re.split("(?=\u2581)", text) if w]

    def viterbi(self, w):
        n = len(w)
        best = [None] * (n + 1)  # (score, start, id)
        best[0] = (0.0, 0, None)
        for i in range(n):
            if best[i] is None:
                continue
            single = False
            for j in range(i + 1, min(n, i + self.max_chars) + 1):
                hit = self.pieces.get(w[i:j])
                if hit is None:
                    continue
                if j == i + 1:
                    single = True
                s = best[i][0] + hit[1]
                if best[j] is None or s > best[j][0]:
                    best[j] = (s, i, hit[0])
            if not single:
                s = best[i][0] + self.unk_score
                if best[i + 1] is None or s > best[i + 1][0]:
                    best[i + 1] = (s, i, self.unk)
        segs = []
        end = n
        while end > 0:
            _, start, tid = best[end]
            if tid == self.unk and segs and segs[-1][2] == self.unk:
                segs[-1][0] = start
            else:
                segs.append([start, end, tid])
            end = start
        ids = []
        for start, end, tid in reversed(segs):
            if tid == self.unk and w[start:end] in self.pieces:
                tid = self.pieces[w[start:end]][0]
            ids.append(tid)
        return ids

    def tokens(self, text):
        return [i for w in self.words(text) for i in self.viterbi(w)]

    def encode(self, text, max_len=0):
        a = self.tokens(text)
        cut = False
        if max_len and len(a) > max_len - 2:
            a, cut = a[:max_len - 2], True
        return [0] + a + [2], cut

    def encode_pair(self, a_text, b_text, max_len=0):
        a, b = self.tokens(a_text), self.tokens(b_text)
        cut = False
        m = max_len - 4
        if max_len and len(a) + len(b) > m:
            # Hugging Face's longest_first: the shorter keeps what fits in
            # half, the longer takes the rest (the odd one when halved).
            n1, n2, swap = len(a), len(b), len(a) > len(b)
            if swap:
                n1, n2 = n2, n1
            n2 = n1 if n1 > m else max(n1, m - n1)
            if n1 + n2 > m:
                n1 = m // 2
                n2 = n1 + m % 2
            if swap:
                n1, n2 = n2, n1
            a, b, cut = a[:n1], b[:n2], True
        return [0] + a + [2, 2] + b + [2], cut


def main():
    model = train()
    tj = to_tokenizer_json(model)
    with open(os.path.join(OUT, "unigram-tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False, indent=1)
    ref = Reference(tj)
    sp = spm.SentencePieceProcessor(model_proto=model)
    agree = 0
    cases = []
    for text in CASES:
        ids, _ = ref.encode(text)
        spids = [0] + [3 if i == 0 else i + 1 for i in sp.encode(text)] + [2]
        if spids == ids:
            agree += 1
        else:
            print("differs from sentencepiece:", repr(text[:40]), ids[:12], spids[:12])
        cut_ids, cut = ref.encode(text, MAX_LEN)
        cases.append({"text": text, "ids": ids, "max_len": MAX_LEN, "cut_ids": cut_ids, "cut": cut})
    pairs = []
    for a, b in PAIRS:
        ids, _ = ref.encode_pair(a, b)
        cut_ids, cut = ref.encode_pair(a, b, MAX_LEN)
        pairs.append({"a": a, "b": b, "ids": ids, "max_len": MAX_LEN, "cut_ids": cut_ids, "cut": cut})
    print(f"reference agrees with sentencepiece on {agree} of {len(CASES)} texts")
    with open(os.path.join(OUT, "unigram-golden.json"), "w", encoding="utf-8") as f:
        json.dump({"cases": cases, "pairs": pairs}, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
