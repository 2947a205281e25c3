package encoder

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tributary-rag/tributary/pkg/cputime"
)

// benchShapes are the two shapes issue 10 compares with PyTorch, with
// the same synthetic weights (bench/encoder.sh loads the model.safetensors
// written here into PyTorch).
var benchShapes = []struct {
	name string
	cfg  Config
}{
	{"minilm", Config{Hidden: 384, Layers: 6, Heads: 12, Intermediate: 1536, MaxPositions: 512}},
	{"bge-base", Config{Hidden: 768, Layers: 12, Heads: 12, Intermediate: 3072, MaxPositions: 512}},
}

// shapeModel writes the synthetic model of a shape (vocabulary 30,522, seed
// 1) into root/<name>, reusing what an earlier run wrote there.
func shapeModel(root, name string, cfg Config) (string, error) {
	dir := filepath.Join(root, name)
	if _, err := os.Stat(filepath.Join(dir, "model.safetensors")); err == nil {
		return dir, nil
	}
	vocab := make([]string, 30522-4)
	for i := range vocab {
		vocab[i] = fmt.Sprintf("w%d", i)
	}
	return dir, Synthetic{Config: cfg, Vocab: vocab, Seed: 1}.Write(dir)
}

// benchIDs are the token ids both engines run: n sequences of L tokens,
// [CLS] (2) … [SEP] (3) around ids 1000+(7i+13p) mod 29000.
func benchIDs(n, L int) [][]int32 {
	ids := make([][]int32, n)
	for i := range ids {
		s := make([]int32, L)
		for p := range s {
			s[p] = int32(1000 + (7*i+13*p)%29000)
		}
		s[0], s[L-1] = 2, 3
		ids[i] = s
	}
	return ids
}

// BenchmarkShapes times one forward pass (EmbedIDs: no tokenization) of
// a 16-token query and of 32 chunks of 256 tokens, for MiniLM-L6's and
// bge-base's shapes, on 1 and 2 threads. ms/pass is the mean wall time,
// p50-ms the median pass; cpu-ms/pass counts all threads.
// The models go to ENCODER_BENCH_DIR when it is set (and are reused from
// there), else to a temporary directory.
func BenchmarkShapes(b *testing.B) {
	root := os.Getenv("ENCODER_BENCH_DIR")
	if root == "" {
		root = b.TempDir()
	}
	for _, s := range benchShapes {
		var dir string // written by the first case that runs
		for _, c := range []struct {
			name   string
			n, L   int
			thread []int
		}{{"query16", 1, 16, []int{1, 2}}, {"chunk256x32", 32, 256, []int{1, 2}}} {
			for _, threads := range c.thread {
				b.Run(fmt.Sprintf("%s/%s/threads=%d", s.name, c.name, threads), func(b *testing.B) {
					if dir == "" {
						var err error
						if dir, err = shapeModel(root, s.name, s.cfg); err != nil {
							b.Fatal(err)
						}
					}
					e, err := Load(dir, Options{Threads: threads})
					if err != nil {
						b.Fatal(err)
					}
					defer e.Close()
					ids := benchIDs(c.n, c.L)
					ctx := context.Background()
					cpu0 := cputime.Process()
					var passes []time.Duration
					for b.Loop() {
						t0 := time.Now()
						if _, err := e.EmbedIDs(ctx, ids); err != nil {
							b.Fatal(err)
						}
						passes = append(passes, time.Since(t0))
					}
					slices.Sort(passes)
					b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/float64(b.N), "ms/pass")
					b.ReportMetric(float64(passes[len(passes)/2].Microseconds())/1e3, "p50-ms")
					b.ReportMetric(float64((cputime.Process()-cpu0).Microseconds())/1e3/float64(b.N), "cpu-ms/pass")
					b.ReportMetric(0, "ns/op")
				})
			}
		}
	}
}
