#!/usr/bin/python3
"""Merge go.json, hnswlib.json and faiss.json into a Markdown report.

Latencies are the median over query passes with the minimum in brackets;
ratios compare medians (Go divided by the peer: below 1 means Go is faster).
"""
import argparse
import json
import os
import statistics


def load(d, name):
    p = os.path.join(d, name + ".json")
    if not os.path.exists(p):
        return None
    with open(p) as fh:
        return json.load(fh)


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def fmt_us(xs):
    if not xs:
        return "—"
    m, lo = med(xs), min(xs)
    if m >= 1000:
        return f"{m / 1000:.2f} ms ({lo / 1000:.2f})"
    return f"{m:.0f} µs ({lo:.0f})"


def sweep_by_ef(rep):
    out = {}
    for r in rep["runs"]:
        for p in r["sweep"]:
            out.setdefault(p["ef"], []).append(p)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="out/ann")
    args = ap.parse_args()
    with open(os.path.join(args.dir, "meta.json")) as fh:
        meta = json.load(fh)
    reps = [r for r in (load(args.dir, n) for n in ("go", "hnswlib", "faiss")) if r]
    names = {"go-hnsw": "pkg/hnsw (Go)", "hnswlib": "hnswlib", "faiss": "FAISS HNSW"}
    nruns = max(len(r["runs"]) for r in reps)
    print(f"Dataset: {meta['N']} × {meta['Dim']} float32, normalised, mixture of {meta['Clusters']} Gaussians of rank "
          f"{meta['Rank']} plus isotropic noise (seed {meta['Seed']}); {meta['NQ']} queries from the same mixture; "
          f"metric inner product (cosine). M {reps[0]['m']}, efConstruction {reps[0]['ef_construction']}, "
          f"k 10. One build per system ({reps[0]['build_threads']} threads), {nruns} query passes; "
          f"latencies are median (min) over passes.\n")

    print("### Build\n")
    print("| system | wall s | vectors/s (wall) | CPU-s | vectors per CPU-s | bytes/vector (index) | RSS or heap growth per vector |")
    print("|---|---|---|---|---|---|---|")
    for r in reps:
        b = r["build"]
        bpv = b.get("bytes_per_vector")
        print(f"| {names[r['system']]} | {b['build_s']:.1f} | {b['build_rate']:.0f} | {b['build_cpu_s']:.1f} | "
              f"{b['build_rate_per_cpu_s']:.0f} | {f'{bpv:.0f}' if bpv else '—'} | {b['heap_bytes_per_vector']:.0f} |")
    print()
    base = {r["system"]: r["build"]["build_rate_per_cpu_s"] for r in reps}
    if "go-hnsw" in base:
        parts = [f"{names[s]} {base['go-hnsw'] / v:.2f}×" for s, v in base.items() if s != "go-hnsw"]
        print(f"Build throughput per CPU-second, Go relative to: {', '.join(parts)} (above 1: Go builds faster).\n")

    print("### Recall and single-client latency (ef sweep)\n")
    print("CPU = CPU time of the querying thread (the work of one query, immune to waiting for a core on a "
          "loaded machine); wall = end-to-end time of the call (Python peers include ~5–10 µs of binding overhead).\n")
    print("| ef | " + " | ".join(f"{names[r['system']]} recall / CPU p50 / CPU p99 / wall p99" for r in reps) + " |")
    print("|---|" + "---|" * len(reps))
    sweeps = [sweep_by_ef(r) for r in reps]
    for ef in sorted(sweeps[0]):
        cells = []
        for s in sweeps:
            ps = s.get(ef, [])
            if not ps:
                cells.append("—")
                continue
            cells.append(f"{med([p['recall'] for p in ps]):.4f} / {fmt_us([p['cpu_p50_us'] for p in ps])} / "
                         f"{fmt_us([p['cpu_p99_us'] for p in ps])} / {fmt_us([p['p99_us'] for p in ps])}")
        print(f"| {ef} | " + " | ".join(cells) + " |")

    print("\n### Latency at equal recall\n")
    print("For each target, the smallest swept ef whose median recall@10 reaches it, and that ef's median CPU p50 "
          "and wall p99. Ratio = Go / peer on CPU p50 (below 1: Go is faster).\n")
    print("| recall@10 ≥ | " + " | ".join(names[r["system"]] + " ef / CPU p50 / wall p99" for r in reps) +
          " | " + " | ".join(f"ratio vs {names[r['system']]}" for r in reps[1:]) + " |")
    print("|---|" + "---|" * (2 * len(reps) - 1))
    for target in (0.95, 0.98, 0.99, 0.995):
        cells, p50s = [], []
        for s in sweeps:
            hit = None
            for ef in sorted(s):
                if med([p["recall"] for p in s[ef]]) >= target:
                    hit = ef
                    break
            if hit is None:
                cells.append("not reached")
                p50s.append(None)
                continue
            c50 = med([p["cpu_p50_us"] for p in s[hit]])
            p50s.append(c50)
            cells.append(f"{hit} / {fmt_us([p['cpu_p50_us'] for p in s[hit]])} / {fmt_us([p['p99_us'] for p in s[hit]])}")
        ratios = []
        for v in p50s[1:]:
            ratios.append(f"{p50s[0] / v:.2f}" if p50s[0] and v else "—")
        print(f"| {target} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")

    print("\n### 16 concurrent clients\n")
    print("Wall-clock latency per query and total throughput with 16 clients sharing the machine's cores "
          "(Go: goroutines; Python: threads, the bindings release the GIL during search).\n")
    print("| system | ef | recall@10 | QPS median (max) | p50 | p99 | process CPU per query |")
    print("|---|---|---|---|---|---|---|")
    conc = {}
    for r in reps:
        byef = {}
        for run in r["runs"]:
            for c in run["concurrent"]:
                byef.setdefault(c["ef"], []).append(c)
        for ef, cs in sorted(byef.items()):
            q = [c["qps"] for c in cs]
            conc[(r["system"], ef)] = med(q)
            cpq = [c["cpu_per_query_us"] for c in cs if "cpu_per_query_us" in c]
            print(f"| {names[r['system']]} | {ef} | {med([c['recall'] for c in cs]):.4f} | {med(q):.0f} ({max(q):.0f}) | "
                  f"{fmt_us([c['p50_us'] for c in cs])} | {fmt_us([c['p99_us'] for c in cs])} | {fmt_us(cpq)} |")
    for (s, ef), q in sorted(conc.items()):
        if s != "go-hnsw" and ("go-hnsw", ef) in conc:
            print(f"\nQPS ratio Go / {names[s]} at ef {ef}: {conc[('go-hnsw', ef)] / q:.2f}", end="")
    print("\n")

    print("### Filtered queries\n")
    print("Allowed points: id % 100 == 0 (1%) and id % 2 == 0 (50%), spread over all clusters. Recall against the "
          "exact filtered top 10; 'all found' = share of queries whose results hold every allowed point of the exact "
          "top 10. Go's exact column is SearchExact (scan of the index's vectors with the same predicate).\n")
    print("| system | filter | ef | method | recall@10 | all found | CPU p50 | CPU p99 | wall p99 | exact scan p50 / p99 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in reps:
        byname = {}
        for run in r["runs"]:
            for f in run["filtered"]:
                byname.setdefault(f["name"], []).append(f)
        for name, fs in byname.items():
            ex = "—"
            if fs[0].get("exact_p50_us"):
                ex = f"{fmt_us([f['exact_p50_us'] for f in fs])} / {fmt_us([f['exact_p99_us'] for f in fs])}"
            method = fs[0].get("method", "allow predicate in the graph walk")
            print(f"| {names[r['system']]} | {100 * fs[0]['selectivity']:.0f}% | {fs[0]['ef']} | {method} | "
                  f"{med([f['recall'] for f in fs]):.4f} | {100 * med([f['full_match'] for f in fs]):.1f}% | "
                  f"{fmt_us([f['cpu_p50_us'] for f in fs])} | {fmt_us([f['cpu_p99_us'] for f in fs])} | "
                  f"{fmt_us([f['p99_us'] for f in fs])} | {ex} |")
    go = next((r for r in reps if r["system"] == "go-hnsw"), None)
    if go and go["runs"] and go["runs"][0].get("selectivity"):
        print("\n### Filtered HNSW vs exact scan by selectivity (Go, mean CPU per query, first pass)\n")
        print("| selectivity | HNSW recall@10 | HNSW | exact scan |")
        print("|---|---|---|---|")
        for p in go["runs"][0]["selectivity"]:
            print(f"| {100 * p['selectivity']:.1f}% | {p['recall']:.4f} | {fmt_us([p['hnsw_mean_us']])} | "
                  f"{fmt_us([p['exact_mean_us']])} |")

    g = load(args.dir, "grpc")
    if g:
        print(f"\n### Through the gRPC API (official Go client)\n")
        print(f"Target: {g['target']}; {g['n']} points upserted with wait=true at {g['upsert_rate']:.0f} points/s "
              f"(WAL fsync + HNSW insert); queries with hnsw_ef {g['ef']}, limit 10; ground truth: {g['ground_truth']}; "
              f"{g['runs']} passes, median (min). Filters are payload conditions (match integer on an indexed field).\n")
        print("| query | clients | recall@10 | QPS median | p50 | p99 |")
        print("|---|---|---|---|---|---|")
        by = {}
        for c in g["cases"]:
            by.setdefault((c["name"], c["clients"]), []).append(c)
        for (name, cl), cs in by.items():
            label = {"ann": "unfiltered", "f1": "filter 1%", "f50": "filter 50%"}.get(name, name)
            print(f"| {label} | {cl} | {med([c['recall'] for c in cs]):.4f} | {med([c['qps'] for c in cs]):.0f} | "
                  f"{fmt_us([c['p50_us'] for c in cs])} | {fmt_us([c['p99_us'] for c in cs])} |")


if __name__ == "__main__":
    main()
