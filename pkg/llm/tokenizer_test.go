package llm

import (
	"path/filepath"
	"testing"

	"github.com/tributary-rag/tributary/pkg/gguf"
)

func TestTokenizerConfig(t *testing.T) {
	tests := []struct {
		path             string
		model            string
		vocab            int
		bos, eos         int32
		addBOS, addSpace bool
		merges           int
	}{
		{storiesPath, "llama", 512, 1, 2, true, true, 0},
		{filepath.Join("testdata", "qwen2_bias_f32.gguf"), "gpt2", 300, 256, 258, false, false, 2},
	}
	for _, tt := range tests {
		f, err := gguf.Open(tt.path)
		if err != nil {
			t.Fatal(err)
		}
		c, err := TokenizerConfig(f)
		_ = f.Close()
		if err != nil {
			t.Fatalf("TokenizerConfig(%s): %v", tt.path, err)
		}
		if c.Model != tt.model || len(c.Tokens) != tt.vocab || c.BOS != tt.bos || c.EOS != tt.eos ||
			c.AddBOS != tt.addBOS || c.AddSpacePrefix != tt.addSpace || len(c.Merges) != tt.merges || c.EOT != -1 {
			t.Errorf("TokenizerConfig(%s) = model %q, %d tokens, bos %d, eos %d, eot %d, addBOS %v, space %v, %d merges",
				tt.path, c.Model, len(c.Tokens), c.BOS, c.EOS, c.EOT, c.AddBOS, c.AddSpacePrefix, len(c.Merges))
		}
	}
}

func TestStoriesTokenizerRoundTrip(t *testing.T) {
	m := loadStories(t)
	tok := m.Tokenizer()
	ids := tok.Encode("Once upon a time", true)
	if len(ids) < 2 || ids[0] != 1 {
		t.Fatalf("Encode = %v, want BOS first", ids)
	}
	if got := tok.Decode(ids); got != "Once upon a time" {
		t.Errorf("Decode(Encode(x)) = %q", got)
	}
	// The engine's own piece table agrees with the tokenizer's pieces for
	// ordinary tokens.
	for id := int32(3); id < 512; id++ {
		if string(m.vocab.piece(id)) != string(tok.Piece(id)) {
			t.Errorf("piece %d: engine %q, tokenizer %q", id, m.vocab.piece(id), tok.Piece(id))
		}
	}
}
