#!/usr/bin/env python3
"""PyTorch side of bench/encoder.sh: the forward pass of a BERT encoder
(post-LayerNorm, exact GELU, mean pooling, L2 normalization) on the
synthetic weights that pkg/encoder's BenchmarkShapes writes, timed on the
same token ids (16-token query, 32 chunks of 256 tokens) and threads, and
the machine's sgemm peak as torch.mm of 1024x1024 matrices.

    /usr/bin/python3 tools/encbench/torch_bench.py DIR [query]

DIR holds minilm/ and bge-base/ (model.safetensors, config.json); "query"
times the 16-token query only. Prints
one line per case and thread count: min and median wall ms per pass and
median process CPU ms (all threads) per pass.
"""
import ctypes
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        if t["dtype"] != "F32":
            raise SystemExit(f"{name}: dtype {t['dtype']}, want F32")
        a, b = t["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[a:b], dtype="<f4").reshape(t["shape"]).copy())
    return out


def forward(w, cfg, ids):
    h, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    d, eps = h // nh, cfg["layer_norm_eps"]
    b, n = ids.shape

    def ln(x, p):
        return F.layer_norm(x, (h,), w[p + ".weight"], w[p + ".bias"], eps)

    def lin(x, p):
        return F.linear(x, w[p + ".weight"], w[p + ".bias"])

    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n]
    x = ln(x + w["embeddings.token_type_embeddings.weight"][0], "embeddings.LayerNorm")
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        q, k, v = (lin(x, p + "attention.self." + m).view(b, n, nh, d).transpose(1, 2) for m in ("query", "key", "value"))
        a = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d), dim=-1)
        c = torch.matmul(a, v).transpose(1, 2).reshape(b, n, h)
        x = ln(x + lin(c, p + "attention.output.dense"), p + "attention.output.LayerNorm")
        f = F.gelu(lin(x, p + "intermediate.dense"))
        x = ln(x + lin(f, p + "output.dense"), p + "output.LayerNorm")
    return F.normalize(x.mean(dim=1), dim=-1)


def set_threads(n):
    """torch.set_num_threads does not reach OpenBLAS's own threads: without
    this its one-thread runs compute on two."""
    torch.set_num_threads(n)
    try:
        ctypes.CDLL("libblas.so.3").openblas_set_num_threads(n)
    except (OSError, AttributeError):
        pass  # the reference BLAS is single-threaded


def bench_ids(count, n):
    """The ids of pkg/encoder's benchIDs."""
    ids = [[1000 + (7 * i + 13 * p) % 29000 for p in range(n)] for i in range(count)]
    for s in ids:
        s[0], s[-1] = 2, 3
    return torch.tensor(ids, dtype=torch.long)


def timed(f, reps):
    walls, cpus = [], []
    for _ in range(reps):
        w0, c0 = time.perf_counter(), time.process_time()
        f()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    walls.sort()
    cpus.sort()
    return walls[0] * 1e3, walls[len(walls) // 2] * 1e3, cpus[len(cpus) // 2] * 1e3


def main():
    root = sys.argv[1]
    query_only = sys.argv[2:] == ["query"]
    torch.set_grad_enabled(False)
    for threads in (1, 2):
        set_threads(threads)
        a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
        torch.mm(a, b)
        best, _, cpu = timed(lambda: torch.mm(a, b), 10)
        flop = 2 * 1024**3 / 1e6
        print(f"torch sgemm 1024 threads={threads}: {flop / best:.1f} GFLOP/s (best of 10), {flop / cpu:.1f} GFLOP/cpu-s (median)", flush=True)
    for shape in ("minilm", "bge-base"):
        d = os.path.join(root, shape)
        with open(os.path.join(d, "config.json")) as f:
            cfg = json.load(f)
        w = read_safetensors(os.path.join(d, "model.safetensors"))
        cases = (("query16", 1, 16, 50), ("chunk256x32", 32, 256, 1))
        for case, count, n, reps in cases[:1] if query_only else cases:
            ids = bench_ids(count, n)
            for threads in (1, 2):
                set_threads(threads)
                forward(w, cfg, ids[:1, :16])  # warm up
                lo, med, cpu = timed(lambda: forward(w, cfg, ids), reps)
                print(f"torch {shape}/{case}/threads={threads}: {lo:.2f} min {med:.2f} median ms/pass, {cpu:.2f} cpu-ms/pass", flush=True)


if __name__ == "__main__":
    main()
