#!/usr/bin/python3
"""Run FAISS HNSW and hnswlib on the dataset written by `ann gen`.

Same vectors, queries, ground truth, M, efConstruction and ef values as the Go
benchmark; writes DIR/<system>.json in the Go program's result format.
Debian packages: python3-faiss python3-hnswlib python3-numpy.

    /usr/bin/python3 peers.py --dir ../out/ann --runs 3
"""
import argparse
import concurrent.futures
import json
import os
import threading
import time

import numpy as np


def pct(values):
    a = np.sort(np.asarray(values, dtype=np.float64))
    n = len(a)
    return {"p50": float(a[n // 2]), "p99": float(a[min(n - 1, n * 99 // 100)]), "mean": float(a.mean())}


def recall_of(got, want):
    want = [w for w in want if w >= 0]
    if not want:
        return 1.0
    s = set(int(g) for g in got if g >= 0)
    return sum(1 for w in want if w in s) / len(want)


class HnswlibSystem:
    name = "hnswlib"

    def __init__(self, dim, m, efc, threads):
        import hnswlib
        self.mod = hnswlib
        self.dim, self.m, self.efc, self.threads = dim, m, efc, threads
        self.version = "python3-hnswlib (Debian) " + getattr(hnswlib, "__version__", "0.6.2")

    def build(self, base):
        self.ix = self.mod.Index(space="ip", dim=self.dim)
        self.ix.init_index(max_elements=len(base), ef_construction=self.efc, M=self.m, random_seed=100)
        self.ix.add_items(base, np.arange(len(base)), num_threads=self.threads)
        self.ix.set_num_threads(1)

    def set_ef(self, ef):
        self.ix.set_ef(ef)

    def search(self, q, k):
        labels, _ = self.ix.knn_query(q, k=k, num_threads=1)
        return labels[0]

    def search_filtered(self, q, k, mod, ef):
        # hnswlib 0.6.2 (Debian 12) has no filter argument (it came in 0.7);
        # emulate by over-fetching and post-filtering, as a client would.
        kk = min(self.n, k * mod * 2)
        self.ix.set_ef(max(ef, kk))
        labels, _ = self.ix.knn_query(q, k=kk, num_threads=1)
        out = [int(x) for x in labels[0] if x % mod == 0][:k]
        return out

    def memory_bytes(self):
        return None


class FaissSystem:
    name = "faiss"

    def __init__(self, dim, m, efc, threads):
        import faiss
        self.faiss = faiss
        self.dim, self.m, self.efc, self.threads = dim, m, efc, threads
        self.version = "python3-faiss (Debian) " + faiss.__version__
        self.sel = {}

    def build(self, base):
        f = self.faiss
        f.omp_set_num_threads(self.threads)
        self.ix = f.IndexHNSWFlat(self.dim, self.m, f.METRIC_INNER_PRODUCT)
        self.ix.hnsw.efConstruction = self.efc
        self.ix.add(base)
        f.omp_set_num_threads(1)

    def set_ef(self, ef):
        self.ix.hnsw.efSearch = ef

    def search(self, q, k):
        _, labels = self.ix.search(q, k)
        return labels[0]

    def search_filtered(self, q, k, mod, ef):
        f = self.faiss
        if mod not in self.sel:
            ids = np.arange(0, self.n, mod, dtype=np.int64)
            sel = f.IDSelectorBatch(ids)
            p = f.SearchParametersHNSW()
            p.sel = sel
            self.sel[mod] = (ids, sel, p)
        p = self.sel[mod][2]
        p.efSearch = ef
        _, labels = self.ix.search(q, k, params=p)
        return labels[0]

    def memory_bytes(self):
        return None


def rss_bytes():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def run_system(sysobj, base, queries, gts, filters, args):
    n = len(base)
    sysobj.n = n
    nq = len(queries)
    qs = [queries[i:i + 1] for i in range(nq)]
    result = {"system": sysobj.name, "version": sysobj.version, "m": args.m, "ef_construction": args.efc,
              "build_threads": args.build_threads, "runs": []}
    efs = [int(x) for x in args.ef.split(",")]
    conc_efs = [int(x) for x in args.ef_conc.split(",")]
    bi = {}
    rss0 = rss_bytes()
    t0, c0 = time.perf_counter(), time.process_time()
    sysobj.build(base)
    bi["build_s"] = time.perf_counter() - t0
    bi["build_rate"] = n / bi["build_s"]
    bi["build_cpu_s"] = time.process_time() - c0
    bi["build_rate_per_cpu_s"] = n / bi["build_cpu_s"]
    bi["heap_bytes_per_vector"] = (rss_bytes() - rss0) / n
    result["build"] = bi
    print(f"{sysobj.name}: build {bi['build_s']:.1f}s ({bi['build_rate']:.0f} vectors/s; "
          f"{bi['build_cpu_s']:.1f} CPU-s, {bi['build_rate_per_cpu_s']:.0f} vectors per CPU-s), "
          f"RSS +{bi['heap_bytes_per_vector']:.0f} bytes/vector", flush=True)
    for r in range(args.runs):
        rr = {}
        print(f"{sysobj.name} run {r + 1}", flush=True)
        rr["sweep"] = []
        for ef in efs:
            sysobj.set_ef(ef)
            lat, clat, rec = [], [], 0.0
            for i in range(nq):
                t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
                got = sysobj.search(qs[i], 10)
                clat.append((time.thread_time_ns() - c0) / 1e3)
                lat.append((time.perf_counter_ns() - t0) / 1e3)
                rec += recall_of(got, gts["all"][i])
            p, c = pct(lat), pct(clat)
            rr["sweep"].append({"ef": ef, "recall": rec / nq, "p50_us": p["p50"], "p99_us": p["p99"], "mean_us": p["mean"],
                                "cpu_p50_us": c["p50"], "cpu_p99_us": c["p99"], "cpu_mean_us": c["mean"]})
            print(f"  ef {ef:4d}  recall@10 {rec / nq:.4f}  wall p50 {p['p50']:7.1f}µs p99 {p['p99']:7.1f}µs  "
                  f"cpu p50 {c['p50']:7.1f}µs p99 {c['p99']:7.1f}µs", flush=True)
        rr["concurrent"] = []
        for ef in conc_efs:
            sysobj.set_ef(ef)
            total = max(args.clients * nq // 4, nq)
            lat = [0.0] * total
            recs = [0.0] * total
            counter = iter(range(total))
            lock = threading.Lock()

            def client():
                while True:
                    with lock:
                        i = next(counter, None)
                    if i is None:
                        return
                    t0 = time.perf_counter_ns()
                    got = sysobj.search(qs[i % nq], 10)
                    lat[i] = (time.perf_counter_ns() - t0) / 1e3
                    recs[i] = recall_of(got, gts["all"][i % nq])

            t0, c0 = time.perf_counter(), time.process_time()
            with concurrent.futures.ThreadPoolExecutor(args.clients) as ex:
                for f in [ex.submit(client) for _ in range(args.clients)]:
                    f.result()
            el, cpu = time.perf_counter() - t0, time.process_time() - c0
            p = pct(lat)
            c = {"ef": ef, "clients": args.clients, "qps": total / el, "p50_us": p["p50"], "p99_us": p["p99"],
                 "recall": sum(recs) / total, "cpu_per_query_us": cpu * 1e6 / total}
            rr["concurrent"].append(c)
            print(f"  {args.clients} clients ef {ef}: {c['qps']:.0f} qps, p50 {p['p50']:.1f}µs, p99 {p['p99']:.1f}µs, "
                  f"recall {c['recall']:.4f}", flush=True)
        rr["filtered"] = []
        for name, mod in filters:
            lat, clat, rec, full = [], [], 0.0, 0
            nqf = nq if sysobj.name == "faiss" or mod <= 2 else min(nq, 200)
            for i in range(nqf):
                t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
                got = sysobj.search_filtered(qs[i], 10, mod, args.ef_filter)
                clat.append((time.thread_time_ns() - c0) / 1e3)
                lat.append((time.perf_counter_ns() - t0) / 1e3)
                for g in got:
                    if g >= 0 and g % mod != 0:
                        raise SystemExit(f"{sysobj.name} filter {name} returned excluded id {g}")
                rc = recall_of(got, gts[name][i])
                rec += rc
                full += rc == 1.0
            p, c = pct(lat), pct(clat)
            fr = {"name": name, "selectivity": 1 / mod, "ef": args.ef_filter, "recall": rec / nqf, "full_match": full / nqf,
                  "p50_us": p["p50"], "p99_us": p["p99"], "cpu_p50_us": c["p50"], "cpu_p99_us": c["p99"],
                  "queries": nqf, "method": "post-filter (no filter API in 0.6.2)" if sysobj.name == "hnswlib" else "IDSelectorBatch"}
            rr["filtered"].append(fr)
            print(f"  filter {name} ({100 / mod:.0f}%) ef {args.ef_filter}: recall {fr['recall']:.4f}, all top-10 found in "
                  f"{100 * fr['full_match']:.1f}% of queries, p50 {p['p50']:.1f}µs p99 {p['p99']:.1f}µs ({fr['method']})", flush=True)
        result["runs"].append(rr)
        # Written after every pass so a long run leaves usable results.
        with open(os.path.join(args.dir, f"{sysobj.name}.json"), "w") as fh:
            json.dump(result, fh, indent=1)
    sysobj.ix = None
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="out/ann")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--efc", type=int, default=200)
    ap.add_argument("--ef", default="16,24,32,48,64,96,128,192,256")
    ap.add_argument("--ef-conc", default="64,128")
    ap.add_argument("--ef-filter", type=int, default=64)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--build-threads", type=int, default=2)
    ap.add_argument("--systems", default="hnswlib,faiss")
    args = ap.parse_args()
    base = np.load(os.path.join(args.dir, "base.npy"))
    queries = np.load(os.path.join(args.dir, "queries.npy"))
    gts = {k: np.load(os.path.join(args.dir, f"gt_{k}.npy")) for k in ("all", "f1", "f50")}
    with open(os.path.join(args.dir, "meta.json")) as fh:
        meta = json.load(fh)
    filters = sorted(meta["Filters"].items(), key=lambda kv: -kv[1])
    dim = base.shape[1]
    for name in args.systems.split(","):
        cls = {"hnswlib": HnswlibSystem, "faiss": FaissSystem}[name]
        run_system(cls(dim, args.m, args.efc, args.build_threads), base, queries, gts, filters, args)


if __name__ == "__main__":
    main()
