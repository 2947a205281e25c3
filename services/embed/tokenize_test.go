package embed

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTokenize(t *testing.T) {
	tests := []struct {
		name string
		stem bool
		in   string
		want []string
	}{
		{"empty", false, "", nil},
		{"only spaces and punctuation", false, " \t\n.,;:!?()[]{}-—…", nil},
		{"english lowercased, stop words dropped", false, "The Quick brown FOX jumps over the lazy dog.",
			[]string{"quick", "brown", "fox", "jumps", "over", "lazy", "dog"}},
		{"digits stay in words", false, "Error E42 at port 8080, v2.1", []string{"error", "e42", "port", "8080", "v2", "1", "v2.1"}},
		{"apostrophe joins", false, "Don't stop; it’s the employees' day", []string{"dont", "stop", "employees", "day"}},
		{"apostrophe at the end", false, "rock'", []string{"rock"}},
		{"apostrophe before a digit splits", false, "rock'n'roll '90s", []string{"rocknroll", "90s"}},
		{"stemming", true, "Policies employees days status classes boxes was",
			[]string{"policy", "employee", "day", "status", "classe", "boxe"}},
		{"no stemming of short or non-ascii words", true, "bus gas cafés", []string{"bus", "gas", "cafés"}},
		{"accents and other scripts", false, "Café Ünïcode Привет мир", []string{"café", "ünïcode", "привет", "мир"}},
		{"combining mark stays in the word", false, "cafe\u0301 ok", []string{"cafe\u0301", "ok"}},
		{"chinese bigrams", false, "员工年假制度", []string{"员工", "工年", "年假", "假制", "制度"}},
		{"chinese runs split by punctuation", false, "年假，病假。", []string{"年假", "病假"}},
		{"single han character is a unigram", false, "第1条：假", []string{"第", "1", "条", "假"}},
		{"mixed chinese and english", false, "使用GPU加速RAG检索", []string{"使用", "gpu", "加速", "rag", "检索"}},
		{"full-width forms fold to ascii", false, "ＧＰＵ显存２４ＧＢ", []string{"gpu", "显存", "24gb"}},
		{"emoji separate", false, "good👍job🎉 好👍的", []string{"good", "job", "好", "的"}},
		{"invalid utf-8 separates", false, "abc\xffdef\xc3", []string{"abc", "def"}},
		{"japanese kana form words", false, "カタカナ", []string{"カタカナ"}},
		{"long word is cut", false, strings.Repeat("x", 100), []string{strings.Repeat("x", MaxTokenRunes)}},
		{"urls and emails split", false, "mail bob@example.com https://a.io/x?y=1", []string{"mail", "bob", "example", "com", "example.com", "https", "io", "a.io", "x", "y", "1"}},
		{"identifiers match whole and by parts", true, "Install apt-transport-https for Zephyr-9 (see README.Debian, my_var).",
			[]string{"install", "apt", "transport", "http", "apt-transport-https", "zephyr", "9", "zephyr-9", "see", "readme", "debian", "readme.debian", "my", "var", "my_var"}},
		{"a sentence end is no joiner", false, "the end. Next-", []string{"end", "next"}},
		{"double joiner splits", false, "a--b c-.d", []string{"b", "c", "d"}},
		{"identifier ends at han", false, "abc-中文", []string{"abc", "中文"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Tokenizer{Stem: tt.stem}.Tokenize(tt.in)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Tokenize(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestStemS(t *testing.T) {
	tests := []struct{ in, want string }{
		{"policies", "policy"},
		{"series", "sery"}, // the S-stemmer is deliberately crude
		{"movies", "movy"},
		{"aies", "aie"}, // not "ies" → "y" after a; "es" → "e" applies
		{"employees", "employee"},
		{"toes", "toe"},
		{"horses", "horse"},
		{"cats", "cat"},
		{"glass", "glass"},
		{"virus", "virus"},
		{"is", "is"},
		{"cat", "cat"},
	}
	for _, tt := range tests {
		if got := string(stemS([]byte(tt.in))); got != tt.want {
			t.Errorf("stemS(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzTokenize checks that any input tokenizes without panicking, that
// tokens are non-empty valid UTF-8 of at most MaxTokenRunes runes (two for
// a CJK bigram), that tokenizing is deterministic, and that the vectors
// built from the tokens have strictly ascending indices.
func FuzzTokenize(f *testing.F) {
	for _, s := range []string{"", "hello world", "员工年假制度", "使用GPU加速", "\xff\xfe", "don't '", "ＧＰＵ👍", "cafe\u0301"} {
		f.Add(s)
	}
	s, err := NewSparse()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in string) {
		for _, stem := range []bool{false, true} {
			tok := Tokenizer{Stem: stem}
			a := tok.Tokenize(in)
			b := tok.Tokenize(in)
			if !slices.Equal(a, b) {
				t.Fatalf("Tokenize(%q) not deterministic: %q vs %q", in, a, b)
			}
			for _, w := range a {
				if w == "" || !utf8.ValidString(w) || utf8.RuneCountInString(w) > MaxTokenRunes {
					t.Fatalf("Tokenize(%q) gave bad token %q", in, w)
				}
			}
		}
		d1, d2, q := s.Document(in), s.Document(in), s.Query(in)
		if !slices.Equal(d1.Indices, d2.Indices) || !slices.Equal(d1.Values, d2.Values) {
			t.Fatalf("Document(%q) not deterministic", in)
		}
		if !slices.Equal(d1.Indices, q.Indices) {
			t.Fatalf("Document(%q) and Query have different indices", in)
		}
		for i := range d1.Indices {
			if i > 0 && d1.Indices[i] <= d1.Indices[i-1] {
				t.Fatalf("Document(%q) indices not ascending: %v", in, d1.Indices)
			}
			if v := d1.Values[i]; !(v > 0) || v >= float32(DefaultK1+1) {
				t.Fatalf("Document(%q) value %v out of (0, k1+1)", in, v)
			}
		}
	})
}
