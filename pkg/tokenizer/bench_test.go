package tokenizer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func benchText(b *testing.B) string {
	b.Helper()
	ref, err := os.ReadFile(filepath.Join("..", "..", "models", "README.md"))
	if err != nil {
		b.Fatal(err)
	}
	return strings.Repeat(string(ref), 4) // about 16 KB of English and markdown
}

func BenchmarkEncodeSPM(b *testing.B) {
	tok := storiesTokenizer(b)
	text := benchText(b)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		tok.Encode(text, true)
	}
}

func BenchmarkEncodeBPELlama3(b *testing.B) {
	tok := synthBPE(b, "llama-bpe")
	text := benchText(b)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		tok.Encode(text, false)
	}
}

func BenchmarkDecodeStream(b *testing.B) {
	tok := storiesTokenizer(b)
	ids := tok.Encode(benchText(b), true)
	b.ResetTimer()
	for b.Loop() {
		d := tok.NewStreamDecoder(-1)
		for _, id := range ids {
			d.Add(id)
		}
		d.Flush()
	}
}
