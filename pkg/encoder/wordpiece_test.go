package encoder

import (
	"slices"
	"strings"
	"testing"
)

func miniLMTokenizer(t testing.TB) *WordPiece {
	t.Helper()
	tok, err := LoadWordPiece("testdata/minilm-tokenizer.json")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// The expected pieces were derived by hand from the vocabulary and BERT's
// BasicTokenizer rules (the ids below are the vocabulary's).
func TestWordPieceMiniLMTokens(t *testing.T) {
	tok := miniLMTokenizer(t)
	for _, c := range []struct{ in, want string }{
		{"Hello, world! This is a test sentence.", "hello , world ! this is a test sentence ."},
		{"unaffable", "una ##ffa ##ble"},
		{"Embeddings", "em ##bed ##ding ##s"},
		{"Naïve CAFÉ", "naive cafe"},                                            // accents stripped with lower-casing
		{"don't", "don ' t"},                                                    // punctuation splits words
		{"3.14159", "3 . 141 ##59"},                                             // '.' is punctuation; digits are pieces
		{"北京", "北 京"},                                                           // each CJK ideograph a word
		{"mixed中文", "mixed 中 文"},                                                // even inside a Latin word
		{"smile 🙂 qdrant", "smile [UNK] q ##dran ##t"},                          // emoji: not in the vocabulary
		{"tab\tnew\nline\u00a0nbsp\u200bzw", "tab new line n ##bs ##p ##z ##w"}, // U+200B is format: dropped, joining the words
		{"ctrl\x00\x07char", "ct ##rl ##cha ##r"},
		{"", ""},
		{"   ", ""},
		{strings.Repeat("a", 101), "[UNK]"}, // longer than max_input_chars_per_word
		{"bad \xff utf8", "bad ut ##f ##8"},
	} {
		got := strings.Join(tok.Tokens(c.in), " ")
		if got != c.want {
			t.Errorf("Tokens(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestWordPieceMiniLMIDs(t *testing.T) {
	tok := miniLMTokenizer(t)
	ids, cut := tok.Encode("Hello, world! This is a test sentence.", 0)
	want := []int32{101, 7592, 1010, 2088, 999, 2023, 2003, 1037, 3231, 6251, 1012, 102}
	if !slices.Equal(ids, want) || cut {
		t.Errorf("ids = %v (cut %v), want %v", ids, cut, want)
	}
	ids, _ = tok.Encode("unaffable 北京 naïve", 0)
	if want := []int32{101, 14477, 20961, 3468, 1781, 1755, 15743, 102}; !slices.Equal(ids, want) {
		t.Errorf("ids = %v, want %v", ids, want)
	}
	if n := tok.VocabSize(); n != 30522 {
		t.Errorf("VocabSize = %d, want 30522", n)
	}
}

func TestWordPieceTruncation(t *testing.T) {
	tok := miniLMTokenizer(t)
	text := "Hello, world! This is a test sentence." // 10 tokens + 2
	for _, c := range []struct {
		max     int
		want    int
		wantCut bool
	}{{0, 12, false}, {12, 12, false}, {13, 13 - 1, false}, {11, 11, true}, {5, 5, true}, {2, 2, true}, {1, 2, true}} {
		ids, cut := tok.Encode(text, c.max)
		if len(ids) != c.want || cut != c.wantCut || ids[0] != 101 || ids[len(ids)-1] != 102 {
			t.Errorf("Encode(max %d) = %v cut %v, want %d ids cut %v", c.max, ids, cut, c.want, c.wantCut)
		}
	}
	// A word's pieces are cut too, not only whole words.
	ids, cut := tok.Encode("embeddings", 4)
	if want := []int32{101, 7861, 8270, 102}; !slices.Equal(ids, want) || !cut {
		t.Errorf("Encode(embeddings, 4) = %v cut %v, want %v cut", ids, cut, want)
	}
}

func TestParseWordPieceErrors(t *testing.T) {
	for name, in := range map[string]string{
		"not json":     "{",
		"unigram":      `{"model":{"type":"Unigram"}}`,
		"no cls":       `{"model":{"type":"WordPiece","vocab":{"[UNK]":0,"[SEP]":1}}}`,
		"negative id":  `{"model":{"type":"WordPiece","vocab":{"[UNK]":0,"[SEP]":1,"[CLS]":2,"x":-1}}}`,
		"bad vocab":    `{"model":{"type":"WordPiece","vocab":[1,2]}}`,
		"other normal": `{"normalizer":{"type":"NFKC"},"model":{"type":"WordPiece","vocab":{"[UNK]":0,"[SEP]":1,"[CLS]":2}}}`,
	} {
		if _, err := ParseWordPiece([]byte(in)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func FuzzWordPiece(f *testing.F) {
	tok := miniLMTokenizer(f)
	for _, s := range []string{"Hello, world!", "北京 naïve", "\xff\x00", strings.Repeat("ab", 80)} {
		f.Add(s, 8)
	}
	f.Fuzz(func(t *testing.T, s string, maxLen int) {
		maxLen = maxLen%600 + 2
		if maxLen < 2 {
			maxLen = 2
		}
		ids, _ := tok.Encode(s, maxLen)
		if len(ids) < 2 || len(ids) > maxLen || ids[0] != 101 || ids[len(ids)-1] != 102 {
			t.Fatalf("Encode(%q, %d) = %v", s, maxLen, ids)
		}
	})
}
