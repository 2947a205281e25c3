#!/usr/bin/env python3
"""Golden fixtures for pkg/llm: synthetic-weight GGUF models and the logits
an independent NumPy forward pass computes for them.

Run from the repository root with Debian's NumPy:

    /usr/bin/python3 tools/goldens/gen.py

It writes pkg/llm/testdata/<name>.gguf and <name>.golden.json. Everything is
derived from fixed seeds, so reruns produce identical files. Nothing here
calls the Go code: the GGUF writer, the ggml block packers and unpackers and
the transformer forward pass are written from the GGUF specification and
ggml's reference C code (ggml-quants.c dequantize_row_*, llama.cpp's
llama/qwen2 graphs).
"""
import json
import os
import struct

import numpy as np

OUT = os.path.join("pkg", "llm", "testdata")

# ---------------------------------------------------------------- GGUF writer

GGML_F32, GGML_F16, GGML_Q4_0, GGML_Q8_0, GGML_Q4_K, GGML_Q6_K = 0, 1, 2, 8, 12, 14
T_U32, T_I32, T_F32, T_BOOL, T_STR, T_ARR = 4, 5, 6, 7, 8, 9
ALIGN = 32


def s_str(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def s_val(v):
    """Encode (type, value) pairs: ints are uint32 unless tagged."""
    kind, x = v
    if kind == "u32":
        return struct.pack("<I", T_U32) + struct.pack("<I", x)
    if kind == "f32":
        return struct.pack("<I", T_F32) + struct.pack("<f", x)
    if kind == "bool":
        return struct.pack("<I", T_BOOL) + struct.pack("<B", 1 if x else 0)
    if kind == "str":
        return struct.pack("<I", T_STR) + s_str(x)
    if kind == "strs":
        return struct.pack("<IIQ", T_ARR, T_STR, len(x)) + b"".join(s_str(s) for s in x)
    if kind == "f32s":
        return struct.pack("<IIQ", T_ARR, T_F32, len(x)) + np.asarray(x, "<f4").tobytes()
    if kind == "i32s":
        return struct.pack("<IIQ", T_ARR, T_I32, len(x)) + np.asarray(x, "<i4").tobytes()
    raise ValueError(kind)


def write_gguf(path, kvs, tensors):
    """tensors: list of (name, dims ne0-first, ggml type, raw bytes)."""
    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)))
    for k, v in kvs:
        out += s_str(k) + s_val(v)
    off = 0
    for name, dims, typ, data in tensors:
        out += s_str(name) + struct.pack("<I", len(dims))
        out += b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", typ, off)
        off += len(data)
        off = (off + ALIGN - 1) // ALIGN * ALIGN
    out += b"\0" * (-len(out) % ALIGN)
    for _, _, _, data in tensors:
        out += data
        out += b"\0" * (-len(out) % ALIGN)
    with open(path, "wb") as f:
        f.write(out)


# ------------------------------------------------------- ggml block packing

# The safetensors and JSON writers of tools/encgolden's scripts.
def write_safetensors(path, W):
    header, blobs, off = {}, [], 0
    for name in sorted(W):
        b = W[name].astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(W[name].shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def write_json(path, v):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(v, f, ensure_ascii=False, indent=1)


def f16(x):
    return np.asarray(x, np.float32).astype("<f2")


def pack_q8_0(w):
    b = w.reshape(-1, 32).astype(np.float32)
    d = np.abs(b).max(axis=1) / 127.0
    inv = np.where(d > 0, 1.0 / np.where(d > 0, d, 1), 0)
    q = np.round(b * inv[:, None]).astype(np.int8)
    out = bytearray()
    for i in range(len(b)):
        out += f16(d[i]).tobytes() + q[i].tobytes()
    return bytes(out)


def unpack_q8_0(data, n):
    a = np.frombuffer(data, np.uint8).reshape(-1, 34)
    d = a[:, :2].copy().view("<f2").astype(np.float64)
    q = a[:, 2:].view(np.int8).astype(np.float64)
    return (d * q).reshape(n)


def pack_q4_0(w):
    b = w.reshape(-1, 32).astype(np.float32)
    out = bytearray()
    for blk in b:
        # ggml: the value of largest magnitude maps to -8.
        imax = np.argmax(np.abs(blk))
        d = blk[imax] / -8.0
        inv = 1.0 / d if d != 0 else 0.0
        q = np.clip(np.floor(blk * inv + 8.5), 0, 15).astype(np.uint8)
        out += f16(d).tobytes() + (q[:16] | (q[16:] << 4)).astype(np.uint8).tobytes()
    return bytes(out)


def unpack_q4_0(data, n):
    a = np.frombuffer(data, np.uint8).reshape(-1, 18)
    d = a[:, :2].copy().view("<f2").astype(np.float64)
    qs = a[:, 2:]
    lo = (qs & 0xF).astype(np.float64) - 8
    hi = (qs >> 4).astype(np.float64) - 8
    return (d * np.concatenate([lo, hi], axis=1)).reshape(n)


def pack_q4_k(w):
    out = bytearray()
    for blk in w.reshape(-1, 256).astype(np.float64):
        sub = blk.reshape(8, 32)
        mn = np.minimum(sub.min(axis=1), 0)  # y = d*sc*q - dmin*m, m >= 0
        mx = sub.max(axis=1)
        scale = (mx - mn) / 15.0
        dmax = scale.max() / 63.0
        mmax = (-mn).max() / 63.0
        d = float(f16(dmax).astype(np.float64)) or 1e-8
        dmin = float(f16(mmax).astype(np.float64)) or 1e-8
        sc = np.clip(np.round(scale / d), 0, 63).astype(np.int64)
        m = np.clip(np.round(-mn / dmin), 0, 63).astype(np.int64)
        q = np.zeros((8, 32), np.int64)
        for j in range(8):
            eff = d * sc[j]
            if eff > 0:
                q[j] = np.clip(np.round((sub[j] + dmin * m[j]) / eff), 0, 15)
        scales = np.zeros(12, np.int64)
        for j in range(4):
            scales[j] = (sc[j] & 63) | ((sc[j + 4] >> 4) << 6)
            scales[j + 4] = (m[j] & 63) | ((m[j + 4] >> 4) << 6)
            scales[j + 8] = (sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4)
        qs = np.zeros(128, np.int64)
        for k in range(4):
            qs[32 * k:32 * k + 32] = q[2 * k] | (q[2 * k + 1] << 4)
        out += f16(d).tobytes() + f16(dmin).tobytes()
        out += scales.astype(np.uint8).tobytes() + qs.astype(np.uint8).tobytes()
    return bytes(out)


def scale_min_k4(j, q):
    if j < 4:
        return q[j] & 63, q[j + 4] & 63
    return (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4)


def unpack_q4_k(data, n):
    a = np.frombuffer(data, np.uint8).reshape(-1, 144)
    y = np.zeros((len(a), 256))
    for i, blk in enumerate(a):
        d = float(blk[0:2].copy().view("<f2")[0])
        dmin = float(blk[2:4].copy().view("<f2")[0])
        scales = [int(x) for x in blk[4:16]]
        qs = blk[16:].astype(np.int64)
        for k in range(4):
            sc1, m1 = scale_min_k4(2 * k, scales)
            sc2, m2 = scale_min_k4(2 * k + 1, scales)
            q = qs[32 * k:32 * k + 32]
            y[i, 64 * k:64 * k + 32] = d * sc1 * (q & 0xF) - dmin * m1
            y[i, 64 * k + 32:64 * k + 64] = d * sc2 * (q >> 4) - dmin * m2
    return y.reshape(n)


def q6_index(e):
    half, r = divmod(e, 128)
    g, l = divmod(r, 32)
    ql = half * 64 + l + (32 if g in (1, 3) else 0)
    high = g in (2, 3)
    qh = half * 32 + l
    sc = half * 8 + 2 * g + l // 16
    return ql, high, qh, 2 * g, sc


def pack_q6_k(w):
    out = bytearray()
    for blk in w.reshape(-1, 256).astype(np.float64):
        groups = blk.reshape(16, 16)
        amax = np.abs(groups).max(axis=1)
        gscale = amax / 31.0
        d = float(f16(gscale.max() / 127.0).astype(np.float64)) or 1e-8
        sc = np.clip(np.round(gscale / d), -128, 127).astype(np.int64)
        ql = np.zeros(128, np.int64)
        qh = np.zeros(64, np.int64)
        for e in range(256):
            qli, high, qhi, shift, sci = q6_index(e)
            eff = d * sc[sci]
            q = 0 if eff == 0 else int(np.clip(np.round(blk[e] / eff), -32, 31))
            u = q + 32
            ql[qli] |= (u & 0xF) << (4 if high else 0)
            qh[qhi] |= (u >> 4) << shift
        out += ql.astype(np.uint8).tobytes() + qh.astype(np.uint8).tobytes()
        out += sc.astype(np.int8).tobytes() + f16(d).tobytes()
    return bytes(out)


def unpack_q6_k(data, n):
    a = np.frombuffer(data, np.uint8).reshape(-1, 210)
    y = np.zeros((len(a), 256))
    for i, blk in enumerate(a):
        ql, qh = blk[:128].astype(np.int64), blk[128:192].astype(np.int64)
        sc = blk[192:208].view(np.int8).astype(np.int64)
        d = float(blk[208:210].copy().view("<f2")[0])
        for e in range(256):
            qli, high, qhi, shift, sci = q6_index(e)
            lo = (ql[qli] >> 4) if high else (ql[qli] & 0xF)
            q = (lo | (((qh[qhi] >> shift) & 3) << 4)) - 32
            y[i, e] = d * sc[sci] * q
    return y.reshape(n)


def encode(w, typ):
    """Returns (bytes, the float64 weights the bytes decode to)."""
    w = np.asarray(w, np.float32)
    n = w.size
    if typ == GGML_F32:
        return w.astype("<f4").tobytes(), w.astype(np.float64)
    if typ == GGML_F16:
        h = f16(w)
        return h.tobytes(), h.astype(np.float64)
    packers = {GGML_Q8_0: (pack_q8_0, unpack_q8_0), GGML_Q4_0: (pack_q4_0, unpack_q4_0),
               GGML_Q4_K: (pack_q4_k, unpack_q4_k), GGML_Q6_K: (pack_q6_k, unpack_q6_k)}
    pack, unpack = packers[typ]
    data = pack(w)
    return data, unpack(data, n).reshape(w.shape)


# ------------------------------------------------------- reference forward

def rmsnorm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope(x, pos, n_heads, head_dim, rope_dim, base, freq_scale, neox, factors=None):
    """x: (n_heads*head_dim,) at position pos; the first rope_dim dims of
    each head rotate; factors divide the frequencies (Llama 3.1)."""
    x = x.reshape(n_heads, head_dim).copy()
    half = rope_dim // 2
    i = np.arange(half)
    theta = pos * freq_scale * base ** (-2.0 * i / rope_dim)
    if factors is not None:
        theta = theta / factors
    c, s = np.cos(theta), np.sin(theta)
    if neox:
        a, b = x[:, i].copy(), x[:, i + half].copy()
        x[:, i], x[:, i + half] = a * c - b * s, a * s + b * c
    else:
        a, b = x[:, 2 * i].copy(), x[:, 2 * i + 1].copy()
        x[:, 2 * i], x[:, 2 * i + 1] = a * c - b * s, a * s + b * c
    return x.reshape(-1)


def forward(cfg, W, tokens):
    """Logits for every position of tokens (float64)."""
    dim, nh, nkv, hd = cfg["dim"], cfg["heads"], cfg["kv_heads"], cfg["dim"] // cfg["heads"]
    eps = cfg["eps"]
    ks = [[] for _ in range(cfg["layers"])]
    vs = [[] for _ in range(cfg["layers"])]
    out = []
    for pos, t in enumerate(tokens):
        x = W["token_embd"][t].copy()
        for li in range(cfg["layers"]):
            L = W["layers"][li]
            h = rmsnorm(x, L["attn_norm"], eps)
            q = L["attn_q"] @ h
            k = L["attn_k"] @ h
            v = L["attn_v"] @ h
            if cfg["bias"]:
                q, k, v = q + L["attn_q.bias"], k + L["attn_k.bias"], v + L["attn_v.bias"]
            rd = cfg.get("rope_dim", hd)
            fac = W.get("rope_freqs")
            q = rope(q, pos, nh, hd, rd, cfg["rope_base"], cfg["freq_scale"], cfg["neox"], fac)
            k = rope(k, pos, nkv, hd, rd, cfg["rope_base"], cfg["freq_scale"], cfg["neox"], fac)
            ks[li].append(k.reshape(nkv, hd))
            vs[li].append(v.reshape(nkv, hd))
            K, V = np.stack(ks[li]), np.stack(vs[li])  # (T, nkv, hd)
            att = np.zeros((nh, hd))
            for hh in range(nh):
                g = hh // (nh // nkv)
                sc = K[:, g, :] @ q.reshape(nh, hd)[hh] / np.sqrt(hd)
                p = np.exp(sc - sc.max())
                p /= p.sum()
                att[hh] = p @ V[:, g, :]
            x = x + L["attn_output"] @ att.reshape(-1)
            h = rmsnorm(x, L["ffn_norm"], eps)
            gate, up = L["ffn_gate"] @ h, L["ffn_up"] @ h
            x = x + L["ffn_down"] @ (gate / (1 + np.exp(-gate)) * up)
        x = rmsnorm(x, W["output_norm"], eps)
        out.append(W["output"] @ x)
    return np.stack(out)


# ------------------------------------------------------------- fixtures

def llama_vocab(n):
    toks = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)]
    toks = toks[:n] + ["\u2581t%d" % i for i in range(max(0, n - len(toks)))]
    types = [2, 3, 3] + [6] * 256
    types = (types + [1] * n)[:n]
    return [("tokenizer.ggml.model", ("str", "llama")),
            ("tokenizer.ggml.tokens", ("strs", toks[:n])),
            ("tokenizer.ggml.scores", ("f32s", [0.0] * n)),
            ("tokenizer.ggml.token_type", ("i32s", types)),
            ("tokenizer.ggml.bos_token_id", ("u32", 1)),
            ("tokenizer.ggml.eos_token_id", ("u32", 2))]


def gpt2_vocab(n):
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs, extra = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + extra)
            extra += 1
    chars = [chr(c) for _, c in sorted(zip(bs, cs))]
    toks = chars + ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    toks += ["x%d" % i for i in range(n - len(toks))]
    types = [1] * 256 + [3, 3, 3] + [1] * (n - 259)
    return [("tokenizer.ggml.model", ("str", "gpt2")),
            ("tokenizer.ggml.pre", ("str", "qwen2")),
            ("tokenizer.ggml.tokens", ("strs", toks)),
            ("tokenizer.ggml.token_type", ("i32s", types)),
            ("tokenizer.ggml.merges", ("strs", ["\u0120 t", "h e"])),
            ("tokenizer.ggml.bos_token_id", ("u32", 256)),
            ("tokenizer.ggml.eos_token_id", ("u32", 258)),
            ("tokenizer.ggml.add_bos_token", ("bool", False))]


def build(name, cfg, types, seed, tokens):
    """types: ggml type per tensor role (matrix roles) ; norms are F32."""
    rng = np.random.default_rng(seed)
    dim, hid, nh, nkv = cfg["dim"], cfg["hidden"], cfg["heads"], cfg["kv_heads"]
    hd = dim // nh
    vocab = cfg["vocab"]
    arch = cfg["arch"]
    kvs = [("general.architecture", ("str", arch)), ("general.name", ("str", name)),
           (arch + ".context_length", ("u32", 128)),
           (arch + ".embedding_length", ("u32", dim)),
           (arch + ".block_count", ("u32", cfg["layers"])),
           (arch + ".feed_forward_length", ("u32", hid)),
           (arch + ".rope.dimension_count", ("u32", cfg.get("rope_dim", hd))),
           (arch + ".attention.head_count", ("u32", nh)),
           (arch + ".attention.head_count_kv", ("u32", nkv)),
           (arch + ".attention.layer_norm_rms_epsilon", ("f32", cfg["eps"])),
           (arch + ".rope.freq_base", ("f32", cfg["rope_base"]))]
    if cfg["freq_scale"] != 1:
        kvs += [(arch + ".rope.scaling.type", ("str", "linear")),
                (arch + ".rope.scaling.factor", ("f32", 1 / cfg["freq_scale"]))]
    kvs += gpt2_vocab(vocab) if arch == "qwen2" else llama_vocab(vocab)
    tensors, W = [], {"layers": []}

    def mat(tname, rows, cols, role, std):
        w = rng.normal(0, std, (rows, cols)).astype(np.float32)
        typ = types.get(role, GGML_F32)
        data, deq = encode(w, typ)
        tensors.append((tname, [cols, rows], typ, data))
        return deq

    def vec(tname, n, mean, std):
        v = (mean + rng.normal(0, std, n)).astype(np.float32)
        tensors.append((tname, [n], GGML_F32, v.astype("<f4").tobytes()))
        return v.astype(np.float64)

    W["token_embd"] = mat("token_embd.weight", vocab, dim, "token_embd", 1.0)
    for li in range(cfg["layers"]):
        p = "blk.%d." % li
        L = {"attn_norm": vec(p + "attn_norm.weight", dim, 1.0, 0.1)}
        L["attn_q"] = mat(p + "attn_q.weight", nh * hd, dim, "attn_q", dim ** -0.5)
        L["attn_k"] = mat(p + "attn_k.weight", nkv * hd, dim, "attn_k", dim ** -0.5)
        L["attn_v"] = mat(p + "attn_v.weight", nkv * hd, dim, "attn_v", dim ** -0.5)
        if cfg["bias"]:
            L["attn_q.bias"] = vec(p + "attn_q.bias", nh * hd, 0.0, 0.2)
            L["attn_k.bias"] = vec(p + "attn_k.bias", nkv * hd, 0.0, 0.2)
            L["attn_v.bias"] = vec(p + "attn_v.bias", nkv * hd, 0.0, 0.2)
        L["attn_output"] = mat(p + "attn_output.weight", dim, nh * hd, "attn_output", (nh * hd) ** -0.5)
        L["ffn_norm"] = vec(p + "ffn_norm.weight", dim, 1.0, 0.1)
        L["ffn_gate"] = mat(p + "ffn_gate.weight", hid, dim, "ffn_gate", dim ** -0.5)
        L["ffn_up"] = mat(p + "ffn_up.weight", hid, dim, "ffn_up", dim ** -0.5)
        L["ffn_down"] = mat(p + "ffn_down.weight", dim, hid, "ffn_down", hid ** -0.5)
        W["layers"].append(L)
    W["output_norm"] = vec("output_norm.weight", dim, 1.0, 0.1)
    if cfg.get("rope_freqs"):
        f = np.linspace(1.0, 8.0, cfg.get("rope_dim", hd) // 2).astype(np.float32)
        tensors.append(("rope_freqs.weight", [len(f)], GGML_F32, f.astype("<f4").tobytes()))
        W["rope_freqs"] = f.astype(np.float64)
    if cfg["tied"]:
        W["output"] = W["token_embd"]
    else:
        W["output"] = mat("output.weight", vocab, dim, "output", dim ** -0.5)
    write_gguf(os.path.join(OUT, name + ".gguf"), kvs, tensors)
    logits = forward(cfg, W, tokens)
    with open(os.path.join(OUT, name + ".golden.json"), "w") as f:
        json.dump({"model": name + ".gguf", "tokens": tokens,
                   "logits": [[float("%.7g" % v) for v in row] for row in logits]}, f)
        f.write("\n")
    print(name, os.path.getsize(os.path.join(OUT, name + ".gguf")), "bytes")


def main():
    os.makedirs(OUT, exist_ok=True)
    small_llama = dict(arch="llama", dim=64, hidden=128, layers=2, heads=4, kv_heads=2, vocab=320,
                       eps=1e-5, rope_base=10000.0, freq_scale=1.0, neox=False, bias=False, tied=False)
    toks = [1, 300, 17, 299, 42, 261, 5, 310, 77, 3]
    build("llama_gqa_f32", small_llama, {}, 1, toks)
    build("llama_linear_rope_f32", dict(small_llama, freq_scale=0.5, rope_base=500.0), {}, 2, toks)
    build("llama_rope_freqs_partial_f32", dict(small_llama, rope_freqs=True, rope_dim=8, rope_base=500.0), {}, 7, toks)
    qwen = dict(arch="qwen2", dim=64, hidden=128, layers=2, heads=4, kv_heads=1, vocab=300,
                eps=1e-6, rope_base=1000000.0, freq_scale=1.0, neox=True, bias=True, tied=True)
    build("qwen2_bias_f32", qwen, {}, 3, [256, 72, 101, 108, 108, 111, 259, 5, 299, 33])
    mats = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down", "output", "token_embd"]
    build("llama_gqa_f16", small_llama, {m: GGML_F16 for m in mats}, 4, toks)
    build("llama_gqa_q8_0", small_llama, {m: GGML_Q8_0 for m in mats}, 5, toks)
    kq = dict(small_llama, dim=256, hidden=256, layers=1, heads=4, kv_heads=2)
    build("llama_q4_k", kq, {"attn_q": GGML_Q4_K, "attn_k": GGML_Q4_K, "attn_v": GGML_Q6_K,
                             "attn_output": GGML_Q4_K, "ffn_gate": GGML_Q4_K, "ffn_up": GGML_Q4_K,
                             "ffn_down": GGML_Q6_K, "output": GGML_Q6_K, "token_embd": GGML_Q4_0}, 6, toks)


if __name__ == "__main__":
    main()
