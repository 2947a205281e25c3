#!/usr/bin/env python3
"""Golden fixtures for pkg/encoder's xlm-roberta architecture and its
cross-encoder (reranker) heads: synthetic-weight models with fixed seeds
and the outputs an independent NumPy forward pass computes for them.

Run from the repository root, after unigram_golden.py (whose tokenizer
and reference tokenizer it uses):

    /usr/bin/python3 tools/encgolden/model_golden.py

It writes, under pkg/encoder/testdata:
- xlmr-tiny/: an XLMRobertaForSequenceClassification checkpoint as a
  Hugging Face / sentence-transformers directory (config.json with
  model_type xlm-roberta, pad_token_id 1, type_vocab_size 1; tensors with
  the "roberta." prefix; classifier.dense and classifier.out_proj; mean
  pooling). The tests add unigram-tokenizer.json as its tokenizer.json.
- xlmr-tiny.gguf: the same model as llama.cpp's converter writes it
  (architecture bert, "t5" vocabulary with scores and types, position
  table cut past pad_token_id+1 rows, cls and cls.output, pooling_type 4).
  Its precompiled_charsmap is the tokenizer.json's (SentencePiece's
  compiled nmt_nfkc).
- bert-rerank/: a BertForSequenceClassification checkpoint (pooler and a
  one-label classifier) with a small WordPiece tokenizer.json.
- encoder-golden.json: token ids, mean-pooled and first-token vectors and
  reranker scores.

Everything is float64 NumPy, written from the Hugging Face modeling code's
definitions (BertEmbeddings, RobertaEmbeddings' create_position_ids,
BertSelfAttention, BertPooler, RobertaClassificationHead), not from the
Go code. The GGUF writer is tools/goldens/gen.py's.
"""
import base64
import json
import math
import os
import shutil
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "goldens"))
sys.path.insert(0, HERE)
import gen  # noqa: E402  the GGUF writer
import unigram_golden  # noqa: E402  the Unigram reference

OUT = os.path.join("pkg", "encoder", "testdata")

XLMR = dict(hidden=32, layers=2, heads=4, inter=64, max_pos=66, pad=1, types=1, eps=1e-5)
BERT = dict(hidden=32, layers=2, heads=4, inter=64, max_pos=64, pad=0, types=2, eps=1e-12)

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "北京是中国的首都。",
    "Mixed 中文 and English 文本 together",
    "Le café est très bon",
    "emoji \U0001F600 and snow",
]
PAIRS = [
    ("How often should the unit be serviced?", "It requires maintenance every 37 days."),
    ("How often should the unit be serviced?", "The battery charges in 90 minutes."),
    ("北京是哪里？", "北京是中国的首都。"),
    ("café", "Le café est très bon " * 12),  # cut to the model's 64 positions
]

BERT_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "how", "often", "should", "the", "unit", "be", "serviced",
              "it", "requires", "maintenance", "every", "days", "battery", "charges", "in", "minutes", "a", "cat"]
BERT_PAIRS = [
    ("how often should the unit be serviced", "it requires maintenance every days"),
    ("how often should the unit be serviced", "the battery charges in minutes"),
    ("a cat", "the cat"),
]


def weights(cfg, vocab, seed, prefix, head):
    rng = np.random.default_rng(seed)
    h, inter = cfg["hidden"], cfg["inter"]
    W = {}

    def rnd(shape, scale, center=0.0):
        return center + scale * (2 * rng.random(shape) - 1)

    def lin(name, out, inp, scale):
        W[name + ".weight"] = rnd((out, inp), scale)
        W[name + ".bias"] = rnd((out,), 0.1)

    def ln(name):
        W[name + ".weight"] = rnd((h,), 0.2, 1.0)
        W[name + ".bias"] = rnd((h,), 0.1)

    p = prefix
    W[p + "embeddings.word_embeddings.weight"] = rnd((vocab, h), 1.0)
    W[p + "embeddings.position_embeddings.weight"] = rnd((cfg["max_pos"], h), 0.5)
    W[p + "embeddings.token_type_embeddings.weight"] = rnd((cfg["types"], h), 0.5)
    ln(p + "embeddings.LayerNorm")
    for i in range(cfg["layers"]):
        q = f"{p}encoder.layer.{i}."
        for m in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            lin(q + m, h, h, 0.3)
        ln(q + "attention.output.LayerNorm")
        lin(q + "intermediate.dense", inter, h, 0.2)
        lin(q + "output.dense", h, inter, 0.1)
        ln(q + "output.LayerNorm")
    if head == "roberta":
        lin("classifier.dense", h, h, 0.3)
        lin("classifier.out_proj", 1, h, 0.5)
    else:
        lin(p + "pooler.dense", h, h, 0.3)
        lin("classifier", 1, h, 0.5)
    return {k: v.astype(np.float32).astype(np.float64) for k, v in W.items()}


def layer_norm(x, w, b, eps):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * w + b


erf = np.frompyfunc(math.erf, 1, 1)


def forward(W, cfg, prefix, ids, types, pos_offset):
    """The final hidden states of one sequence (n × hidden)."""
    p = prefix
    n, h, heads = len(ids), cfg["hidden"], cfg["heads"]
    d = h // heads
    x = (W[p + "embeddings.word_embeddings.weight"][ids]
         + W[p + "embeddings.position_embeddings.weight"][pos_offset + np.arange(n)]
         + W[p + "embeddings.token_type_embeddings.weight"][types])
    x = layer_norm(x, W[p + "embeddings.LayerNorm.weight"], W[p + "embeddings.LayerNorm.bias"], cfg["eps"])

    def lin(x, name):
        return x @ W[name + ".weight"].T + W[name + ".bias"]

    for i in range(cfg["layers"]):
        q = f"{p}encoder.layer.{i}."
        Q, K, V = lin(x, q + "attention.self.query"), lin(x, q + "attention.self.key"), lin(x, q + "attention.self.value")
        ctx = np.zeros_like(x)
        for hd in range(heads):
            s = slice(hd * d, (hd + 1) * d)
            sc = Q[:, s] @ K[:, s].T / math.sqrt(d)
            sc = np.exp(sc - sc.max(-1, keepdims=True))
            sc /= sc.sum(-1, keepdims=True)
            ctx[:, s] = sc @ V[:, s]
        x = layer_norm(x + lin(ctx, q + "attention.output.dense"),
                       W[q + "attention.output.LayerNorm.weight"], W[q + "attention.output.LayerNorm.bias"], cfg["eps"])
        f = lin(x, q + "intermediate.dense")
        f = f * 0.5 * (1 + erf(f / math.sqrt(2)).astype(np.float64))
        x = layer_norm(x + lin(f, q + "output.dense"),
                       W[q + "output.LayerNorm.weight"], W[q + "output.LayerNorm.bias"], cfg["eps"])
    return x


def head_score(W, first, head, prefix):
    if head == "roberta":
        y = np.tanh(first @ W["classifier.dense.weight"].T + W["classifier.dense.bias"])
        return float((y @ W["classifier.out_proj.weight"].T + W["classifier.out_proj.bias"])[0])
    y = np.tanh(first @ W[prefix + "pooler.dense.weight"].T + W[prefix + "pooler.dense.bias"])
    return float((y @ W["classifier.weight"].T + W["classifier.bias"])[0])


def config(cfg, model_type, arch, vocab):
    return {"architectures": [arch], "model_type": model_type, "vocab_size": vocab, "hidden_size": cfg["hidden"],
            "num_hidden_layers": cfg["layers"], "num_attention_heads": cfg["heads"],
            "intermediate_size": cfg["inter"], "max_position_embeddings": cfg["max_pos"],
            "type_vocab_size": cfg["types"], "layer_norm_eps": cfg["eps"], "hidden_act": "gelu",
            "pad_token_id": cfg["pad"], "num_labels": 1}


GGUF_NAMES = {
    "embeddings.word_embeddings": "token_embd", "embeddings.position_embeddings": "position_embd",
    "embeddings.token_type_embeddings": "token_types", "embeddings.LayerNorm": "token_embd_norm",
    "attention.self.query": "attn_q", "attention.self.key": "attn_k", "attention.self.value": "attn_v",
    "attention.output.dense": "attn_output", "attention.output.LayerNorm": "attn_output_norm",
    "intermediate.dense": "ffn_up", "output.dense": "ffn_down", "output.LayerNorm": "layer_output_norm",
    "classifier.dense": "cls", "classifier.out_proj": "cls.output",
}


def gguf_name(name):
    name = name.removeprefix("roberta.")
    base, suffix = name.rsplit(".", 1)
    if base.startswith("encoder.layer."):
        _, _, i, rest = base.split(".", 3)
        return f"blk.{i}.{GGUF_NAMES[rest]}.{suffix}"
    return f"{GGUF_NAMES[base]}.{suffix}"


def write_xlmr_gguf(path, W, cfg, tj):
    off = cfg["pad"] + 1
    tensors = []
    for name in sorted(W):
        v = W[name]
        if name.endswith("position_embeddings.weight"):
            v = v[off:]  # llama.cpp cuts the rows before pad_token_id+1
        tensors.append((gguf_name(name), list(reversed(v.shape)), gen.GGML_F32, v.astype("<f4").tobytes()))
    vocab = tj["model"]["vocab"]
    special = {a["id"] for a in tj["added_tokens"]}
    types = [2 if i == 3 else 3 if i in special else 1 for i in range(len(vocab))]
    # The same map as the tokenizer.json's Precompiled normalizer (nmt_nfkc
    # as SentencePiece compiles it), as llama.cpp's converter copies it.
    charsmap = next(base64.b64decode(n["precompiled_charsmap"]) for n in tj["normalizer"]["normalizers"]
                    if n["type"] == "Precompiled")
    kvs = [
        ("general.architecture", ("str", "bert")), ("general.name", ("str", "tiny-xlmr")),
        ("bert.context_length", ("u32", cfg["max_pos"] - off)), ("bert.embedding_length", ("u32", cfg["hidden"])),
        ("bert.feed_forward_length", ("u32", cfg["inter"])), ("bert.block_count", ("u32", cfg["layers"])),
        ("bert.attention.head_count", ("u32", cfg["heads"])),
        ("bert.attention.layer_norm_epsilon", ("f32", cfg["eps"])), ("bert.attention.causal", ("bool", False)),
        ("bert.pooling_type", ("u32", 4)),
        ("tokenizer.ggml.model", ("str", "t5")), ("tokenizer.ggml.tokens", ("strs", [p for p, _ in vocab])),
        ("tokenizer.ggml.scores", ("f32s", [s for _, s in vocab])), ("tokenizer.ggml.token_type", ("i32s", types)),
        ("tokenizer.ggml.add_space_prefix", ("bool", True)),
        ("tokenizer.ggml.remove_extra_whitespaces", ("bool", False)),
        ("tokenizer.ggml.bos_token_id", ("u32", 0)), ("tokenizer.ggml.eos_token_id", ("u32", 2)),
        ("tokenizer.ggml.unknown_token_id", ("u32", 3)),
    ]
    gen.write_gguf(path, kvs, tensors)
    # gen's writer has no uint8 arrays: the caller splices this key in.
    kv = gen.s_str("tokenizer.ggml.precompiled_charsmap") + struct.pack("<IIQ", 9, 0, len(charsmap)) + charsmap
    return kv


def main():
    tj = json.load(open(os.path.join(OUT, "unigram-tokenizer.json"), encoding="utf-8"))
    ref = unigram_golden.Reference(tj)
    vocab = len(tj["model"]["vocab"])
    golden = {}

    # XLM-RoBERTa: directory and GGUF.
    W = weights(XLMR, vocab, 7, "roberta.", "roberta")
    d = os.path.join(OUT, "xlmr-tiny")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.join(d, "1_Pooling"))
    gen.write_safetensors(os.path.join(d, "model.safetensors"), W)
    gen.write_json(os.path.join(d, "config.json"), config(XLMR, "xlm-roberta", "XLMRobertaForSequenceClassification", vocab))
    gen.write_json(os.path.join(d, "modules.json"), [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}])
    gen.write_json(os.path.join(d, "1_Pooling", "config.json"), {"word_embedding_dimension": XLMR["hidden"], "pooling_mode_mean_tokens": True})
    write_gguf_with_charsmap(os.path.join(OUT, "xlmr-tiny.gguf"), W, XLMR, tj)
    off = XLMR["pad"] + 1
    maxlen = XLMR["max_pos"] - off
    texts = []
    for t in TEXTS:
        ids, _ = ref.encode(t, maxlen)
        x = forward(W, XLMR, "roberta.", ids, [0] * len(ids), off)
        texts.append({"text": t, "ids": ids, "mean": x.mean(0).tolist(), "first": x[0].tolist()})
    pairs = []
    for a, b in PAIRS:
        ids, cut = ref.encode_pair(a, b, maxlen)
        x = forward(W, XLMR, "roberta.", ids, [0] * len(ids), off)
        pairs.append({"query": a, "passage": b, "ids": ids, "cut": cut, "score": head_score(W, x[0], "roberta", "roberta.")})
    golden["xlmr"] = {"max_len": maxlen, "texts": texts, "pairs": pairs}

    # BERT cross-encoder (ms-marco-MiniLM's shape of head).
    W = weights(BERT, len(BERT_VOCAB), 8, "bert.", "bert")
    d = os.path.join(OUT, "bert-rerank")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    gen.write_safetensors(os.path.join(d, "model.safetensors"), W)
    gen.write_json(os.path.join(d, "config.json"), config(BERT, "bert", "BertForSequenceClassification", len(BERT_VOCAB)))
    gen.write_json(os.path.join(d, "tokenizer.json"), {
        "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True, "strip_accents": None, "lowercase": True},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": {w: i for i, w in enumerate(BERT_VOCAB)}}})
    index = {w: i for i, w in enumerate(BERT_VOCAB)}
    pairs = []
    for a, b in BERT_PAIRS:
        ta, tb = [index[w] for w in a.split()], [index[w] for w in b.split()]
        ids = [2] + ta + [3] + tb + [3]
        types = [0] * (len(ta) + 2) + [1] * (len(tb) + 1)
        x = forward(W, BERT, "bert.", ids, types, 0)
        pairs.append({"query": a, "passage": b, "ids": ids, "types": types, "score": head_score(W, x[0], "bert", "bert.")})
    golden["bert"] = {"pairs": pairs}
    gen.write_json(os.path.join(OUT, "encoder-golden.json"), golden)


def write_gguf_with_charsmap(path, W, cfg, tj):
    """Writes the GGUF, then splices in the uint8-array charsmap key that
    gen's writer cannot encode, keeping the tensor data aligned."""
    kv = write_xlmr_gguf(path, W, cfg, tj)
    with open(path, "rb") as f:
        data = bytearray(f.read())
    n_tensors, n_kv = struct.unpack_from("<QQ", data, 8)
    # Walk the key-value pairs to find where they end.
    pos = 24
    for _ in range(n_kv):
        klen = struct.unpack_from("<Q", data, pos)[0]
        pos += 8 + klen
        typ = struct.unpack_from("<I", data, pos)[0]
        pos += 4
        pos = skip_value(data, pos, typ)
    head = data[:pos] + kv
    # The tensor infos follow; the data section starts at the next
    # alignment after them: rebuild that padding for the longer header.
    infos_end = pos
    for _ in range(n_tensors):
        nlen = struct.unpack_from("<Q", data, infos_end)[0]
        infos_end += 8 + nlen
        nd = struct.unpack_from("<I", data, infos_end)[0]
        infos_end += 4 + 8 * nd + 4 + 8
    infos = data[pos:infos_end]
    tensor_data = data[(infos_end + gen.ALIGN - 1) // gen.ALIGN * gen.ALIGN:]
    out = head + infos
    out += b"\0" * (-len(out) % gen.ALIGN)
    out += tensor_data
    struct.pack_into("<Q", out, 16, n_kv + 1)
    with open(path, "wb") as f:
        f.write(out)


def skip_value(data, pos, typ):
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    if typ in sizes:
        return pos + sizes[typ]
    if typ == 8:
        return pos + 8 + struct.unpack_from("<Q", data, pos)[0]
    if typ == 9:
        et, n = struct.unpack_from("<IQ", data, pos)
        pos += 12
        for _ in range(n):
            pos = skip_value(data, pos, et)
        return pos
    raise ValueError(typ)


if __name__ == "__main__":
    main()
