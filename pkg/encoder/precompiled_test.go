package encoder

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tributary-rag/tributary/pkg/gguf"
)

// precompiledGolden is one of the files tools/tokgolden/precompiled_golden.py
// writes from SentencePiece itself: a model in Hugging Face's layout and
// SentencePiece's normalized text and ids for hostile inputs.
type precompiledGolden struct {
	tokenizer []byte // tokenizer.json
	charsmap  []byte
	Rule      string `json:"rule"`
	Cases     []struct {
		Text       *string  `json:"text"`
		Hex        string   `json:"hex"`
		Normalized string   `json:"normalized"`
		Pieces     []string `json:"pieces"`
		IDs        []int32  `json:"ids"`
	} `json:"cases"`
}

func loadPrecompiledGolden(t testing.TB, name string) *precompiledGolden {
	t.Helper()
	var g precompiledGolden
	b, err := os.ReadFile("testdata/precompiled/" + name + ".golden.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("testdata/precompiled/" + name + ".tokenizer.json.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	if g.tokenizer, err = io.ReadAll(zr); err != nil {
		t.Fatal(err)
	}
	var tj struct {
		Normalizer struct {
			Normalizers []struct {
				Type     string `json:"type"`
				Charsmap string `json:"precompiled_charsmap"`
			} `json:"normalizers"`
		} `json:"normalizer"`
	}
	if err := json.Unmarshal(g.tokenizer, &tj); err != nil {
		t.Fatal(err)
	}
	if len(tj.Normalizer.Normalizers) == 0 || tj.Normalizer.Normalizers[0].Type != "Precompiled" {
		t.Fatalf("%s: the normalizer does not start with Precompiled", name)
	}
	if g.charsmap, err = base64.StdEncoding.DecodeString(tj.Normalizer.Normalizers[0].Charsmap); err != nil {
		t.Fatal(err)
	}
	if len(g.Cases) < 40 {
		t.Fatalf("%s: %d cases", name, len(g.Cases))
	}
	for i, c := range g.Cases {
		if c.Text == nil {
			h, err := hex.DecodeString(c.Hex)
			if err != nil {
				t.Fatal(err)
			}
			s := string(h)
			g.Cases[i].Text = &s
		}
	}
	return &g
}

// The rules: nmt_nfkc, the rule of XLM-RoBERTa, multilingual-e5 and
// bge-m3; and a hand-written TSV with nested keys, a deletion, expansions
// and a contraction.
var precompiledRules = []string{"nmt_nfkc", "rules"}

func TestPrecompiledMatchesSentencePiece(t *testing.T) {
	for _, name := range precompiledRules {
		t.Run(name, func(t *testing.T) {
			g := loadPrecompiledGolden(t, name)
			p, err := parsePrecompiled(g.charsmap)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range g.Cases {
				if got := p.normalize(*c.Text); got != c.Normalized {
					t.Errorf("normalize(%+.60q) = %+.60q, want %+.60q", *c.Text, got, c.Normalized)
				}
			}
		})
	}
}

// TestPrecompiledGGUFMatchesSentencePiece checks whole encodings: a GGUF
// holds SentencePiece's own normalizer spec, which the loader applies as
// SentencePiece does, so its ids must be SentencePiece's.
func TestPrecompiledGGUFMatchesSentencePiece(t *testing.T) {
	for _, name := range precompiledRules {
		t.Run(name, func(t *testing.T) {
			g := loadPrecompiledGolden(t, name)
			u := sentencePieceGGUF(t, g)
			for _, c := range g.Cases {
				ids, _ := u.Encode(*c.Text, 0)
				if got := ids[1 : len(ids)-1]; !slices.Equal(got, c.IDs) {
					t.Errorf("Encode(%+.60q) = %v\nwant %v (%q)", *c.Text, got, c.IDs, c.Pieces)
				}
			}
		})
	}
}

// sentencePieceGGUF builds the Unigram of a GGUF holding the golden model
// in SentencePiece's order (<unk> <s> </s>, then the pieces), as
// tokenizer.ggml keys.
func sentencePieceGGUF(t *testing.T, g *precompiledGolden) *Unigram {
	t.Helper()
	var tj struct {
		Model struct {
			Vocab [][]json.RawMessage `json:"vocab"`
		} `json:"model"`
	}
	if err := json.Unmarshal(g.tokenizer, &tj); err != nil {
		t.Fatal(err)
	}
	// Hugging Face's <s> <pad> </s> <unk> first and <mask> last are
	// SentencePiece's <unk> <s> </s>.
	tokens := []string{"<unk>", "<s>", "</s>"}
	scores := []float32{0, 0, 0}
	types := []int32{ggufTokenUnknown, ggufTokenControl, ggufTokenControl}
	for _, e := range tj.Model.Vocab[4 : len(tj.Model.Vocab)-1] {
		var piece string
		var score float32
		if err := json.Unmarshal(e[0], &piece); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(e[1], &score); err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, piece)
		scores = append(scores, score)
		types = append(types, 1)
	}
	var buf bytes.Buffer
	err := gguf.Write(&buf, []gguf.KV{
		{Key: "tokenizer.ggml.model", Value: "t5"},
		{Key: "tokenizer.ggml.tokens", Value: gguf.Array{Elem: gguf.TypeString, Values: tokens}},
		{Key: "tokenizer.ggml.scores", Value: gguf.Array{Elem: gguf.TypeFloat32, Values: scores}},
		{Key: "tokenizer.ggml.token_type", Value: gguf.Array{Elem: gguf.TypeInt32, Values: types}},
		{Key: "tokenizer.ggml.add_space_prefix", Value: true},
		{Key: "tokenizer.ggml.remove_extra_whitespaces", Value: true},
		{Key: "tokenizer.ggml.precompiled_charsmap", Value: gguf.Array{Elem: gguf.TypeUint8, Values: g.charsmap}},
		{Key: "tokenizer.ggml.bos_token_id", Value: uint32(1)},
		{Key: "tokenizer.ggml.eos_token_id", Value: uint32(2)},
		{Key: "tokenizer.ggml.unknown_token_id", Value: uint32(0)},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	u, err := unigramFromGGUF(f, tokens)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestPrecompiledTokenizerJSON encodes the goldens through tokenizer.json
// in the layout transformers' SpmConverter writes (Precompiled, Strip
// right, Replace " {2,}" by "▁", Metaspace), which lands on SentencePiece's
// ids for all these cases: its ids are SentencePiece's plus one past
// </s> (<pad> is inserted), and <unk> is 3.
func TestPrecompiledTokenizerJSON(t *testing.T) {
	for _, name := range precompiledRules {
		t.Run(name, func(t *testing.T) {
			g := loadPrecompiledGolden(t, name)
			u, err := ParseUnigram(g.tokenizer)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range g.Cases {
				want := make([]int32, len(c.IDs))
				for i, id := range c.IDs {
					want[i] = id + 1
					if id == 0 {
						want[i] = 3
					}
				}
				ids, _ := u.Encode(*c.Text, 0)
				if got := ids[1 : len(ids)-1]; !slices.Equal(got, want) {
					t.Errorf("Encode(%+.60q) = %v\nwant %v (%q)", *c.Text, got, want, c.Pieces)
				}
			}
		})
	}
}

// tinyCharsmap is a charsmap built by hand: one key, "a", replaced by
// repl; the caller may break it.
func tinyCharsmap(units map[int]uint32, strings string) []byte {
	n := 0
	for i := range units {
		n = max(n, i+1)
	}
	b := binary.LittleEndian.AppendUint32(nil, uint32(4*n))
	for i := range n {
		b = binary.LittleEndian.AppendUint32(b, units[i])
	}
	return append(b, strings...)
}

// tinyUnits is the trie of the one key "a" (0x61): the root's offset 1,
// its child at 1^0x61 = 96 with a leaf, whose value unit is at 96^1 = 97.
func tinyUnits(value uint32) map[int]uint32 {
	return map[int]uint32{0: 1 << 10, 96: 0x61 | 1<<8 | 1<<10, 97: 1<<31 | value}
}

func TestPrecompiledByHand(t *testing.T) {
	p, err := parsePrecompiled(tinyCharsmap(tinyUnits(2), "x\x00bc\x00"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"a", "bc"},
		{"xay\x00a", "xbcy\x00bc"},
		{"\xffa\xe2\x82", "\uFFFDbc\uFFFD\uFFFD"},
		{"\uFFFD", "\uFFFD"}, // a valid U+FFFD is a character like any other
	} {
		if got := p.normalize(c.in); got != c.want {
			t.Errorf("normalize(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	spm := sentencePieceNormalize(p, true, true)
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"   ", ""},
		{" a  b ", "▁bc▁b"},
		{"a▁", "▁bc"}, // trailing "▁" go, the text's own too
		{"▁a", "▁▁bc"},
	} {
		if got := spm(c.in); got != c.want {
			t.Errorf("sentencePieceNormalize(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := sentencePieceNormalize(nil, false, false)(" a  "); got != "▁a▁▁" {
		t.Errorf("without a map, prefix or space removal: %q", got)
	}
}

func TestParsePrecompiledErrors(t *testing.T) {
	loop := tinyUnits(0)
	loop[96] = 0x61 | 97<<10 // no leaf; its child is the root again (96^97 = 1)
	for _, c := range []struct {
		name string
		blob []byte
		want string
	}{
		{"short", []byte{1, 0}, "too short"},
		{"empty trie", []byte{0, 0, 0, 0, 'x', 0}, "empty trie"},
		{"odd size", []byte{6, 0, 0, 0, 1, 2, 3, 4, 5, 6, 0}, "not whole uint32 units"},
		{"trie past the end", tinyCharsmap(tinyUnits(0), "b\x00")[:300], "runs past the end"},
		{"huge trie size", []byte{0xFC, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0}, "runs past the end"},
		{"offset out of range", tinyCharsmap(tinyUnits(9), "b\x00"), "outside the 2 bytes"},
		{"no strings", tinyCharsmap(tinyUnits(0), ""), "outside the 0 bytes"},
		{"no NUL", tinyCharsmap(tinyUnits(0), "bc"), "no NUL terminator"},
		{"leaf outside", tinyCharsmap(map[int]uint32{0: 1 << 10, 96: 0x61 | 1<<8 | 4000<<10}, "b\x00"), "outside the trie"},
		{"loop without a leaf", tinyCharsmap(loop, "b\x00"), ""},
	} {
		p, err := parsePrecompiled(c.blob)
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			} else if got := p.normalize("aaaa"); got != "aaaa" {
				t.Errorf("%s: normalize = %q", c.name, got)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
	}
	// Through both loaders.
	j := `{"normalizer":{"type":"Precompiled","precompiled_charsmap":"` + base64.StdEncoding.EncodeToString(tinyCharsmap(tinyUnits(0), "bc")) + `"},"model":{"type":"Unigram","unk_id":0,"vocab":[["a",0]]}}`
	if _, err := ParseUnigram([]byte(j)); err == nil || !strings.Contains(err.Error(), "normalizer: Precompiled: replacement at offset 0 has no NUL") {
		t.Errorf("tokenizer.json: err = %v", err)
	}
	j = `{"normalizer":{"type":"Precompiled","precompiled_charsmap":"%%%"},"model":{"type":"Unigram","unk_id":0,"vocab":[["a",0]]}}`
	if _, err := ParseUnigram([]byte(j)); err == nil || !strings.Contains(err.Error(), "precompiled_charsmap: illegal base64") {
		t.Errorf("tokenizer.json, not base64: err = %v", err)
	}
}

// FuzzPrecompiled feeds the charsmap decoder hostile maps and the
// normalizer hostile text: an error or a map, never a panic, and valid
// UTF-8 out.
func FuzzPrecompiled(f *testing.F) {
	g := loadPrecompiledGolden(f, "rules")
	f.Add(g.charsmap, "ABCDABC ß\xff e\u0301")
	f.Add(g.charsmap[:len(g.charsmap)-1], "A")
	f.Add(g.charsmap[:600], "A")
	f.Add(tinyCharsmap(tinyUnits(0), "b\x00"), "aa a\x00a")
	f.Add(tinyCharsmap(tinyUnits(7), "b\x00"), "a")
	f.Add([]byte{0, 0, 0, 0}, "")
	f.Add([]byte{0xFC, 0xFF, 0xFF, 0xFF, 1}, "")
	f.Fuzz(func(t *testing.T, blob []byte, text string) {
		p, err := parsePrecompiled(blob)
		if err != nil {
			if p != nil {
				t.Fatalf("a map and the error %v", err)
			}
			return
		}
		if out := p.normalize(text); !utf8.ValidString(out) {
			t.Fatalf("normalize(%q) = %q, not UTF-8", text, out)
		}
		out := sentencePieceNormalize(p, true, true)(text)
		if !utf8.ValidString(out) || strings.Contains(out, " ") || strings.HasSuffix(out, "▁") {
			t.Fatalf("sentencePieceNormalize(%q) = %q", text, out)
		}
	})
}
