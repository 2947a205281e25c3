package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tributary-rag/tributary/pkg/hnsw"
	"github.com/tributary-rag/tributary/pkg/vecmath"
)

// quantPoint is one (ef, oversampling) point of the quantized sweep.
type quantPoint struct {
	Ef           int     `json:"ef"`
	Oversampling float64 `json:"oversampling"`
	Recall       float64 `json:"recall"`
	P50us        float64 `json:"p50_us"`
	P99us        float64 `json:"p99_us"`
	CPUP50us     float64 `json:"cpu_p50_us"`
	CPUP99us     float64 `json:"cpu_p99_us"`
}

type quantReport struct {
	System        string       `json:"system"`
	M             int          `json:"m"`
	EfConstr      int          `json:"ef_construction"`
	Quantile      float64      `json:"quantile"`
	Build         buildInfo    `json:"build"`
	RssAnonPerVec float64      `json:"rss_anon_bytes_per_vector"`
	RssFileAfter  float64      `json:"rss_file_bytes_after_queries"`
	Sweep         []quantPoint `json:"sweep"`
}

// runQuant builds pkg/hnsw with int8 scalar quantization, drops the float32
// vectors from the heap and maps them from base.npy instead (the store's
// on_disk originals), then sweeps ef × oversampling with every candidate
// rescored from the mapping. Memory is the growth of the process's
// anonymous RSS (heap, not file pages) from before the dataset was read to
// after the build with the dataset freed: what the index and the codes
// need in RAM.
func runQuant(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("quant", flag.ContinueOnError)
	dir := fs.String("dir", "out/ann", "dataset directory (from gen)")
	m := fs.Int("m", 16, "HNSW M")
	efc := fs.Int("efc", 200, "HNSW efConstruction")
	quantile := fs.Float64("quantile", 0.99, "scalar quantization quantile")
	efsFlag := fs.String("ef", "16,24,32,48,64,96,128", "ef values to sweep")
	overFlag := fs.String("oversampling", "1,2,3", "oversampling factors to sweep")
	threads := fs.Int("build-threads", 2, "goroutines inserting during the build")
	out := fs.String("out", "", "JSON output (default DIR/quant.json)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	efs, err := parseInts(*efsFlag)
	if err != nil {
		return err
	}
	var overs []float64
	for _, s := range strings.Split(*overFlag, ",") {
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || f < 1 {
			return fmt.Errorf("bad oversampling %q", s)
		}
		overs = append(overs, f)
	}
	debug.FreeOSMemory()
	anon0, _ := rssKinds()
	basePath := filepath.Join(*dir, "base.npy")
	base, n, dim, err := readNPYFloat32(basePath)
	if err != nil {
		return err
	}
	queries, nq, _, err := readNPYFloat32(filepath.Join(*dir, "queries.npy"))
	if err != nil {
		return err
	}
	g, _, cols, err := readNPYInt32(filepath.Join(*dir, "gt_all.npy"))
	if err != nil {
		return err
	}
	gt := make([][]uint32, nq)
	for i := range nq {
		for _, v := range g[i*cols : (i+1)*cols] {
			gt[i] = append(gt[i], uint32(v))
		}
	}
	rep := quantReport{System: "go-hnsw-int8", M: *m, EfConstr: *efc, Quantile: *quantile}
	start, cpu0 := time.Now(), processCPU()
	ix, err := hnsw.New(dim, hnsw.Cosine, hnsw.M(*m), hnsw.EfConstruction(*efc), hnsw.Seed(1), hnsw.ScalarInt8(float32(*quantile)))
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make([]error, *threads)
	for w := range *threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += *threads {
				if err := ix.Add(uint32(i), base[i*dim:(i+1)*dim]); err != nil {
					errs[w] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	bi := buildInfo{Seconds: time.Since(start).Seconds()}
	bi.Rate = float64(n) / bi.Seconds
	bi.CPU = (processCPU() - cpu0).Seconds()
	bi.RatePerCPU = float64(n) / bi.CPU
	bi.BytesPerVec = float64(ix.Stats().Bytes) / float64(n)
	// The originals leave the heap; rescoring reads them from the file.
	base = nil
	runtime.GC()
	debug.FreeOSMemory()
	rows, unmap, err := mapNPYFloat32(basePath, n, dim)
	if err != nil {
		return err
	}
	defer unmap()
	anon1, _ := rssKinds()
	// The queries and the ground truth stay on the heap; subtract them.
	extra := float64(4*len(queries) + 4*len(g) + 4*nq*cols)
	rep.RssAnonPerVec = (float64(anon1-anon0) - extra) / float64(n)
	bi.HeapPerVec = rep.RssAnonPerVec
	rep.Build = bi
	fmt.Fprintf(stdout, "int8 build %.1fs (%.0f vectors/s, %d threads; %.1f CPU-s, %.0f vectors per CPU-s), index %.0f bytes/vector, anonymous RSS +%.0f bytes/vector (float32 originals mapped from %s)\n",
		bi.Seconds, bi.Rate, *threads, bi.CPU, bi.RatePerCPU, bi.BytesPerVec, rep.RssAnonPerVec, filepath.Base(basePath))
	runtime.LockOSThread()
	type cand struct {
		id uint32
		s  float32
	}
	var cs []cand
	for _, over := range overs {
		for _, ef := range efs {
			k := int(math.Ceil(10 * over))
			lat := make([]time.Duration, nq)
			clat := make([]time.Duration, nq)
			var rec float64
			for i := range nq {
				q := queries[i*dim : (i+1)*dim]
				t0, c0 := time.Now(), threadCPU()
				res := ix.Search(q, k, max(ef, k), nil)
				cs = cs[:0]
				for _, r := range res {
					cs = append(cs, cand{r.ID, vecmath.Dot(q, rows[int(r.ID)*dim:(int(r.ID)+1)*dim])})
				}
				slices.SortFunc(cs, func(a, b cand) int {
					switch {
					case a.s > b.s:
						return -1
					case a.s < b.s:
						return 1
					}
					return 0
				})
				cs = cs[:min(10, len(cs))]
				lat[i], clat[i] = time.Since(t0), threadCPU()-c0
				hit := 0
				for _, c := range cs {
					if slices.Contains(gt[i], c.id) {
						hit++
					}
				}
				rec += float64(hit) / float64(len(gt[i]))
			}
			p, c := summarize(lat), summarize(clat)
			pt := quantPoint{Ef: ef, Oversampling: over, Recall: rec / float64(nq), P50us: p.p50, P99us: p.p99, CPUP50us: c.p50, CPUP99us: c.p99}
			rep.Sweep = append(rep.Sweep, pt)
			fmt.Fprintf(stdout, "  oversampling %.0f ef %4d  recall@10 %.4f  wall p50 %7.1fµs p99 %7.1fµs  cpu p50 %7.1fµs p99 %7.1fµs\n",
				over, ef, pt.Recall, p.p50, p.p99, c.p50, c.p99)
		}
	}
	runtime.UnlockOSThread()
	_, file := rssKinds()
	rep.RssFileAfter = float64(file)
	fmt.Fprintf(stdout, "file-backed RSS after the queries: %.1f MB (pages of the originals that rescoring touched; the kernel may drop them)\n", float64(file)/1e6)
	b, err := json.MarshalIndent(rep, "", " ")
	if err != nil {
		return err
	}
	if *out == "" {
		*out = filepath.Join(*dir, "quant.json")
	}
	return os.WriteFile(*out, b, 0o644)
}

// rssKinds returns the process's anonymous and file-backed resident bytes
// (RssAnon, RssFile in /proc/self/status; zero elsewhere).
func rssKinds() (anon, file int64) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(fields[1], 10, 64)
		switch fields[0] {
		case "RssAnon:":
			anon = v << 10
		case "RssFile:":
			file = v << 10
		}
	}
	return anon, file
}

// npyDataOffset returns the byte offset of the data of a version 1 npy file.
func npyDataOffset(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var pre [10]byte
	if _, err := io.ReadFull(f, pre[:]); err != nil {
		return 0, err
	}
	return 10 + int64(binary.LittleEndian.Uint16(pre[8:])), nil
}
