package llm

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tributary-rag/tributary/pkg/gguf"
)

// FuzzModel feeds mutated model files through the loader and one forward
// step: a hostile file may be refused, never crash the process.
func FuzzModel(f *testing.F) {
	for _, name := range []string{"llama_gqa_q8_0.gguf", "qwen2_bias_f32.gguf"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		gf, err := gguf.Parse(data)
		if err != nil {
			return
		}
		m, err := newModel(gf, loadOptions{threads: 1})
		if err != nil {
			if m != nil {
				t.Fatalf("newModel returned a model and an error: %v", err)
			}
			return
		}
		cache := newKVCache(m.cfg.Layers)
		_, _ = m.forward([]batchEntry{{cache: cache, token: 1, pos: 0}, {cache: cache, token: 0, pos: 1, wantLogits: true}})
	})
}
