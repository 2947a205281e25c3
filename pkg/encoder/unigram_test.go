package encoder

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func unigramTokenizer(t testing.TB) *Unigram {
	t.Helper()
	tok, err := LoadTokenizer("testdata/unigram-tokenizer.json")
	if err != nil {
		t.Fatal(err)
	}
	return tok.(*Unigram)
}

// The goldens come from tools/encgolden/unigram_golden.py, a plain-Python
// reference checked there against SentencePiece itself.
func TestUnigramMatchesReference(t *testing.T) {
	tok := unigramTokenizer(t)
	b, err := os.ReadFile("testdata/unigram-golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Cases []struct {
			Text   string  `json:"text"`
			IDs    []int32 `json:"ids"`
			MaxLen int     `json:"max_len"`
			CutIDs []int32 `json:"cut_ids"`
			Cut    bool    `json:"cut"`
		} `json:"cases"`
		Pairs []struct {
			A, B   string
			IDs    []int32 `json:"ids"`
			MaxLen int     `json:"max_len"`
			CutIDs []int32 `json:"cut_ids"`
			Cut    bool    `json:"cut"`
		} `json:"pairs"`
	}
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Cases) < 15 || len(g.Pairs) < 3 {
		t.Fatalf("golden file holds %d cases, %d pairs", len(g.Cases), len(g.Pairs))
	}
	for _, c := range g.Cases {
		if ids, cut := tok.Encode(c.Text, 0); !slices.Equal(ids, c.IDs) || cut {
			t.Errorf("Encode(%.40q) = %v (cut %v)\nwant %v", c.Text, ids, cut, c.IDs)
		}
		if ids, cut := tok.Encode(c.Text, c.MaxLen); !slices.Equal(ids, c.CutIDs) || cut != c.Cut {
			t.Errorf("Encode(%.40q, %d) = %v (cut %v)\nwant %v (cut %v)", c.Text, c.MaxLen, ids, cut, c.CutIDs, c.Cut)
		}
	}
	for _, p := range g.Pairs {
		ids, types, cut := tok.EncodePair(p.A, p.B, 0)
		if !slices.Equal(ids, p.IDs) || cut || len(types) != len(ids) || slices.Max(types) != 0 {
			t.Errorf("EncodePair(%.20q, %.20q) = %v (cut %v)\nwant %v", p.A, p.B, ids, cut, p.IDs)
		}
		ids, _, cut = tok.EncodePair(p.A, p.B, p.MaxLen)
		if !slices.Equal(ids, p.CutIDs) || cut != p.Cut {
			t.Errorf("EncodePair(%.20q, %.20q, %d) = %v (cut %v)\nwant %v (cut %v)", p.A, p.B, p.MaxLen, ids, cut, p.CutIDs, p.Cut)
		}
	}
}

// tinyUnigram builds a tokenizer.json around pieces (ids from 4, after
// <s> <pad> </s> <unk>) and the given normalizer and pre-tokenizer.
func tinyUnigram(t testing.TB, pieces map[string]float64, normalizer, preTokenizer string, byteFallback bool) *Unigram {
	t.Helper()
	vocab := [][]any{{"<s>", 0}, {"<pad>", 0}, {"</s>", 0}, {"<unk>", 0}}
	names := make([]string, 0, len(pieces))
	for p := range pieces {
		names = append(names, p)
	}
	slices.Sort(names)
	for _, p := range names {
		vocab = append(vocab, []any{p, pieces[p]})
	}
	vb, _ := json.Marshal(vocab)
	j := `{"added_tokens":[{"id":0,"content":"<s>","special":true},{"id":2,"content":"</s>","special":true}],
		"normalizer":` + normalizer + `,"pre_tokenizer":` + preTokenizer + `,
		"post_processor":{"type":"RobertaProcessing","sep":["</s>",2],"cls":["<s>",0]},
		"model":{"type":"Unigram","unk_id":3,"byte_fallback":` + map[bool]string{true: "true", false: "false"}[byteFallback] + `,"vocab":` + string(vb) + `}}`
	u, err := ParseUnigram([]byte(j))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func pieceNames(u *Unigram, ids []int32) string {
	inv := map[int32]string{u.unk: "<unk>"}
	for p, id := range u.pieces {
		inv[id] = p
	}
	var out []string
	for _, id := range ids {
		out = append(out, inv[id])
	}
	return strings.Join(out, " ")
}

func TestUnigramViterbi(t *testing.T) {
	pieces := map[string]float64{"▁": -2, "▁a": -1, "b": -3, "▁ab": -3.5, "ab": -1, "c": -2, "▁c": -4,
		"<0x41>": -9, "<0xE2>": -9, "<0x98>": -9, "<0x83>": -9}
	meta := `{"type":"Metaspace","replacement":"▁","add_prefix_space":true}`
	u := tinyUnigram(t, pieces, `{"type":"Sequence","normalizers":[{"type":"Strip","strip_left":true,"strip_right":true},{"type":"Lowercase"}]}`, meta, false)
	for _, c := range []struct{ in, want string }{
		{"ab", "▁ ab"},                  // -3 beats ▁ab (-3.5) and ▁a b (-4)
		{"c", "▁c"},                     // a tie with ▁ c (-4): the first path found, the longest last piece
		{"A  B", "▁a ▁ ▁ b"},            // lower-cased; a run of spaces gives words of one ▁
		{"ab xyz c", "▁ ab ▁ <unk> ▁c"}, // the unknown run is one <unk>
		{"  ", ""},
	} {
		ids, _ := u.Encode(c.in, 0)
		if ids[0] != 0 || ids[len(ids)-1] != 2 {
			t.Errorf("Encode(%q) = %v: not wrapped in <s> </s>", c.in, ids)
			continue
		}
		if got := pieceNames(u, ids[1:len(ids)-1]); got != c.want {
			t.Errorf("Encode(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	fb := tinyUnigram(t, pieces, `null`, `{"type":"Metaspace","replacement":"▁","prepend_scheme":"never","split":false}`, true)
	if ids, _ := fb.Encode("A☃", 0); pieceNames(fb, ids[1:len(ids)-1]) != "<0x41> <0xE2> <0x98> <0x83>" {
		t.Errorf("byte fallback: %q", pieceNames(fb, ids[1:len(ids)-1]))
	}
	if ids, _ := fb.Encode("é", 0); pieceNames(fb, ids[1:len(ids)-1]) != "<unk>" {
		t.Errorf("byte fallback without the bytes: %q", pieceNames(fb, ids[1:len(ids)-1]))
	}
}

func TestTruncatePair(t *testing.T) {
	seq := func(n int) []int32 { return make([]int32, n) }
	for _, c := range []struct{ a, b, m, wa, wb int }{
		{3, 4, 10, 3, 4},
		{3, 20, 10, 3, 7},
		{20, 3, 10, 7, 3},
		{20, 20, 10, 5, 5},
		{20, 30, 11, 5, 6},
		{30, 20, 11, 6, 5},
		{8, 8, 11, 5, 6},
		{5, 5, 0, 0, 0},
	} {
		a, b, cut := truncatePair(seq(c.a), seq(c.b), c.m)
		if len(a) != c.wa || len(b) != c.wb || cut != (c.a+c.b > c.m) {
			t.Errorf("truncatePair(%d, %d, %d) = %d, %d, %v; want %d, %d", c.a, c.b, c.m, len(a), len(b), cut, c.wa, c.wb)
		}
	}
}

func TestParseUnigramErrors(t *testing.T) {
	for _, c := range []struct{ name, json, want string }{
		{"not json", `{`, "unexpected end"},
		{"wordpiece", `{"model":{"type":"WordPiece"}}`, "want Unigram"},
		{"no vocab", `{"model":{"type":"Unigram","unk_id":0,"vocab":[]}}`, "vocab has 0"},
		{"bad unk", `{"model":{"type":"Unigram","unk_id":5,"vocab":[["a",0]]}}`, "unk_id"},
		{"bad entry", `{"model":{"type":"Unigram","unk_id":0,"vocab":[["a"]]}}`, "not [piece, score]"},
		{"bad normalizer", `{"normalizer":{"type":"Wat"},"model":{"type":"Unigram","unk_id":0,"vocab":[["a",0]]}}`, "Wat"},
		{"bad regex", `{"normalizer":{"type":"Replace","pattern":{"Regex":"("},"content":""},"model":{"type":"Unigram","unk_id":0,"vocab":[["a",0]]}}`, "Replace"},
		{"no pre", `{"model":{"type":"Unigram","unk_id":0,"vocab":[["a",0]]}}`, "want Metaspace"},
		{"no specials", `{"pre_tokenizer":{"type":"Metaspace"},"model":{"type":"Unigram","unk_id":0,"vocab":[["a",0]]}}`, "no <s>"},
		{"bad template id", `{"pre_tokenizer":{"type":"Metaspace"},"post_processor":{"type":"RobertaProcessing","sep":["</s>",9],"cls":["<s>",0]},"model":{"type":"Unigram","unk_id":0,"vocab":[["a",0]]}}`, "outside the vocab"},
		{"template without B", `{"pre_tokenizer":{"type":"Metaspace"},"post_processor":{"type":"TemplateProcessing","single":[{"Sequence":{"id":"A"}}],"pair":[{"Sequence":{"id":"A"}}]},"model":{"type":"Unigram","unk_id":0,"vocab":[["a",0]]}}`, "$B"},
	} {
		_, err := ParseUnigram([]byte(c.json))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
	}
}

// FuzzUnigram feeds the tokenizer.json parser hostile files, and the
// tokenizer hostile text: no panic, ids in the vocabulary, limits kept.
func FuzzUnigram(f *testing.F) {
	real, err := os.ReadFile("testdata/unigram-tokenizer.json")
	if err != nil {
		f.Fatal(err)
	}
	small := `{"pre_tokenizer":{"type":"Metaspace"},"normalizer":{"type":"Sequence","normalizers":[{"type":"NFKC"},{"type":"Replace","pattern":{"String":"a"},"content":"▁▁"}]},"model":{"type":"Unigram","unk_id":3,"byte_fallback":true,"vocab":[["<s>",0],["<pad>",0],["</s>",0],["<unk>",0],["▁",-1],["b",-2],["<0x62>",-3]]}}`
	f.Add([]byte(small), "ab cb", 5)
	f.Add([]byte(`{"model":{"type":"Unigram","unk_id":0,"vocab":[["a",1e999]]}}`), "a", 0)
	f.Add([]byte(`{"pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Metaspace","replacement":""}]},"model":{"type":"Unigram","unk_id":0,"vocab":[["",0]]}}`), "", 1)
	f.Add([]byte{}, "北京 \xff 🙂", 3)
	u0, err := ParseUnigram(real)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, file []byte, text string, maxLen int) {
		maxLen %= 64
		u, err := ParseUnigram(file)
		if err != nil {
			u = u0
		}
		ids, cut := u.Encode(text, maxLen)
		pids, types, pcut := u.EncodePair(text, strings.ToUpper(text), maxLen)
		for _, s := range [][]int32{ids, pids} {
			for _, id := range s {
				if id < 0 || int(id) >= u.VocabSize() {
					t.Fatalf("id %d outside the vocab of %d", id, u.VocabSize())
				}
			}
		}
		if full, part := u.tokenize(text, 0), u.tokenize(text, maxLen); len(part) > len(full) || !slices.Equal(part, full[:len(part)]) || maxLen > 0 && len(part) < min(maxLen, len(full)) {
			t.Fatalf("tokenize with limit %d = %v, not the start of %v", maxLen, part, full)
		}
		if len(types) != len(pids) {
			t.Fatalf("%d types for %d ids", len(types), len(pids))
		}
		if maxLen > 0 && (cut && len(ids) > max(maxLen, len(u.single)-1) || pcut && len(pids) > max(maxLen, len(u.pair)-2)) {
			t.Fatalf("maxLen %d: %d and %d ids", maxLen, len(ids), len(pids))
		}
	})
}

// charsmapHead is the GGUF key of the charsmap through the first 4 bytes
// of its value (the trie size).
func charsmapHead(t *testing.T, file []byte) string {
	t.Helper()
	const key = "precompiled_charsmap\x09\x00\x00\x00\x00\x00\x00\x00"
	i := strings.Index(string(file), key)
	if i < 0 {
		t.Fatal("no charsmap in the file")
	}
	return string(file[i : i+len(key)+8+4])
}

func TestUnigramGGUFErrors(t *testing.T) {
	orig, err := os.ReadFile("testdata/xlmr-tiny.gguf")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ from, to, want string }{
		{"tokenizer.ggml.scores", "tokenizer.ggml.scoreX", "one entry per token"},
		{"tokenizer.ggml.token_type", "tokenizer.ggml.token_typX", "one entry per token"},
		{"tokenizer.ggml.bos_token_id", "tokenizer.ggml.bos_token_iX", "no tokenizer.ggml.bos_token_id"},
		{"tokenizer.ggml.model\x08\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00t5", "tokenizer.ggml.model\x08\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00t6", `"t6" is not supported`},
		// The map's trie size made larger than the whole map.
		{charsmapHead(t, orig), charsmapHead(t, orig)[:len(charsmapHead(t, orig))-2] + "\xff\x7f",
			"tokenizer.ggml.precompiled_charsmap: trie of"},
	} {
		b := []byte(strings.Replace(string(orig), c.from, c.to, 1))
		if string(b) == string(orig) {
			t.Fatalf("%s not found in the file", c.from)
		}
		path := filepath.Join(t.TempDir(), "m.gguf")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(path, Options{Threads: 1}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.to, err, c.want)
		}
	}
}
