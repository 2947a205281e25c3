// Command ann benchmarks pkg/hnsw on a synthetic embedding-like dataset and
// writes the dataset as .npy files so that peers.py runs FAISS and hnswlib on
// exactly the same vectors, queries and ground truth.
//
//	go run ./ann gen -dir out/ann          # dataset + exact ground truth
//	go run ./ann run -dir out/ann -runs 3  # build, recall, latency → go.json
//	go run ./ann grpc -dir out/ann         # the same through the gRPC API → grpc.json
//	go run ./ann quant -dir out/ann        # int8 index, originals mapped, rescored → quant.json
//
// run.sh in this directory runs everything, peers included, and prints the
// report.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tributary-rag/tributary/pkg/hnsw"
	"github.com/tributary-rag/tributary/pkg/vecmath"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "ann:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: ann gen|run|grpc|quant [flags]")
	}
	switch args[0] {
	case "gen":
		return runGen(args[1:], stdout)
	case "run":
		return runBench(args[1:], stdout)
	case "grpc":
		return runGRPC(args[1:], stdout)
	case "quant":
		return runQuant(args[1:], stdout)
	default:
		return fmt.Errorf("unknown subcommand %q", args[0])
	}
}

// filters are the filtered-query workloads: a point is allowed when
// id % mod == 0. peers.py uses the same definition.
var filters = []struct {
	name string
	mod  uint32
}{
	{"f1", 100}, // 1% selectivity
	{"f50", 2},  // 50% selectivity
}

type meta struct {
	N, NQ, Dim, K, Clusters, Rank int
	Seed                          uint64
	Filters                       map[string]uint32
}

func runGen(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	dir := fs.String("dir", "out/ann", "output directory")
	n := fs.Int("n", 100000, "base vectors")
	nq := fs.Int("nq", 1000, "query vectors")
	dim := fs.Int("dim", 384, "dimension")
	k := fs.Int("k", 10, "ground-truth neighbours per query")
	clusters := fs.Int("clusters", 200, "Gaussian mixture components")
	rank := fs.Int("rank", 24, "rank of each component's covariance (intrinsic dimension)")
	seed := fs.Uint64("seed", 42, "random seed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return fmt.Errorf("create output dir: %w", err)
	}
	start := time.Now()
	base, queries := generate(*n, *nq, *dim, *clusters, *rank, *seed)
	fmt.Fprintf(stdout, "generated %d+%d vectors of dim %d in %v\n", *n, *nq, *dim, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	gts := groundTruth(base, queries, *dim, *k)
	fmt.Fprintf(stdout, "exact ground truth in %v\n", time.Since(start).Round(time.Millisecond))
	if err := writeNPY(filepath.Join(*dir, "base.npy"), *n, *dim, base); err != nil {
		return err
	}
	if err := writeNPY(filepath.Join(*dir, "queries.npy"), *nq, *dim, queries); err != nil {
		return err
	}
	for name, gt := range gts {
		if err := writeNPY(filepath.Join(*dir, "gt_"+name+".npy"), *nq, *k, gt); err != nil {
			return err
		}
	}
	m := meta{N: *n, NQ: *nq, Dim: *dim, K: *k, Clusters: *clusters, Rank: *rank, Seed: *seed, Filters: map[string]uint32{}}
	for _, f := range filters {
		m.Filters[f.name] = f.mod
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode meta: %w", err)
	}
	if err := os.WriteFile(filepath.Join(*dir, "meta.json"), b, 0o644); err != nil {
		return fmt.Errorf("write meta: %w", err)
	}
	return nil
}

// generate draws normalised vectors from a mixture of low-rank Gaussians plus
// a little isotropic noise: each point is center + A_c z + 0.3 e with z of
// the given rank. Real sentence embeddings are clustered by topic and have a
// low intrinsic dimension; isotropic 384-dim noise would be far harder than
// any real corpus, uniform data far easier.
func generate(n, nq, dim, clusters, rank int, seed uint64) (base, queries []float32) {
	r := rand.New(rand.NewPCG(seed, 1))
	centers := make([]float32, clusters*dim)
	for i := range centers {
		centers[i] = float32(r.NormFloat64())
	}
	basis := make([]float32, clusters*dim*rank)
	s := 1 / math.Sqrt(float64(rank))
	for i := range basis {
		basis[i] = float32(s * r.NormFloat64())
	}
	draw := func(out []float32, rr *rand.Rand) {
		z := make([]float32, rank)
		for i := 0; i < len(out)/dim; i++ {
			c := rr.IntN(clusters)
			v := out[i*dim : (i+1)*dim]
			for j := range z {
				z[j] = float32(rr.NormFloat64())
			}
			a := basis[c*dim*rank : (c+1)*dim*rank]
			for j := range v {
				v[j] = centers[c*dim+j] + vecmath.Dot(a[j*rank:(j+1)*rank], z) + float32(0.3*rr.NormFloat64())
			}
			vecmath.Normalize(v)
		}
	}
	base = make([]float32, n*dim)
	queries = make([]float32, nq*dim)
	draw(base, rand.New(rand.NewPCG(seed, 2)))
	draw(queries, rand.New(rand.NewPCG(seed, 3)))
	return base, queries
}

// groundTruth computes the exact top-k by dot product for every query,
// unfiltered ("all") and under each filter, in parallel over queries.
func groundTruth(base, queries []float32, dim, k int) map[string][]int32 {
	n, nq := len(base)/dim, len(queries)/dim
	out := map[string][]int32{"all": make([]int32, nq*k)}
	for _, f := range filters {
		out[f.name] = make([]int32, nq*k)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			scores := make([]float32, n)
			for {
				qi := int(next.Add(1) - 1)
				if qi >= nq {
					return
				}
				vecmath.DotBatch(queries[qi*dim:(qi+1)*dim], base, scores)
				copy(out["all"][qi*k:], topK(scores, k, 1))
				for _, f := range filters {
					copy(out[f.name][qi*k:], topK(scores, k, f.mod))
				}
			}
		}()
	}
	wg.Wait()
	return out
}

// topK returns the ids with the k highest scores among ids divisible by mod.
func topK(scores []float32, k int, mod uint32) []int32 {
	type sc struct {
		s  float32
		id int32
	}
	best := make([]sc, 0, k+1)
	for id := uint32(0); id < uint32(len(scores)); id += mod {
		s := scores[id]
		if len(best) == k && s <= best[k-1].s {
			continue
		}
		i, _ := slices.BinarySearchFunc(best, s, func(e sc, t float32) int {
			if e.s > t {
				return -1
			}
			return 1
		})
		best = slices.Insert(best, i, sc{s, int32(id)})
		if len(best) > k {
			best = best[:k]
		}
	}
	ids := make([]int32, len(best))
	for i, b := range best {
		ids[i] = b.id
	}
	return ids
}

// Result structures shared with peers.py (same JSON field names).
type sweepPoint struct {
	Ef     int     `json:"ef"`
	Recall float64 `json:"recall"`
	P50us  float64 `json:"p50_us"`
	P99us  float64 `json:"p99_us"`
	MeanUs float64 `json:"mean_us"`
	// CPU time of the querying thread: the work per query, without time
	// spent waiting for a core on a loaded machine.
	CPUP50us  float64 `json:"cpu_p50_us"`
	CPUP99us  float64 `json:"cpu_p99_us"`
	CPUMeanUs float64 `json:"cpu_mean_us"`
}

type concurrentResult struct {
	Ef      int     `json:"ef"`
	Clients int     `json:"clients"`
	QPS     float64 `json:"qps"`
	P50us   float64 `json:"p50_us"`
	P99us   float64 `json:"p99_us"`
	Recall  float64 `json:"recall"`
	// CPUPerQueryUs is the process CPU time divided by the queries: the
	// cost of a query under concurrency, independent of how large a share
	// of a loaded machine the process got.
	CPUPerQueryUs float64 `json:"cpu_per_query_us"`
}

type filteredResult struct {
	Name        string  `json:"name"`
	Selectivity float64 `json:"selectivity"`
	Ef          int     `json:"ef"`
	Recall      float64 `json:"recall"`
	// FullMatch is the fraction of queries whose results contain every
	// allowed point of the exact top k.
	FullMatch  float64 `json:"full_match"`
	P50us      float64 `json:"p50_us"`
	P99us      float64 `json:"p99_us"`
	CPUP50us   float64 `json:"cpu_p50_us"`
	CPUP99us   float64 `json:"cpu_p99_us"`
	ExactP50us float64 `json:"exact_p50_us,omitempty"`
	ExactP99us float64 `json:"exact_p99_us,omitempty"`
}

type selectivityPoint struct {
	Selectivity float64 `json:"selectivity"`
	Recall      float64 `json:"recall"`
	HNSWMeanUs  float64 `json:"hnsw_mean_us"`
	ExactMeanUs float64 `json:"exact_mean_us"`
}

type buildInfo struct {
	Seconds     float64 `json:"build_s"`
	Rate        float64 `json:"build_rate"`
	CPU         float64 `json:"build_cpu_s"`
	RatePerCPU  float64 `json:"build_rate_per_cpu_s"`
	BytesPerVec float64 `json:"bytes_per_vector,omitempty"`
	HeapPerVec  float64 `json:"heap_bytes_per_vector"`
}

type runResult struct {
	Sweep         []sweepPoint       `json:"sweep"`
	Concurrent    []concurrentResult `json:"concurrent"`
	Filtered      []filteredResult   `json:"filtered"`
	Selectivities []selectivityPoint `json:"selectivity,omitempty"`
}

type report struct {
	System       string      `json:"system"`
	Version      string      `json:"version"`
	M            int         `json:"m"`
	EfConstr     int         `json:"ef_construction"`
	BuildThreads int         `json:"build_threads"`
	Build        buildInfo   `json:"build"`
	Runs         []runResult `json:"runs"`
}

func parseInts(s string) ([]int, error) {
	var out []int
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("parse %q: %w", s, err)
		}
		out = append(out, v)
	}
	return out, nil
}

func runBench(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	dir := fs.String("dir", "out/ann", "dataset directory (from gen)")
	runs := fs.Int("runs", 3, "query passes over the one built index")
	m := fs.Int("m", 16, "HNSW M")
	efc := fs.Int("efc", 200, "HNSW efConstruction")
	efsFlag := fs.String("ef", "16,24,32,48,64,96,128,192,256", "ef values to sweep")
	efConc := fs.String("ef-conc", "64,128", "ef values for the concurrent-clients test")
	efFilter := fs.Int("ef-filter", 64, "ef for filtered queries")
	clients := fs.Int("clients", 16, "concurrent clients")
	threads := fs.Int("build-threads", 2, "goroutines inserting during the build")
	selSweep := fs.Bool("selectivity-sweep", true, "measure filtered HNSW vs exact at several selectivities")
	out := fs.String("out", "", "JSON output (default DIR/go.json)")
	phasesFlag := fs.String("phases", "sweep,concurrent,filtered", "phases to run after the build")
	if err := fs.Parse(args); err != nil {
		return err
	}
	phases := map[string]bool{}
	for _, p := range strings.Split(*phasesFlag, ",") {
		phases[strings.TrimSpace(p)] = true
	}
	if !phases["sweep"] {
		*efsFlag = ""
	}
	if !phases["concurrent"] {
		*efConc = ""
	}
	if !phases["filtered"] {
		*selSweep = false
	}
	efs, err := parseInts(*efsFlag)
	if err != nil {
		return err
	}
	concEfs, err := parseInts(*efConc)
	if err != nil {
		return err
	}
	base, n, dim, err := readNPYFloat32(filepath.Join(*dir, "base.npy"))
	if err != nil {
		return err
	}
	queries, nq, qdim, err := readNPYFloat32(filepath.Join(*dir, "queries.npy"))
	if err != nil {
		return err
	}
	if qdim != dim {
		return fmt.Errorf("queries have dim %d, base %d", qdim, dim)
	}
	gts := map[string][][]uint32{}
	for _, name := range []string{"all", "f1", "f50"} {
		g, rows, cols, err := readNPYInt32(filepath.Join(*dir, "gt_"+name+".npy"))
		if err != nil {
			return err
		}
		if rows != nq {
			return fmt.Errorf("gt_%s has %d rows, want %d", name, rows, nq)
		}
		gts[name] = make([][]uint32, rows)
		for i := range rows {
			for _, v := range g[i*cols : (i+1)*cols] {
				gts[name][i] = append(gts[name][i], uint32(v))
			}
		}
	}
	q := func(i int) []float32 { return queries[i*dim : (i+1)*dim] }
	rep := report{System: "go-hnsw", Version: runtime.Version(), M: *m, EfConstr: *efc, BuildThreads: *threads}
	var bi buildInfo
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	start, cpu0 := time.Now(), processCPU()
	ix, err := hnsw.New(dim, hnsw.Cosine, hnsw.M(*m), hnsw.EfConstruction(*efc), hnsw.Seed(1))
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	var addErr atomic.Pointer[error]
	for w := range *threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += *threads {
				if err := ix.Add(uint32(i), base[i*dim:(i+1)*dim]); err != nil {
					addErr.Store(&err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if e := addErr.Load(); e != nil {
		return *e
	}
	bi.Seconds = time.Since(start).Seconds()
	bi.Rate = float64(n) / bi.Seconds
	bi.CPU = (processCPU() - cpu0).Seconds()
	bi.RatePerCPU = float64(n) / bi.CPU
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	// Keep base alive through the measurement; otherwise the GC frees it
	// here and hides the index's own growth.
	runtime.KeepAlive(base)
	bi.HeapPerVec = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
	bi.BytesPerVec = float64(ix.Stats().Bytes) / float64(n)
	rep.Build = bi
	fmt.Fprintf(stdout, "build %.1fs (%.0f vectors/s, %d threads; %.1f CPU-s, %.0f vectors per CPU-s), %.0f bytes/vector (heap %.0f)\n",
		bi.Seconds, bi.Rate, *threads, bi.CPU, bi.RatePerCPU, bi.BytesPerVec, bi.HeapPerVec)
	for r := range *runs {
		var rr runResult
		fmt.Fprintf(stdout, "run %d\n", r+1)
		runtime.LockOSThread()
		for _, ef := range efs {
			lat := make([]time.Duration, nq)
			clat := make([]time.Duration, nq)
			var rec float64
			for i := range nq {
				t0, c0 := time.Now(), threadCPU()
				res := ix.Search(q(i), 10, ef, nil)
				lat[i], clat[i] = time.Since(t0), threadCPU()-c0
				rec += recallOf(res, gts["all"][i])
			}
			p, c := summarize(lat), summarize(clat)
			rr.Sweep = append(rr.Sweep, sweepPoint{Ef: ef, Recall: rec / float64(nq), P50us: p.p50, P99us: p.p99, MeanUs: p.mean,
				CPUP50us: c.p50, CPUP99us: c.p99, CPUMeanUs: c.mean})
			fmt.Fprintf(stdout, "  ef %4d  recall@10 %.4f  wall p50 %7.1fµs p99 %7.1fµs  cpu p50 %7.1fµs p99 %7.1fµs\n", ef, rec/float64(nq), p.p50, p.p99, c.p50, c.p99)
		}
		runtime.UnlockOSThread()
		for _, ef := range concEfs {
			c := concurrent(*clients, nq, func(i int) float64 { return recallOf(ix.Search(q(i), 10, ef, nil), gts["all"][i]) })
			c.Ef = ef
			rr.Concurrent = append(rr.Concurrent, c)
			fmt.Fprintf(stdout, "  %d clients ef %d: %.0f qps, p50 %.1fµs, p99 %.1fµs, recall %.4f, %.1f CPU-µs per query\n", c.Clients, ef, c.QPS, c.P50us, c.P99us, c.Recall, c.CPUPerQueryUs)
		}
		runtime.LockOSThread()
		for _, f := range filters {
			if !phases["filtered"] {
				break
			}
			mod := f.mod
			allow := func(id uint32) bool { return id%mod == 0 }
			lat := make([]time.Duration, nq)
			clat := make([]time.Duration, nq)
			elat := make([]time.Duration, nq)
			var rec, full float64
			for i := range nq {
				t0, c0 := time.Now(), threadCPU()
				res := ix.Search(q(i), 10, *efFilter, allow)
				lat[i], clat[i] = time.Since(t0), threadCPU()-c0
				t0 = time.Now()
				ix.SearchExact(q(i), 10, allow)
				elat[i] = time.Since(t0)
				for _, x := range res {
					if !allow(x.ID) {
						return fmt.Errorf("filter %s returned excluded id %d", f.name, x.ID)
					}
				}
				rc := recallOf(res, gts[f.name][i])
				rec += rc
				if rc == 1 {
					full++
				}
			}
			p, c, e := summarize(lat), summarize(clat), summarize(elat)
			fr := filteredResult{Name: f.name, Selectivity: 1 / float64(mod), Ef: *efFilter, Recall: rec / float64(nq), FullMatch: full / float64(nq),
				P50us: p.p50, P99us: p.p99, CPUP50us: c.p50, CPUP99us: c.p99, ExactP50us: e.p50, ExactP99us: e.p99}
			rr.Filtered = append(rr.Filtered, fr)
			fmt.Fprintf(stdout, "  filter %s (%.0f%%) ef %d: recall %.4f, all top-10 found in %.1f%% of queries, p50 %.1fµs p99 %.1fµs; exact scan p50 %.1fµs p99 %.1fµs\n",
				f.name, 100/float64(mod), *efFilter, fr.Recall, 100*fr.FullMatch, p.p50, p.p99, e.p50, e.p99)
		}
		if *selSweep && r == 0 {
			nsel := min(nq, 200)
			for _, mod := range []uint32{200, 100, 50, 20, 10, 5, 2} {
				allow := func(id uint32) bool { return id%mod == 0 }
				var th, te time.Duration
				var rec float64
				for i := range nsel {
					c0 := threadCPU()
					res := ix.Search(q(i), 10, *efFilter, allow)
					c1 := threadCPU()
					ex := ix.SearchExact(q(i), 10, allow)
					th += c1 - c0
					te += threadCPU() - c1
					rec += recallOf(res, resultIDs(ex))
				}
				sp := selectivityPoint{Selectivity: 1 / float64(mod), Recall: rec / float64(nsel),
					HNSWMeanUs: us(th) / float64(nsel), ExactMeanUs: us(te) / float64(nsel)}
				rr.Selectivities = append(rr.Selectivities, sp)
				fmt.Fprintf(stdout, "  selectivity %5.1f%%: cpu per query: hnsw %.1fµs (recall %.4f), exact %.1fµs\n", 100*sp.Selectivity, sp.HNSWMeanUs, sp.Recall, sp.ExactMeanUs)
			}
		}
		runtime.UnlockOSThread()
		rep.Runs = append(rep.Runs, rr)
	}
	path := *out
	if path == "" {
		path = filepath.Join(*dir, "go.json")
	}
	b, err := json.MarshalIndent(rep, "", " ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}

// concurrent runs clients goroutines that together issue clients*nq/4
// queries (cycling over the query set) and reports throughput, latency
// percentiles and mean recall.
func concurrent(clients, nq int, search func(i int) float64) concurrentResult {
	total := max(clients*nq/4, nq)
	lat := make([]time.Duration, total)
	recs := make([]float64, total)
	var next atomic.Int64
	var wg sync.WaitGroup
	start, cpu0 := time.Now(), processCPU()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Latency is measured per client from its previous answer to
			// this one (a closed loop), so time spent queued behind the
			// other clients counts, as it does for a thread blocked on a
			// busy core in the Python peers.
			last := time.Now()
			for {
				i := int(next.Add(1) - 1)
				if i >= total {
					return
				}
				recs[i] = search(i % nq)
				now := time.Now()
				lat[i], last = now.Sub(last), now
				// A real client waits on the network between requests;
				// yielding keeps one goroutine from running query after
				// query for a whole scheduler slice while the others queue.
				runtime.Gosched()
			}
		}()
	}
	wg.Wait()
	el, cpu := time.Since(start), processCPU()-cpu0
	p := summarize(lat)
	var rec float64
	for _, r := range recs {
		rec += r
	}
	return concurrentResult{Clients: clients, QPS: float64(total) / el.Seconds(), P50us: p.p50, P99us: p.p99, Recall: rec / float64(total),
		CPUPerQueryUs: us(cpu) / float64(total)}
}

func resultIDs(rs []hnsw.Result) []uint32 {
	ids := make([]uint32, len(rs))
	for i, r := range rs {
		ids[i] = r.ID
	}
	return ids
}

func recallOf(got []hnsw.Result, want []uint32) float64 {
	if len(want) == 0 {
		return 1
	}
	hit := 0
	for _, w := range want {
		for _, g := range got {
			if g.ID == w {
				hit++
				break
			}
		}
	}
	return float64(hit) / float64(len(want))
}

type pct struct{ p50, p99, mean float64 }

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func summarize(lat []time.Duration) pct {
	s := slices.Clone(lat)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return pct{p50: us(s[len(s)/2]), p99: us(s[min(len(s)-1, len(s)*99/100)]), mean: us(sum) / float64(len(s))}
}
