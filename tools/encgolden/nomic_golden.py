#!/usr/bin/env python3
"""Golden fixtures for pkg/encoder's nomic-bert architecture
(nomic-embed-text-v1/v1.5): synthetic-weight models with fixed seeds and
the vectors an independent NumPy forward pass computes for them.

Run from the repository root (Debian's python3-numpy; nothing else):

    /usr/bin/python3 tools/encgolden/nomic_golden.py

It writes, under pkg/encoder/testdata:
- nomic-tiny/: a NomicBertModel as a sentence-transformers directory, laid
  out as nomic-embed-text-v1.5's: config.json with model_type nomic_bert
  and Nomic's GPT-2 names (n_embd, n_head, n_inner…), rotary embeddings
  over whole heads (rotary_emb_fraction 1, base 1000, not interleaved),
  SwiGLU, no biases in the layers, pad_vocab_size_multiple; a small
  WordPiece tokenizer.json; modules.json with Pooling (mean) and
  Normalize; sentence_bert_config.json (max_seq_length 64); the
  search_query / search_document prompts in
  config_sentence_transformers.json.
- nomic-tiny.gguf: the same model as llama.cpp's converter writes it
  (architecture nomic-bert, nomic-bert.rope.freq_base, phantom-space
  vocabulary as long as config.json's vocab_size, 37, while the embedding
  table has the padded 48 rows; context length 2048, pooling_type 1 mean,
  F32 tensors).
- nomic-bias/: a variant the released models do not use but the modeling
  code allows: biases in Wqkv, out_proj, fc11, fc12 and fc2, half of each
  head rotated (rotary_emb_fraction 0.5), base and epsilon left at their
  defaults (10000, 1e-5), n_inner absent (8/3 of n_embd, rounded up to 256),
  one layer, CLS pooling.
- nomic-golden.json: for each text its prompt name, token ids and the
  mean-pooled and first-token final states (not normalized).

The forward pass is float64 NumPy written from Nomic's modeling code
(contrastors' modeling_hf_nomic_bert.py: NomicBertEmbeddings without a
position table, emb_ln, NomicBertAttention with the "(three h d)" split of
Wqkv and NomicBertRotaryEmbedding / apply_rotary_emb, the post-norm
NomicBertBlock, NomciBertGatedMLP's fc11(x) * silu(fc12(x))), not from the
Go code. As that code does, the rotary frequencies and angles are computed
in float32. The GGUF writer is tools/goldens/gen.py's.
"""
import math
import os
import shutil
import sys
import unicodedata

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "goldens"))
import gen  # noqa: E402  the GGUF writer

OUT = os.path.join("pkg", "encoder", "testdata")

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "search", "_", "query", "document", ":", "what", "is",
         "the", "capital", "of", "france", "paris", "city", "river", "run", "##s", "##ning", "a", "b", "c", ".",
         ",", "?", "rotary", "position", "embed", "##ding", "##dings", "text", "long", "to", "word"]

# The main model, shaped as nomic-embed-text-v1.5 (768 wide, 12 heads, 12
# layers, n_inner 3072) but tiny. n_inner 200 is rounded up to 256 by the
# modeling code; vocab_size 37 is padded to 48 (pad_vocab_size_multiple 16).
NOMIC = {"vocab_size": len(VOCAB), "pad_vocab_size_multiple": 16, "n_positions": 128, "n_embd": 16, "n_head": 2,
         "n_layer": 2, "n_inner": 200, "activation_function": "swiglu", "layer_norm_epsilon": 1e-12,
         "type_vocab_size": 2, "rotary_emb_fraction": 1.0, "rotary_emb_base": 1000, "rotary_emb_interleaved": False,
         "rotary_emb_scale_base": None, "rotary_scaling_factor": None, "max_trained_positions": 2048,
         "prenorm": False, "causal": False, "qkv_proj_bias": False, "mlp_fc1_bias": False, "mlp_fc2_bias": False,
         "model_type": "nomic_bert", "architectures": ["NomicBertModel"]}
# NomicBertConfig's own defaults where this one leaves fields out.
BIAS = {"vocab_size": len(VOCAB), "n_positions": 32, "n_embd": 16, "n_head": 2, "n_layer": 1,
        "activation_function": "swiglu", "type_vocab_size": 2, "rotary_emb_fraction": 0.5,
        "qkv_proj_bias": True, "mlp_fc1_bias": True, "mlp_fc2_bias": True,
        "model_type": "nomic_bert", "architectures": ["NomicBertModel"]}
DEFAULTS = {"rotary_emb_base": 10000.0, "layer_norm_epsilon": 1e-5, "pad_vocab_size_multiple": 1}

PROMPTS = {"query": "search_query: ", "document": "search_document: ", "classification": "classification: ",
           "clustering": "clustering: "}
MAX_SEQ = 64

TEXTS = [
    ("query", "What is the capital of France?"),
    ("document", "Paris is the capital of France."),
    ("document", "running runs, rotary position embeddings"),
    ("document", "the long river runs to the city. " * 12),  # cut at 64 tokens
    ("", "a b c"),
    ("query", "unknown words: xyz"),
]


def hp(cfg, key):
    return cfg.get(key, DEFAULTS.get(key))


def dims(cfg):
    h = cfg["n_embd"]
    inner = cfg.get("n_inner") or int(8 * h / 3)
    inner = (inner + 255) // 256 * 256  # NomciBertGatedMLP's multiple_of=256
    m = hp(cfg, "pad_vocab_size_multiple")
    vocab = (cfg["vocab_size"] + m - 1) // m * m
    return h, inner, vocab


def weights(cfg, seed):
    rng = np.random.default_rng(seed)
    h, inner, vocab = dims(cfg)
    W = {}

    def rnd(shape, scale, center=0.0):
        return center + scale * (2 * rng.random(shape) - 1)

    def ln(name):
        W[name + ".weight"] = rnd((h,), 0.2, 1.0)
        W[name + ".bias"] = rnd((h,), 0.1)

    def lin(name, out, inp, scale, bias):
        W[name + ".weight"] = rnd((out, inp), scale)
        if bias:
            W[name + ".bias"] = rnd((out,), 0.1)

    W["embeddings.word_embeddings.weight"] = rnd((vocab, h), 1.0)
    W["embeddings.token_type_embeddings.weight"] = rnd((cfg["type_vocab_size"], h), 0.5)
    ln("emb_ln")
    for i in range(cfg["n_layer"]):
        p = f"encoder.layers.{i}."
        lin(p + "attn.Wqkv", 3 * h, h, 0.3, cfg["qkv_proj_bias"])
        lin(p + "attn.out_proj", h, h, 0.3, cfg["qkv_proj_bias"])
        ln(p + "norm1")
        lin(p + "mlp.fc11", inner, h, 0.2, cfg["mlp_fc1_bias"])
        lin(p + "mlp.fc12", inner, h, 0.2, cfg["mlp_fc1_bias"])
        lin(p + "mlp.fc2", h, inner, 0.1, cfg["mlp_fc2_bias"])
        ln(p + "norm2")
    return {k: v.astype(np.float32).astype(np.float64) for k, v in W.items()}


# ------------------------------------------------------------- tokenizer

def is_punct(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def tokenize(text, max_len):
    """BERT's uncased pipeline for this ASCII vocabulary: lower-case, split
    on whitespace and around punctuation, greedy longest-match WordPiece,
    [CLS] … [SEP] with the text cut to max_len tokens in all."""
    index = {w: i for i, w in enumerate(VOCAB)}
    words = []
    for w in text.lower().split():
        cur = ""
        for ch in w:
            if is_punct(ch):
                if cur:
                    words.append(cur)
                words.append(ch)
                cur = ""
            else:
                cur += ch
        if cur:
            words.append(cur)
    ids = []
    for w in words:
        pieces, start = [], 0
        while start < len(w):
            end = len(w)
            while end > start:
                sub = w[start:end] if start == 0 else "##" + w[start:end]
                if sub in index:
                    break
                end -= 1
            if end == start:
                pieces = [index["[UNK]"]]
                break
            pieces.append(index[sub])
            start = end
        ids += pieces
    return [index["[CLS]"]] + ids[:max_len - 2] + [index["[SEP]"]]


# ----------------------------------------------------------- forward pass

def layer_norm(x, w, b, eps):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * w + b


def rotary(x, rot_dim, base):
    """apply_rotary_emb, not interleaved, on x (n × heads × d): the first
    rot_dim dimensions of each head, x·cos + rotate_half(x)·sin, with
    NomicBertRotaryEmbedding's float32 inv_freq and angles."""
    n = x.shape[0]
    inv_freq = np.float32(1.0) / (np.float32(base) ** (np.arange(0, rot_dim, 2, dtype=np.float32) / np.float32(rot_dim)))
    t = np.arange(n, dtype=np.float32)
    freqs = np.outer(t, inv_freq).astype(np.float32).astype(np.float64)
    cos = np.concatenate([np.cos(freqs)] * 2, axis=-1)[:, None, :]  # "... d -> ... 1 (2 d)"
    sin = np.concatenate([np.sin(freqs)] * 2, axis=-1)[:, None, :]
    xr = x[..., :rot_dim]
    x1, x2 = xr[..., :rot_dim // 2], xr[..., rot_dim // 2:]
    rotated = np.concatenate([-x2, x1], axis=-1)
    return np.concatenate([xr * cos + rotated * sin, x[..., rot_dim:]], axis=-1)


def silu(x):
    return x / (1 + np.exp(-x))


def forward(W, cfg, ids):
    """The final hidden states of one text (n × n_embd), token types 0."""
    h, heads = cfg["n_embd"], cfg["n_head"]
    d = h // heads
    eps = hp(cfg, "layer_norm_epsilon")
    rot_dim = int(d * cfg["rotary_emb_fraction"])
    base = hp(cfg, "rotary_emb_base")
    n = len(ids)
    x = W["embeddings.word_embeddings.weight"][ids] + W["embeddings.token_type_embeddings.weight"][[0] * n]
    x = layer_norm(x, W["emb_ln.weight"], W["emb_ln.bias"], eps)

    def lin(x, name):
        y = x @ W[name + ".weight"].T
        if name + ".bias" in W:
            y = y + W[name + ".bias"]
        return y

    for i in range(cfg["n_layer"]):
        p = f"encoder.layers.{i}."
        qkv = lin(x, p + "attn.Wqkv").reshape(n, 3, heads, d)  # "... (three h d) -> ... three h d"
        q, k, v = qkv[:, 0], qkv[:, 1], qkv[:, 2]
        q, k = rotary(q, rot_dim, base), rotary(k, rot_dim, base)
        ctx = np.zeros((n, heads, d))
        for hd in range(heads):
            sc = q[:, hd] @ k[:, hd].T / math.sqrt(d)
            sc = np.exp(sc - sc.max(-1, keepdims=True))
            sc /= sc.sum(-1, keepdims=True)
            ctx[:, hd] = sc @ v[:, hd]
        x = layer_norm(lin(ctx.reshape(n, h), p + "attn.out_proj") + x, W[p + "norm1.weight"], W[p + "norm1.bias"], eps)
        y = lin(lin(x, p + "mlp.fc11") * silu(lin(x, p + "mlp.fc12")), p + "mlp.fc2")
        x = layer_norm(y + x, W[p + "norm2.weight"], W[p + "norm2.bias"], eps)
    return x


# ------------------------------------------------------------------ files

def tokenizer_json():
    return {"normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                           "strip_accents": None, "lowercase": True},
            "pre_tokenizer": {"type": "BertPreTokenizer"},
            "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                      "max_input_chars_per_word": 100, "vocab": {w: i for i, w in enumerate(VOCAB)}}}


def write_dir(d, W, cfg, pooling, st):
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.join(d, "1_Pooling"))
    gen.write_safetensors(os.path.join(d, "model.safetensors"), W)
    gen.write_json(os.path.join(d, "config.json"), cfg)
    gen.write_json(os.path.join(d, "tokenizer.json"), tokenizer_json())
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if st:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
        gen.write_json(os.path.join(d, "sentence_bert_config.json"), {"max_seq_length": MAX_SEQ, "do_lower_case": False})
        gen.write_json(os.path.join(d, "config_sentence_transformers.json"), {"prompts": PROMPTS, "default_prompt_name": None})
    gen.write_json(os.path.join(d, "modules.json"), modules)
    gen.write_json(os.path.join(d, "1_Pooling", "config.json"),
               {"word_embedding_dimension": cfg["n_embd"], "pooling_mode_" + pooling: True})


GGUF_NAMES = {"embeddings.word_embeddings": "token_embd", "embeddings.token_type_embeddings": "token_types",
              "emb_ln": "token_embd_norm", "attn.Wqkv": "attn_qkv", "attn.out_proj": "attn_output",
              "norm1": "attn_output_norm", "mlp.fc11": "ffn_up", "mlp.fc12": "ffn_gate", "mlp.fc2": "ffn_down",
              "norm2": "layer_output_norm"}


def gguf_name(name):
    base, suffix = name.rsplit(".", 1)
    if base.startswith("encoder.layers."):
        _, _, i, rest = base.split(".", 3)
        return f"blk.{i}.{GGUF_NAMES[rest]}.{suffix}"
    return f"{GGUF_NAMES[base]}.{suffix}"


def write_gguf(path, W, cfg):
    h, inner, _ = dims(cfg)
    tensors = [(gguf_name(n), list(reversed(W[n].shape)), gen.GGML_F32, W[n].astype("<f4").tobytes()) for n in sorted(W)]

    def phantom(t):
        if t.startswith("[") and t.endswith("]"):
            return t
        return t[2:] if t.startswith("##") else "\u2581" + t

    # The converter pads the token list to config.json's vocab_size (here
    # the unpadded 37; the embedding table has 48 rows).
    tokens = [phantom(t) for t in VOCAB] + [f"[PAD{i}]" for i in range(len(VOCAB), cfg["vocab_size"])]
    types = [3 if t.startswith("[") else 1 for t in tokens]
    a = "nomic-bert"
    kvs = [
        ("general.architecture", ("str", a)), ("general.name", ("str", "tiny-nomic")),
        (a + ".context_length", ("u32", 2048)), (a + ".embedding_length", ("u32", h)),
        (a + ".feed_forward_length", ("u32", inner)), (a + ".block_count", ("u32", cfg["n_layer"])),
        (a + ".attention.head_count", ("u32", cfg["n_head"])),
        (a + ".attention.layer_norm_epsilon", ("f32", cfg["layer_norm_epsilon"])),
        (a + ".attention.causal", ("bool", False)), (a + ".pooling_type", ("u32", 1)),
        (a + ".rope.freq_base", ("f32", float(cfg["rotary_emb_base"]))),
        ("tokenizer.ggml.model", ("str", "bert")), ("tokenizer.ggml.tokens", ("strs", tokens)),
        ("tokenizer.ggml.token_type", ("i32s", types)), (a + ".token_type_count", ("u32", 2)),
        ("tokenizer.ggml.unknown_token_id", ("u32", 1)), ("tokenizer.ggml.seperator_token_id", ("u32", 3)),
        ("tokenizer.ggml.padding_token_id", ("u32", 0)), ("tokenizer.ggml.cls_token_id", ("u32", 2)),
        ("tokenizer.ggml.mask_token_id", ("u32", 4)),
    ]
    gen.write_gguf(path, kvs, tensors)


def main():
    golden = {"max_len": MAX_SEQ, "prompts": PROMPTS}

    W = weights(NOMIC, 21)
    write_dir(os.path.join(OUT, "nomic-tiny"), W, NOMIC, "mean_tokens", True)
    write_gguf(os.path.join(OUT, "nomic-tiny.gguf"), W, NOMIC)
    texts = []
    for prompt, t in TEXTS:
        full = (PROMPTS[prompt] if prompt else "") + t
        ids = tokenize(full, MAX_SEQ)
        x = forward(W, NOMIC, ids)
        texts.append({"prompt": prompt, "text": t, "ids": ids, "mean": x.mean(0).tolist(), "first": x[0].tolist()})
    golden["texts"] = texts

    W = weights(BIAS, 22)
    write_dir(os.path.join(OUT, "nomic-bias"), W, BIAS, "cls_token", False)
    bias = []
    for _, t in TEXTS:
        ids = tokenize(t, BIAS["n_positions"])
        x = forward(W, BIAS, ids)
        bias.append({"text": t, "ids": ids, "mean": x.mean(0).tolist(), "first": x[0].tolist()})
    golden["bias"] = {"max_len": BIAS["n_positions"], "texts": bias}
    gen.write_json(os.path.join(OUT, "nomic-golden.json"), golden)


if __name__ == "__main__":
    main()
