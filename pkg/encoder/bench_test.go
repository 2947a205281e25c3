package encoder

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tributary-rag/tributary/pkg/cputime"
)

// miniLMShaped writes a random model of all-MiniLM-L6-v2's shape (6
// layers, hidden 384, 12 heads, FFN 1536, 512 positions) with the real
// MiniLM tokenizer; with classifier, a cross-encoder of that shape
// (ms-marco-MiniLM-L-6-v2's).
func miniLMShaped(b *testing.B, classifier bool) string {
	b.Helper()
	dir := b.TempDir()
	vocab := make([]string, 30522-4)
	for i := range vocab {
		vocab[i] = fmt.Sprintf("w%d", i)
	}
	s := Synthetic{Config: Config{Hidden: 384, Layers: 6, Heads: 12, Intermediate: 1536, MaxPositions: 512},
		Vocab: vocab, Seed: 1, Normalize: !classifier, Classifier: classifier}
	if err := s.Write(dir); err != nil {
		b.Fatal(err)
	}
	tok, err := os.ReadFile("testdata/minilm-tokenizer.json")
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), tok, 0o644); err != nil {
		b.Fatal(err)
	}
	return dir
}

// BenchmarkEmbed measures sentences per second of a MiniLM-L6-shaped model
// on a 16-token query-like sentence and on 256-token chunks.
func BenchmarkEmbed(b *testing.B) {
	dir := miniLMShaped(b, false)
	sentence := "How frequently should the pump unit be serviced in cold weather?"
	chunk := strings.Repeat("The pump requires maintenance every thirty seven days, more often in winter. ", 20)
	for _, c := range []struct {
		name    string
		text    string
		batch   int
		threads int
		q8      bool
	}{
		{"query16/batch=1/threads=1", sentence, 1, 1, false},
		{"query16/batch=1/threads=2", sentence, 1, 2, false},
		{"query16/batch=32/threads=1", sentence, 32, 1, false},
		{"query16/batch=32/threads=2", sentence, 32, 2, false},
		{"query16/batch=32/threads=2/q8", sentence, 32, 2, true},
		{"chunk256/batch=32/threads=2", chunk, 32, 2, false},
		{"chunk256/batch=32/threads=2/q8", chunk, 32, 2, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			e, err := Load(dir, Options{Threads: c.threads, MaxLength: 256, Quantize: c.q8})
			if err != nil {
				b.Fatal(err)
			}
			texts := make([]string, c.batch)
			for i := range texts {
				texts[i] = c.text
			}
			ctx := context.Background()
			var st Stats
			b.ResetTimer()
			cpu0 := cputime.Process()
			for b.Loop() {
				_, st, err = e.Embed(ctx, texts)
				if err != nil {
					b.Fatal(err)
				}
			}
			// On a shared machine wall time includes waiting for a core;
			// CPU time per sentence is the steadier figure.
			b.ReportMetric(float64(b.N*c.batch)/b.Elapsed().Seconds(), "sentences/s")
			b.ReportMetric(float64((cputime.Process()-cpu0).Microseconds())/float64(b.N*c.batch), "cpu-µs/sentence")
			b.ReportMetric(float64(st.Tokens)/float64(c.batch), "tokens/sentence")
		})
	}
}
