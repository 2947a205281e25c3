#!/usr/bin/env python3
"""Goldens for pkg/encoder's Precompiled normalizer (SentencePiece's
precompiled_charsmap), taken from SentencePiece itself.

Run from the repository root (Debian's python3-sentencepiece, 0.1.97; no
protobuf module needed, the model protos are read and patched by hand):

    /usr/bin/python3 tools/tokgolden/precompiled_golden.py pkg/encoder/testdata/precompiled

It trains two tiny Unigram models on the fixed corpus below, one with the
nmt_nfkc rule (XLM-RoBERTa's, multilingual-e5's and bge-m3's) and one
with a small hand-written rule TSV (nested, overlapping and deleting
rules that nmt_nfkc lacks), and writes for each NAME:

- NAME.tokenizer.json.gz: the model in Hugging Face's XLM-RoBERTa layout
  (<s> <pad> </s> <unk>, SentencePiece's pieces from id 4, <mask>; the
  normalizer Sequence[Precompiled, Strip right, Replace " {2,}" -> "▁"]
  that transformers' SpmConverter writes; Metaspace), gzipped because the
  nmt_nfkc charsmap alone is 237 KB (about 4x smaller compressed).
- NAME.golden.json: SentencePiece's own output for each case:
  "normalized" is the charsmap alone (the model re-run with
  add_dummy_prefix, remove_extra_whitespaces and escape_whitespaces off,
  so its pieces concatenate to exactly what NormalizePrefix produced), and
  "ids"/"pieces" are SentencePiece's encoding with the model's own spec.
  Texts that are not valid UTF-8 are given as "hex" instead of "text".

Nothing here calls the Go code.
"""
import base64
import gzip
import io
import json
import os
import struct
import sys
import tempfile

import sentencepiece as spm

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Retrieval augmented generation answers questions from your own documents.",
    "Finance and workflow files: office, official, effect, affine.",
    "Le café est très bon, naïve résumé déjà vu, Straße und Größe.",
    "El niño comió jamón en la mañana; ¿dónde está la estación?",
    "北京是中国的首都。我们的用户用中文写文档。",
    "東京の天気は晴れです。カタカナとひらがな。",
    "한국어 텍스트를 토큰으로 나눕니다.",
    "مرحبا بالعالم، هذا نص عربي.",
    "Ελληνικά κείμενα με τόνους.",
    "Numbers 0123456789, 3.14159 and 2026-12-07 appear in logs.",
    "Emoji 😀 👍 ❤ and symbols ™ ℃ № appear too.",
    "Mixed text: 用户 writes 中文 and English in one line.",
] * 6

# A rule TSV in SentencePiece's format (source code points, tab, target code
# points; an empty target deletes): nested keys where only the longest
# match is right, a deletion, expansions and a contraction.
RULES = """\
41\t61
41 42\t78 79
41 42 43 44\t
DF\t73 73
E9\t65 301
65 301\tE9
FB01\t66 69
3000\t20
9\t20
1F600\t3A 29
"""

CASES = [
    "",
    "Hello world",
    "Ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３ ＋－＝",
    "ﬁnance ﬂow ﬀ ﬃ ﬄ ﬅ ﬆ",
    "①②③ ⑩ ⑳ ㊿ ⒜ ⓐ ❶",
    "㍿ ㌔ ㎏ ㈱ ㋿ ㍻",
    "\uf900\uf901\ufa0e \U0002f800\U0002f801",
    "Cafe\u0301 nai\u0308ve A\u030a \u212b \u00c5",
    "e\u0301\u0323 e\u0323\u0301 o\u0308\u0304",
    "\uff21\u0301 \uff41\u0308",
    "\u0301abc",
    "a" + "\u0301" * 40,
    "ctrl a\x01b\x07c\x1bd\x7fe",
    "tab\there\nnew\r\nline\x0bvt\x0cff",
    "c1 a\u0080b\u0085c\u008fd\u009fe",
    "zero\u200bwidth\u200cnon\u200djoin\ufeffbom\u2060wj",
    "bidi \u200e\u200f\u202a\u202b\u202c\u202d\u202e end",
    "nbsp\u00a0x\u2002en\u2003em\u3000ideo\u205fmath\u1680ogham\u2028ls\u2029ps",
    "  leading and trailing  ",
    "a    b\t\t c \u3000 \u3000 d",
    "   \u3000 \t ",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 family \U0001f3f3\ufe0f\u200d\U0001f308 flag \U0001f44d\U0001f3fd",
    "1\ufe0f\u20e3 #\ufe0f\u20e3 \u2764\ufe0f \U0001f600",
    "한국어 텍스트 \u1112\u1161\u11ab \u3131\u314f\u3134",
    "ｶﾀｶﾅ ｶﾞｷﾞ ﾊﾟ ｰ",
    "مرحبا بالعالم \ufefb \ufdf2 \ufe8d",
    "שָׁלוֹם עולם",
    "नमस्ते क़ ड़",
    "ภาษาไทย ำ",
    "\u0386\u0388\u0389 \u1f71 \u03c2 \u2126",
    "Straße ǅ ǆ \u0130stanbul ı",
    "x² H₂O ½ ⅓ ℃ ℉ ™ № ㏂",
    "Ⅻ ⅻ ⅷ",
    "\U0001d400\U0001d401\U0001d402 \U0001d54f \U0001d518",
    "（括弧）「引用」！？、。［］｛｝",
    "北京是中国的首都。Mixed 中文 and English",
    "…‥ — ‘’“” ‹› «»",
    "\ufffd",
    "\ue000\uf8ff\U000f0000 \ufdd0 \uffff",
    "葛\U000e0100 a\ufe00 \u00ad soft",
    "ABCDABCABA ßé\u00e9e\u0301 \U0001f600",
    "ﬁ①Ｆ ﬂ ㍿ ab\u3000 " * 200,
    b"ab\xffcd\xc3(\xe2\x82 x \xed\xa0\x80 y \xf0\x9f\x98",
    b"overlong \xc0\xaf \xe0\x80\xaf \xf8\x88\x80\x80\x80 end",
    b"\xef\xbc\xa1\xff\xef\xac\x81",
    "nul a\x00b",
]


# ------------------------------------------------------------ protobuf

def varint(b, i):
    v = s = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return v, i


def fields(b):
    """Yields (field number, wire type, value) of a serialized message."""
    i = 0
    while i < len(b):
        key, i = varint(b, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(b, i)
        elif wt == 1:
            v, i = b[i:i + 8], i + 8
        elif wt == 2:
            n, i = varint(b, i)
            v, i = b[i:i + n], i + n
        elif wt == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise ValueError("wire type %d" % wt)
        yield num, wt, v


def put_varint(v):
    out = bytearray()
    while True:
        c = v & 0x7F
        v >>= 7
        if v:
            out.append(c | 0x80)
        else:
            out.append(c)
            return bytes(out)


def model_parts(model):
    """Returns the pieces [(piece, score, type)] and the normalizer spec."""
    pieces, spec = [], None
    for num, _, v in fields(model):
        if num == 1:
            piece, score, typ = "", 0.0, 1
            for n, _, x in fields(v):
                if n == 1:
                    piece = x.decode()
                elif n == 2:
                    score = struct.unpack("<f", x)[0]
                elif n == 3:
                    typ = x
            pieces.append((piece, score, typ))
        elif num == 3:
            spec = v
    return pieces, spec


def charsmap_of(spec):
    for n, _, v in fields(spec):
        if n == 2:
            return bytes(v)
    return b""


def raw_model(model):
    """The model with add_dummy_prefix (3), remove_extra_whitespaces (4)
    and escape_whitespaces (5) off: its pieces spell the charsmap's output.
    A later scalar field wins in protobuf, so they are appended."""
    out = bytearray()
    for num, wt, v in fields(model):
        if num == 3:
            v = bytes(v) + b"".join(put_varint(f << 3) + b"\0" for f in (3, 4, 5))
        out += put_varint(num << 3 | wt)
        if wt == 0:
            out += put_varint(v)
        elif wt == 2:
            out += put_varint(len(v)) + bytes(v)
        else:
            out += bytes(v)
    return bytes(out)


def encode(sp, text):
    """SentencePiece's pieces (as bytes) and ids for text."""
    proto = sp.EncodeAsSerializedProto(text)
    pieces, ids = [], []
    for num, _, v in fields(proto):
        if num == 2:
            piece, pid = b"", 0
            for n, _, x in fields(v):
                if n == 1:
                    piece = bytes(x)
                elif n == 2:
                    pid = x
            pieces.append(piece)
            ids.append(pid)
    return pieces, ids


# ------------------------------------------------------------ outputs

def train(**kw):
    f = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS), model_writer=f, model_type="unigram", vocab_size=220,
        character_coverage=1.0, hard_vocab_limit=False, num_threads=1, seed_sentencepiece_size=100000,
        shrinking_factor=0.75, **kw)
    return f.getvalue()


def tokenizer_json(pieces, charsmap):
    assert [p[0] for p in pieces[:3]] == ["<unk>", "<s>", "</s>"]
    vocab = [["<s>", 0.0], ["<pad>", 0.0], ["</s>", 0.0], ["<unk>", 0.0]]
    vocab += [[p, s] for p, s, _ in pieces[3:]]
    vocab.append(["<mask>", 0.0])
    special = [(0, "<s>"), (1, "<pad>"), (2, "</s>"), (3, "<unk>"), (len(vocab) - 1, "<mask>")]
    tok = lambda i: {"SpecialToken": {"id": i, "type_id": 0}}
    seq = lambda i: {"Sequence": {"id": i, "type_id": 0}}
    return {
        "version": "1.0",
        "added_tokens": [{"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for i, c in special],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Precompiled", "precompiled_charsmap": base64.b64encode(charsmap).decode()},
            {"type": "Strip", "strip_left": False, "strip_right": True},
            {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": "\u2581"}]},
        "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True},
        "post_processor": {"type": "TemplateProcessing",
                           "single": [tok("<s>"), seq("A"), tok("</s>")],
                           "pair": [tok("<s>"), seq("A"), tok("</s>"), tok("</s>"), seq("B"), tok("</s>")],
                           "special_tokens": {"<s>": {"id": "<s>", "ids": [0], "tokens": ["<s>"]},
                                              "</s>": {"id": "</s>", "ids": [2], "tokens": ["</s>"]}}},
        "model": {"type": "Unigram", "unk_id": 3, "vocab": vocab, "byte_fallback": False},
    }


def golden(model, name):
    pieces, spec = model_parts(model)
    sp = spm.SentencePieceProcessor(model_proto=model)
    raw = spm.SentencePieceProcessor(model_proto=raw_model(model))
    cases = []
    for c in CASES:
        b = c if isinstance(c, bytes) else c.encode("utf-8", "surrogatepass")
        normalized = b"".join(encode(raw, b)[0])
        ps, ids = encode(sp, b)
        case = {}
        try:
            case["text"] = b.decode("utf-8")
        except UnicodeDecodeError:
            case["hex"] = b.hex()
        case["normalized"] = normalized.decode("utf-8")
        if len(b) <= 200:  # the long case's pieces would only add bulk
            case["pieces"] = [p.decode("utf-8") for p in ps]
        case["ids"] = ids
        cases.append(case)
    spec_flags = {n: v for n, _, v in fields(spec) if n in (3, 4, 5)}
    return {
        "generator": "tools/tokgolden/precompiled_golden.py, sentencepiece " + spm.__version__,
        "rule": name,
        "add_dummy_prefix": bool(spec_flags.get(3, 1)),
        "remove_extra_whitespaces": bool(spec_flags.get(4, 1)),
        "cases": cases,
    }, tokenizer_json(pieces, charsmap_of(spec))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tsv = os.path.join(tmp, "rules.tsv")
        with open(tsv, "w", encoding="utf-8") as f:
            f.write(RULES)
        models = {
            "nmt_nfkc": train(normalization_rule_name="nmt_nfkc"),
            "rules": train(normalization_rule_tsv=tsv),
        }
    for name, model in models.items():
        g, tj = golden(model, name)
        cases = g.pop("cases")
        with open(os.path.join(out, name + ".golden.json"), "w", encoding="utf-8") as f:
            # One case a line, so that a regenerated file diffs by case.
            head = json.dumps(g, ensure_ascii=False, indent=1)
            f.write(head[:-2] + ',\n "cases": [\n')
            f.write(",\n".join("  " + json.dumps(c, ensure_ascii=False) for c in cases))
            f.write("\n ]\n}\n")
        data = json.dumps(tj, ensure_ascii=False).encode("utf-8")
        with open(os.path.join(out, name + ".tokenizer.json.gz"), "wb") as f:
            f.write(gzip.compress(data, mtime=0))


if __name__ == "__main__":
    main()
