// Command llmbench measures the native LLM engine: it writes synthetic
// Llama GGUF models, measures this machine's memory bandwidth and matmul
// throughput, and times prefill, decode and time to first token at several
// concurrent streams.
//
//	llmbench gen   -out bench/out            # llama110m-f32.gguf, llama110m-q8_0.gguf
//	llmbench bound [-quick]                  # read bandwidth through the kernel, matmul GFLOP/s
//	llmbench run   -model M.gguf -streams 1,8 -prompt 128 -gen 64 -runs 3 [-bw GB/s]
//	llmbench steps -model M.gguf             # forward step at batch 1 and 8, wall and CPU time
//	GOEXPERIMENT=simd llmbench dotsimd       # Go's SIMD experiment on a float dot product
//	llmbench llama2c -model M.gguf           # M as llama2.c checkpoints (run.c fp32, runq.c int8)
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tributary-rag/tributary/pkg/cputime"
	"github.com/tributary-rag/tributary/pkg/gguf"
	"github.com/tributary-rag/tributary/pkg/llm"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "llmbench:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: llmbench gen|bound|run|steps|llama2c|dotsimd [flags]")
	}
	switch args[0] {
	case "gen":
		fs := flag.NewFlagSet("gen", flag.ContinueOnError)
		dir := fs.String("out", filepath.Join("bench", "out"), "output directory")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return gen(*dir, out)
	case "bound":
		fs := flag.NewFlagSet("bound", flag.ContinueOnError)
		threads := fs.Int("threads", runtime.GOMAXPROCS(0), "threads")
		quick := fs.Bool("quick", false, "read bandwidth only")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return bound(*threads, *quick, out)
	case "dotsimd":
		return dotSIMD(out)
	case "llama2c":
		fs := flag.NewFlagSet("llama2c", flag.ContinueOnError)
		model := fs.String("model", filepath.Join("bench", "out", "llama110m-f32.gguf"), "llama GGUF to convert")
		fp32 := fs.String("fp32", filepath.Join("bench", "out", "llama110m.bin"), "run.c checkpoint (legacy fp32) to write")
		q80 := fs.String("q80", filepath.Join("bench", "out", "llama110m-q80.bin"), "runq.c checkpoint (version 2, int8) to write")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return exportLlama2c(*model, *fp32, *q80, out)
	case "steps":
		fs := flag.NewFlagSet("steps", flag.ContinueOnError)
		model := fs.String("model", "", "GGUF model")
		threads := fs.Int("threads", 0, "CPU threads (0: all)")
		profile := fs.String("cpuprofile", "", "write a CPU profile here")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *profile != "" {
			f, err := os.Create(*profile)
			if err != nil {
				return err
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
		return steps(*model, *threads, out)
	case "run":
		fs := flag.NewFlagSet("run", flag.ContinueOnError)
		model := fs.String("model", "", "GGUF model")
		streams := fs.String("streams", "1,8", "comma list of concurrent streams")
		prompt := fs.Int("prompt", 128, "prompt tokens per stream")
		genN := fs.Int("gen", 64, "generated tokens per stream")
		runs := fs.Int("runs", 3, "repetitions")
		bw := fs.Float64("bw", 0, "read bandwidth bound in GB/s (llmbench bound): report decode as a share of it")
		threads := fs.Int("threads", 0, "CPU threads (0: all)")
		profile := fs.String("cpuprofile", "", "write a CPU profile here")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *profile != "" {
			f, err := os.Create(*profile)
			if err != nil {
				return err
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
		var ns []int
		for _, s := range strings.Split(*streams, ",") {
			n, err := strconv.Atoi(s)
			if err != nil || n <= 0 {
				return fmt.Errorf("bad -streams %q", *streams)
			}
			ns = append(ns, n)
		}
		return bench(*model, ns, *prompt, *genN, *runs, *threads, *bw, out)
	}
	return fmt.Errorf("unknown command %q", args[0])
}

// Shape of the synthetic ~110M-parameter Llama (llama2.c's stories110M).
const (
	dim, layers, heads, hidden, vocab = 768, 12, 12, 2048, 32000
)

func gen(dir string, out io.Writer) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(110, 768))
	type mat struct {
		name       string
		rows, cols int
		w          []float32
	}
	var mats []mat
	newMat := func(name string, rows, cols int) {
		w := make([]float32, rows*cols)
		std := 1 / math.Sqrt(float64(cols))
		for i := range w {
			w[i] = float32(rng.NormFloat64() * std)
		}
		mats = append(mats, mat{name, rows, cols, w})
	}
	newMat("token_embd.weight", vocab, dim)
	for l := 0; l < layers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		newMat(p+"attn_q.weight", dim, dim)
		newMat(p+"attn_k.weight", dim, dim)
		newMat(p+"attn_v.weight", dim, dim)
		newMat(p+"attn_output.weight", dim, dim)
		newMat(p+"ffn_gate.weight", hidden, dim)
		newMat(p+"ffn_up.weight", hidden, dim)
		newMat(p+"ffn_down.weight", dim, hidden)
	}
	ones := make([]float32, dim)
	for i := range ones {
		ones[i] = 1
	}
	tokens := make([]string, vocab)
	scores := make([]float32, vocab)
	types := make([]int32, vocab)
	tokens[0], tokens[1], tokens[2] = "<unk>", "<s>", "</s>"
	types[0], types[1], types[2] = 2, 3, 3
	for b := 0; b < 256; b++ {
		tokens[3+b] = fmt.Sprintf("<0x%02X>", b)
		types[3+b] = 6
	}
	for i := 259; i < vocab; i++ {
		tokens[i] = fmt.Sprintf("\u2581w%d", i)
		types[i] = 1
		scores[i] = -float32(i)
	}
	kvs := []gguf.KV{
		{Key: "general.architecture", Value: "llama"},
		{Key: "general.name", Value: "synthetic-llama-110m"},
		{Key: "llama.context_length", Value: uint32(2048)},
		{Key: "llama.embedding_length", Value: uint32(dim)},
		{Key: "llama.block_count", Value: uint32(layers)},
		{Key: "llama.feed_forward_length", Value: uint32(hidden)},
		{Key: "llama.rope.dimension_count", Value: uint32(dim / heads)},
		{Key: "llama.attention.head_count", Value: uint32(heads)},
		{Key: "llama.attention.head_count_kv", Value: uint32(heads)},
		{Key: "llama.attention.layer_norm_rms_epsilon", Value: float32(1e-5)},
		{Key: "tokenizer.ggml.model", Value: "llama"},
		{Key: "tokenizer.ggml.tokens", Value: gguf.Array{Elem: gguf.TypeString, Values: tokens}},
		{Key: "tokenizer.ggml.scores", Value: gguf.Array{Elem: gguf.TypeFloat32, Values: scores}},
		{Key: "tokenizer.ggml.token_type", Value: gguf.Array{Elem: gguf.TypeInt32, Values: types}},
		{Key: "tokenizer.ggml.bos_token_id", Value: uint32(1)},
		{Key: "tokenizer.ggml.eos_token_id", Value: uint32(2)},
	}
	for _, typ := range []gguf.TensorType{gguf.F32, gguf.Q8_0} {
		var ts []gguf.WriteTensor
		for _, m := range mats {
			var data []byte
			if typ == gguf.F32 {
				data = gguf.EncodeF32(m.w)
			} else {
				data = gguf.QuantizeQ8_0(m.w)
			}
			ts = append(ts, gguf.WriteTensor{Name: m.name, Dims: []uint64{uint64(m.cols), uint64(m.rows)}, Type: typ, Data: data})
		}
		for l := 0; l < layers; l++ {
			p := fmt.Sprintf("blk.%d.", l)
			ts = append(ts,
				gguf.WriteTensor{Name: p + "attn_norm.weight", Dims: []uint64{dim}, Type: gguf.F32, Data: gguf.EncodeF32(ones)},
				gguf.WriteTensor{Name: p + "ffn_norm.weight", Dims: []uint64{dim}, Type: gguf.F32, Data: gguf.EncodeF32(ones)})
		}
		ts = append(ts, gguf.WriteTensor{Name: "output_norm.weight", Dims: []uint64{dim}, Type: gguf.F32, Data: gguf.EncodeF32(ones)})
		path := filepath.Join(dir, "llama110m-"+strings.ToLower(typ.String())+".gguf")
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := gguf.Write(f, kvs, ts); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		st, _ := os.Stat(path)
		fmt.Fprintf(out, "wrote %s (%d bytes)\n", path, st.Size())
	}
	return nil
}

// bound measures read bandwidth (the decode bound) and the matmul
// throughput of the CPU backend at batch sizes 1 to 64.
func bound(threads int, quick bool, out io.Writer) error {
	// Decoding streams every weight once per token; the bound is how fast
	// this machine's cores can read memory that way. It is measured with
	// the engine's own batch-1 F32 kernel (eight rows per pass, both
	// threads) over a 1 GiB matrix, which reads as fast as a vectorized C
	// OpenMP sum (bench/llama2c/bwsum.c); a scalar Go sum reads slower and
	// set the bound too low.
	const rows, cols = 1 << 18, 1024
	w, err := llm.NewWeight("big", gguf.F32, rows, cols, gguf.EncodeF32(make([]float32, rows*cols)))
	if err != nil {
		return err
	}
	cpu := llm.NewCPU(threads)
	defer cpu.Close()
	x := make([]float32, cols)
	o := make([]float32, rows)
	var bestK float64
	for rep := 0; rep < 5; rep++ {
		start := time.Now()
		cpu.MatMul(o, w, x, 1)
		bestK = max(bestK, float64(rows*cols*4)/time.Since(start).Seconds()/1e9)
	}
	fmt.Fprintf(out, "read bandwidth (engine F32 kernel, batch 1 over 1 GiB, %d threads, best of 5): %.2f GB/s\n", cpu.Threads(), bestK)
	if quick {
		return nil
	}
	var bestCopy float64
	src := w.F32
	dst := make([]float32, len(src))
	for rep := 0; rep < 3; rep++ {
		start := time.Now()
		copy(dst, src)
		bestCopy = max(bestCopy, float64(2*len(src)*4)/time.Since(start).Seconds()/1e9)
	}
	fmt.Fprintf(out, "copy bandwidth (1 GiB, read+write bytes, one goroutine, best of 3): %.2f GB/s\n", bestCopy)

	vals := make([]float32, hidden*dim)
	for i := range vals {
		vals[i] = float32(i%7)*0.01 - 0.03
	}
	wf, err := llm.NewWeight("w", gguf.F32, hidden, dim, gguf.EncodeF32(vals))
	if err != nil {
		return err
	}
	wq, err := llm.NewWeight("w", gguf.Q8_0, hidden, dim, gguf.QuantizeQ8_0(vals))
	if err != nil {
		return err
	}
	for _, w := range []*llm.Weight{wf, wq} {
		for _, simd := range []bool{true, false} {
			cpu := llm.NewCPU(threads)
			if !simd {
				cpu = llm.NewPortableCPU(threads)
			}
			for _, bsz := range []int{1, 8, 64} {
				x := make([]float32, bsz*dim)
				for i := range x {
					x[i] = float32(i%5) * 0.1
				}
				o := make([]float32, bsz*hidden)
				iters := max(3, 256/bsz)
				var bestG float64
				for rep := 0; rep < 3; rep++ {
					start := time.Now()
					for i := 0; i < iters; i++ {
						cpu.MatMul(o, w, x, bsz)
					}
					el := time.Since(start).Seconds()
					bestG = max(bestG, 2*float64(hidden*dim*bsz*iters)/el/1e9)
				}
				fmt.Fprintf(out, "%s matmul %dx%d × batch %d (assembly %v): %.1f GFLOP/s\n", w.Type, hidden, dim, bsz, cpu.SIMD(), bestG)
			}
		}
	}
	return nil
}

type sample struct {
	ttft     []time.Duration
	prefill  float64 // prompt tokens/s (all streams)
	decode   float64 // generated tokens/s after the first token (all streams)
	duration time.Duration
	cpu      time.Duration // process CPU time of the run
}

func bench(path string, streams []int, promptN, genN, runs, threads int, bw float64, out io.Writer) error {
	m, err := llm.Load(path, llm.WithThreads(threads))
	if err != nil {
		return err
	}
	defer m.Close()
	cfg := m.Config()
	var weightBytes int64
	for _, w := range m.Weights() {
		weightBytes += int64(len(w.Data))
	}
	fmt.Fprintf(out, "model %s: %s, %d layers, dim %d, vocab %d, weight bytes read per decode step %.1f MB\n",
		filepath.Base(path), m.Name(), cfg.Layers, cfg.Dim, cfg.Vocab, float64(weightBytes)/1e6)
	for _, ns := range streams {
		var samples []sample
		for r := 0; r < runs; r++ {
			s, err := once(m, ns, promptN, genN, uint64(r))
			if err != nil {
				return err
			}
			samples = append(samples, s)
		}
		med := func(f func(sample) float64) (float64, float64) {
			v := make([]float64, len(samples))
			for i, s := range samples {
				v[i] = f(s)
			}
			slices.Sort(v)
			return v[0], v[len(v)/2]
		}
		dMin, dMed := med(func(s sample) float64 { return s.decode })
		pMin, pMed := med(func(s sample) float64 { return s.prefill })
		tMin, tMed := med(func(s sample) float64 {
			var worst time.Duration
			for _, t := range s.ttft {
				worst = max(worst, t)
			}
			return float64(worst.Milliseconds())
		})
		cMin, cMed := med(func(s sample) float64 { return s.cpu.Seconds() / s.duration.Seconds() })
		fmt.Fprintf(out, "streams %d: decode %.1f tok/s (min %.1f), per stream %.1f; prefill %.0f tok/s (min %.0f); TTFT (slowest stream) %.0f ms (min %.0f); CPU/wall %.2f (min %.2f); runs %d, prompt %d, gen %d\n",
			ns, dMed, dMin, dMed/float64(ns), pMed, pMin, tMed, tMin, cMed, cMin, runs, promptN, genN)
		if bw > 0 && ns == 1 {
			// One stream reads every weight once per token.
			gbs := dMed * float64(weightBytes) / 1e9
			fmt.Fprintf(out, "  weights streamed at %.2f GB/s (median) = %.0f%% of the %.2f GB/s bound (%.1f tok/s)\n",
				gbs, 100*gbs/bw, bw, bw*1e9/float64(weightBytes))
		}
	}
	return nil
}

func once(m *llm.Model, streams, promptN, genN int, seed uint64) (sample, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := llm.NewEngine(m, llm.WithMaxBatch(streams), llm.WithMaxQueue(streams), llm.WithContextSize(promptN+genN+8), llm.WithStepTokens(512))
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	defer func() { cancel(); <-done }()
	rng := rand.New(rand.NewPCG(seed, 1))
	vocab := m.Config().Vocab
	var s sample
	s.ttft = make([]time.Duration, streams)
	times := make([][]time.Time, streams)
	errs := make([]error, streams)
	start := time.Now()
	cpu0 := cputime.Process()
	var wg sync.WaitGroup
	for i := 0; i < streams; i++ {
		prompt := make([]int32, promptN)
		prompt[0] = 1
		for j := 1; j < promptN; j++ {
			prompt[j] = int32(3 + rng.IntN(vocab-3))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := e.Generate(ctx, llm.Request{Prompt: prompt, MaxTokens: genN, Sampling: llm.Sampling{Temperature: 0}},
				func(t llm.Token) error {
					times[i] = append(times[i], time.Now())
					return nil
				})
			s.ttft[i] = res.TimeToFirstToken
			errs[i] = err
		}()
	}
	wg.Wait()
	s.duration = time.Since(start)
	s.cpu = cputime.Process() - cpu0
	// Decode rate: tokens produced after every stream has its first token
	// (all prompts prefilled), over that interval.
	var lastFirst, lastEnd time.Time
	for i := 0; i < streams; i++ {
		if errs[i] != nil {
			return s, errs[i]
		}
		if len(times[i]) < 2 {
			return s, fmt.Errorf("stream %d produced %d tokens", i, len(times[i]))
		}
		if times[i][0].After(lastFirst) {
			lastFirst = times[i][0]
		}
		if end := times[i][len(times[i])-1]; end.After(lastEnd) {
			lastEnd = end
		}
	}
	total := 0
	for i := 0; i < streams; i++ {
		for _, t := range times[i] {
			if t.After(lastFirst) {
				total++
			}
		}
	}
	s.prefill = float64(streams*promptN) / lastFirst.Sub(start).Seconds()
	s.decode = float64(total) / lastEnd.Sub(lastFirst).Seconds()
	return s, nil
}

// steps times decode steps of the engine at batch 1 and 8, in wall time
// and in process CPU time (user+system), which stays meaningful when other
// processes compete for the cores.
func steps(path string, threads int, out io.Writer) error {
	m, err := llm.Load(path, llm.WithThreads(threads))
	if err != nil {
		return err
	}
	defer m.Close()
	for _, n := range []int{1, 8} {
		wall, cpu, err := llm.TimeDecodeSteps(m, n, 64, 16)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "batch %d: %.1f ms/step wall (%.1f tok/s), %.1f ms/step CPU (%.1f tok/s per CPU-second)\n",
			n, wall.Seconds()*1e3, float64(n)/wall.Seconds(), cpu.Seconds()*1e3, float64(n)/cpu.Seconds())
	}
	return nil
}

// dotSIMD times a 768-element float dot product written with Go's SIMD
// experiment (when built with GOEXPERIMENT=simd) and in plain Go.
func dotSIMD(out io.Writer) error {
	const n, iters = 768, 200000
	a := make([]float32, n)
	b := make([]float32, n)
	for i := range a {
		a[i], b[i] = float32(i%13)*0.1, float32(i%7)*0.2
	}
	plain := func(a, b []float32) (float32, bool) {
		var s0, s1, s2, s3 float32
		for i := 0; i+4 <= len(a); i += 4 {
			s0 += a[i] * b[i]
			s1 += a[i+1] * b[i+1]
			s2 += a[i+2] * b[i+2]
			s3 += a[i+3] * b[i+3]
		}
		return s0 + s1 + s2 + s3, true
	}
	// The CPU backend's kernel on a 1-row matrix: the same dot product
	// plus the backend's dispatch.
	w, err := llm.NewWeight("row", gguf.F32, 1, n, gguf.EncodeF32(a))
	if err != nil {
		return err
	}
	cpu := llm.NewCPU(1)
	var o [1]float32
	backend := func(_, b []float32) (float32, bool) {
		cpu.MatMul(o[:], w, b, 1)
		return o[0], true
	}
	for _, k := range []struct {
		name string
		f    func(a, b []float32) (float32, bool)
	}{{"archsimd", archsimdDot}, {"plain Go", plain}, {fmt.Sprintf("llm CPU backend (assembly %v)", cpu.SIMD()), backend}} {
		if _, ok := k.f(a, b); !ok {
			fmt.Fprintf(out, "%s: not built (use GOEXPERIMENT=simd on amd64)\n", k.name)
			continue
		}
		best := time.Duration(math.MaxInt64)
		var sink float32
		for rep := 0; rep < 5; rep++ {
			start := time.Now()
			for i := 0; i < iters; i++ {
				s, _ := k.f(a, b)
				sink += s
			}
			best = min(best, time.Since(start))
		}
		fmt.Fprintf(out, "%s: %.2f GFLOP/s (768-element dot in L1, best of 5; checksum %.0f)\n", k.name, 2*n*iters/best.Seconds()/1e9, sink/1e6)
	}
	return nil
}
