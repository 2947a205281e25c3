package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// synthBPE builds a tiny byte-level vocabulary: ids 0-255 are the 256
// byte-level characters in byte order, then merged tokens, then specials.
func synthBPE(t testing.TB, pre string) *Tokenizer {
	t.Helper()
	bl := newByteLevel()
	var cfg Config
	cfg.Model, cfg.Pre = "gpt2", pre
	for b := 0; b < 256; b++ {
		cfg.Tokens = append(cfg.Tokens, string(bl.toRune[b]))
	}
	// id: 256  257   258     259      260   261   262     263   264   265   266   267
	merged := []string{"he", "ll", "hell", "hello", "Ġw", "or", "Ġwor", "ld", "ab", "bc", "aa", "Ġxyz"}
	cfg.Tokens = append(cfg.Tokens, merged...)
	cfg.Merges = []string{"h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "l d", "a b", "b c", "a a"}
	// Rank order matters: "b c" (9) beats "a b" (8)? No: lower rank wins,
	// so "a b" (8) beats "b c" (9). Swap them to test rank over position.
	cfg.Merges[8], cfg.Merges[9] = "b c", "a b"
	cfg.Tokens = append(cfg.Tokens, "<|endoftext|>", "<|im_start|>", "<|im_end|>") // 268, 269, 270
	cfg.Types = make([]int32, len(cfg.Tokens))
	for i := range cfg.Types {
		cfg.Types[i] = TypeNormal
	}
	for i := 268; i <= 270; i++ {
		cfg.Types[i] = TypeControl
	}
	cfg.BOS, cfg.EOS, cfg.EOT, cfg.Unknown, cfg.Pad = 268, 268, 270, -1, -1
	tok, err := New(cfg)
	if err != nil {
		t.Fatalf("New(synthetic gpt2) error: %v", err)
	}
	return tok
}

func TestBPEEncode(t *testing.T) {
	tests := []struct {
		name string
		pre  string
		text string
		want []int32
	}{
		// h e l l o: "h e" (rank 0), then "l l" (1), "he ll" (2), "hell o" (3).
		// Ġ w o r l d: "Ġ w" (4), "o r" (5), "Ġw or" (6), "l d" (7); no
		// merge makes "Ġworld".
		{"merges by rank", "", "hello world", []int32{259, 262, 263}},
		// "b c" has rank 8 and beats "a b" (rank 9) although it is further right.
		{"lower rank first", "", "abc", []int32{'a', 265}},
		// Equal ranks: the leftmost pair merges first.
		{"leftmost on ties", "", "aaa", []int32{266, 'a'}},
		// é is C3 A9: two byte tokens (ids equal the bytes here).
		{"non-ascii bytes", "", "é", []int32{0xC3, 0xA9}},
		// A space is byte-level 'Ġ' (id 32); with no merge it stays alone.
		{"space only", "", " ", []int32{' '}},
		{"specials", "", "<|im_start|>hello<|im_end|>", []int32{269, 259, 270}},
		{"special inside word", "", "he<|endoftext|>llo", []int32{256, 268, 257, 'o'}},
		// Llama 3 emits a word found whole in the vocabulary without merges.
		{"llama3 ignore merges", "llama-bpe", " xyz", []int32{267}},
		{"gpt2 uses merges", "", " xyz", []int32{' ', 'x', 'y', 'z'}},
		{"empty", "", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := synthBPE(t, tt.pre)
			got := tok.Encode(tt.text, false)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Encode(%q) = %v, want %v", tt.text, got, tt.want)
			}
			want := tt.text
			if got := tok.Decode(tt.want); got != strings.NewReplacer("<|im_start|>", "", "<|im_end|>", "", "<|endoftext|>", "").Replace(want) {
				t.Errorf("Decode(%v) = %q, want %q without control tokens", tt.want, got, want)
			}
		})
	}
}

func TestBPEPieceAndBOS(t *testing.T) {
	tok := synthBPE(t, "")
	if got := string(tok.Piece(260)); got != " w" {
		t.Errorf("Piece(Ġw) = %q, want \" w\"", got)
	}
	if got := string(tok.Piece(0x0A)); got != "\n" {
		t.Errorf("Piece(Ċ) = %q, want newline", got)
	}
	if got := string(tok.Piece(269)); got != "<|im_start|>" {
		t.Errorf("Piece(269) = %q, want <|im_start|>", got)
	}
	if got := tok.Encode("he", true); !slices.Equal(got, []int32{268, 256}) {
		t.Errorf("Encode(he, bos) = %v, want [268 256]", got)
	}
	for id, want := range map[int32]bool{268: true, 270: true, 269: false, 256: false} {
		if got := tok.IsEOG(id); got != want {
			t.Errorf("IsEOG(%d) = %v, want %v", id, got, want)
		}
	}
}

func TestNewErrors(t *testing.T) {
	good := func() Config {
		return Config{Model: "gpt2", Tokens: []string{"a", "b", "ab"}, Merges: []string{"a b"}, BOS: -1, EOS: -1, EOT: -1, Unknown: -1, Pad: -1}
	}
	tests := []struct {
		name   string
		mutate func(*Config)
	}{
		{"empty vocabulary", func(c *Config) { c.Tokens = nil }},
		{"unknown model", func(c *Config) { c.Model = "wordpiece" }},
		{"scores length", func(c *Config) { c.Scores = []float32{1} }},
		{"types length", func(c *Config) { c.Types = []int32{1, 1} }},
		{"bos out of range", func(c *Config) { c.BOS = 3 }},
		{"no merges", func(c *Config) { c.Merges = nil }},
		{"merge without space", func(c *Config) { c.Merges = []string{"ab"} }},
	}
	if _, err := New(good()); err != nil {
		t.Fatalf("New(good) error: %v", err)
	}
	for _, tt := range tests {
		cfg := good()
		tt.mutate(&cfg)
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%s) succeeded, want error", tt.name)
		}
	}
}

func TestPreTokenize(t *testing.T) {
	tests := []struct {
		pre  string
		text string
		want []string
	}{
		{"gpt2", "Hello world", []string{"Hello", " world"}},
		{"gpt2", "I'm don't they're", []string{"I", "'m", " don", "'t", " they", "'re"}},
		{"gpt2", "a  b", []string{"a", " ", " b"}},
		{"gpt2", "hi  \n\nyo", []string{"hi", "  \n", "\n", "yo"}},
		{"gpt2", "123456 abc", []string{"123456", " abc"}},
		{"gpt2", "hello!!! ok", []string{"hello", "!!!", " ok"}},
		{"gpt2", "end   ", []string{"end", "   "}},
		{"gpt2", "日本語 テキスト", []string{"日本語", " テキスト"}},
		{"gpt2", "I'M", []string{"I", "'", "M"}},
		{"llama-bpe", "I'M fine", []string{"I", "'M", " fine"}},
		{"llama-bpe", "1234567", []string{"123", "456", "7"}},
		{"llama-bpe", "abc123def", []string{"abc", "123", "def"}},
		{"llama-bpe", "hello, world!\n\nNext", []string{"hello", ",", " world", "!\n\n", "Next"}},
		{"llama-bpe", "  \n\n  x", []string{"  \n\n", " ", " x"}},
		{"llama-bpe", "$100", []string{"$", "100"}},
		{"llama-bpe", ".hello", []string{".hello"}},
		{"llama-bpe", "日本語 テキスト", []string{"日本語", " テキスト"}},
		{"llama-bpe", "a\tb", []string{"a", "\tb"}},
		{"llama-bpe", "x  ", []string{"x", "  "}},
		{"qwen2", "1234 ab", []string{"1", "2", "3", "4", " ab"}},
		{"qwen2", "you've", []string{"you", "'ve"}},
		{"smollm", "abc123", []string{"abc", "1", "2", "3"}},
		{"smollm", " 12ab", []string{" ", "1", "2", "ab"}},
		{"gpt2", "", nil},
	}
	for _, tt := range tests {
		got := preTokenizerFor(tt.pre).split(tt.text)
		if !slices.Equal(got, tt.want) {
			t.Errorf("split[%s](%q) = %q, want %q", tt.pre, tt.text, got, tt.want)
		}
	}
}

func FuzzPreTokenize(f *testing.F) {
	for _, s := range []string{"Hello world", "I'm 12345 \n\n x", "日本語\r\n", "\xff'S  ", "$1,000.00!!\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, pre := range []string{"gpt2", "llama-bpe", "qwen2", "smollm"} {
			words := preTokenizerFor(pre).split(s)
			for _, w := range words {
				if w == "" {
					t.Fatalf("split[%s](%q) has an empty word: %q", pre, s, words)
				}
			}
			if got := strings.Join(words, ""); got != s {
				t.Fatalf("split[%s](%q) joins to %q", pre, s, got)
			}
		}
	})
}

func FuzzBPERoundTrip(f *testing.F) {
	toks := []*Tokenizer{synthBPE(f, ""), synthBPE(f, "llama-bpe"), synthBPE(f, "qwen2")}
	for _, s := range []string{"", "hello world", "abcaaa", "日本語 \U0001F600", "\xff\x00", "it's 2024\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, tok := range toks {
			ids := tok.Encode(s, false)
			if strings.Contains(s, "<|") {
				continue
			}
			if got := string(tok.DecodeBytes(ids)); got != s {
				t.Fatalf("DecodeBytes(Encode(%q)) = %q (ids %v)", s, got, ids)
			}
			if got := tok.Decode(ids); !utf8.ValidString(got) || (utf8.ValidString(s) && got != s) {
				t.Fatalf("Decode(Encode(%q)) = %q (ids %v)", s, got, ids)
			}
		}
	})
}

// TestPreTokenizeGolden compares the hand-written scanners with the real
// regular expressions, run by Python's regex module in
// tools/tokgolden/pretok_golden.py.
func TestPreTokenizeGolden(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "pretokenize.json"))
	if err != nil {
		t.Fatal(err)
	}
	var tests []struct {
		Pre   string   `json:"pre"`
		Text  string   `json:"text"`
		Words []string `json:"words"`
	}
	if err := json.Unmarshal(data, &tests); err != nil {
		t.Fatal(err)
	}
	if len(tests) < 1000 {
		t.Fatalf("only %d golden splits", len(tests))
	}
	failures := 0
	for _, tt := range tests {
		got := preTokenizerFor(tt.Pre).split(tt.Text)
		if len(got) == 0 && len(tt.Words) == 0 {
			continue
		}
		if !slices.Equal(got, tt.Words) {
			failures++
			if failures <= 20 {
				t.Errorf("split[%s](%q) = %q, want %q", tt.Pre, tt.Text, got, tt.Words)
			}
		}
	}
	if failures > 0 {
		t.Errorf("%d of %d splits differ", failures, len(tests))
	}
}

// TestBPETrainedGolden compares Encode with tools/tokgolden/bpe_golden.py:
// a 418-token byte-level vocabulary trained on a small corpus, encoded by a
// Python port of OpenAI's encoder.py with the real pre-tokenizer
// expressions.
func TestBPETrainedGolden(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "bpe_trained.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Tokens []string `json:"tokens"`
		Types  []int32  `json:"types"`
		Merges []string `json:"merges"`
		Cases  []struct {
			Pre  string  `json:"pre"`
			Text string  `json:"text"`
			IDs  []int32 `json:"ids"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Cases) < 20 || len(g.Merges) < 100 {
		t.Fatalf("golden file too small: %d cases, %d merges", len(g.Cases), len(g.Merges))
	}
	toks := map[string]*Tokenizer{}
	for _, tt := range g.Cases {
		tok := toks[tt.Pre]
		if tok == nil {
			tok, err = New(Config{
				Model: "gpt2", Pre: tt.Pre, Tokens: g.Tokens, Types: g.Types, Merges: g.Merges,
				BOS: int32(len(g.Tokens) - 2), EOS: int32(len(g.Tokens) - 1), EOT: -1, Unknown: -1, Pad: -1,
			})
			if err != nil {
				t.Fatal(err)
			}
			toks[tt.Pre] = tok
		}
		if got := tok.Encode(tt.Text, false); !slices.Equal(got, tt.IDs) {
			t.Errorf("[%s] Encode(%q) = %v, want %v", tt.Pre, tt.Text, got, tt.IDs)
		}
		want := strings.NewReplacer("<|begin_of_text|>", "", "<|eot_id|>", "").Replace(tt.Text)
		if got := tok.Decode(tt.IDs); got != want {
			t.Errorf("[%s] Decode(%v) = %q, want %q", tt.Pre, tt.IDs, got, want)
		}
	}
}
