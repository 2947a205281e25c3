package encoder

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tributary-rag/tributary/pkg/cputime"
)

// encoderGolden is testdata/encoder-golden.json, written with the models
// beside it by tools/encgolden/model_golden.py (NumPy, float64).
type encoderGolden struct {
	XLMR struct {
		MaxLen int `json:"max_len"`
		Texts  []struct {
			Text  string    `json:"text"`
			IDs   []int32   `json:"ids"`
			Mean  []float64 `json:"mean"`
			First []float64 `json:"first"`
		} `json:"texts"`
		Pairs []goldenPair `json:"pairs"`
	} `json:"xlmr"`
	BERT struct {
		Pairs []goldenPair `json:"pairs"`
	} `json:"bert"`
}

type goldenPair struct {
	Query   string  `json:"query"`
	Passage string  `json:"passage"`
	IDs     []int32 `json:"ids"`
	Types   []int32 `json:"types"`
	Cut     bool    `json:"cut"`
	Score   float64 `json:"score"`
}

func loadEncoderGolden(t *testing.T) encoderGolden {
	t.Helper()
	b, err := os.ReadFile("testdata/encoder-golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g encoderGolden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.XLMR.Texts) < 4 || len(g.XLMR.Pairs) < 3 || len(g.BERT.Pairs) < 2 {
		t.Fatalf("golden file is short: %+v", g)
	}
	return g
}

// xlmrDir copies testdata/xlmr-tiny with the Unigram tokenizer as its
// tokenizer.json into a temporary directory.
func xlmrDir(t testing.TB) string {
	t.Helper()
	dir := copyDir(t, "testdata/xlmr-tiny")
	b, err := os.ReadFile("testdata/unigram-tokenizer.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestXLMRobertaMatchesReference(t *testing.T) {
	g := loadEncoderGolden(t)
	for _, c := range []struct {
		name, path string
		pooling    Pooling
	}{
		{"safetensors", xlmrDir(t), PoolMean},
		// pooling_type 4 (rank): the first token's state.
		{"gguf", "testdata/xlmr-tiny.gguf", PoolCLS},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, threads := range []int{1, 2} {
				e, err := Load(c.path, Options{Threads: threads})
				if err != nil {
					t.Fatal(err)
				}
				defer e.Close()
				if e.Pooling() != c.pooling || e.MaxLength() != g.XLMR.MaxLen {
					t.Fatalf("pooling %s, max length %d; want %s, %d", e.Pooling(), e.MaxLength(), c.pooling, g.XLMR.MaxLen)
				}
				texts := make([]string, len(g.XLMR.Texts))
				for i, tc := range g.XLMR.Texts {
					texts[i] = tc.Text
					if ids, _ := e.Tokenizer().Encode(tc.Text, e.MaxLength()); !slices.Equal(ids, tc.IDs) {
						t.Errorf("ids of %q = %v, want %v", tc.Text, ids, tc.IDs)
					}
				}
				got, _, err := e.Embed(context.Background(), texts)
				if err != nil {
					t.Fatal(err)
				}
				for i, tc := range g.XLMR.Texts {
					want := tc.Mean
					if c.pooling == PoolCLS {
						want = tc.First
					}
					if d := maxDiff(got[i], want); d > 1e-4 || len(got[i]) != len(want) {
						t.Errorf("threads %d, %q: max |diff| %.3g", threads, tc.Text, d)
					}
				}
			}
		})
	}
}

func TestRerankerMatchesReference(t *testing.T) {
	g := loadEncoderGolden(t)
	ctx := context.Background()
	check := func(t *testing.T, path string, pairs []goldenPair) {
		r, err := LoadReranker(path, Options{Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		// One call for all the pairs of each query, packed.
		for _, q := range uniqueQueries(pairs) {
			var passages []string
			var want []goldenPair
			for _, p := range pairs {
				if p.Query == q {
					passages = append(passages, p.Passage)
					want = append(want, p)
				}
			}
			got, st, err := r.Score(ctx, q, passages)
			if err != nil {
				t.Fatal(err)
			}
			cut := 0
			for i, p := range want {
				if p.Cut {
					cut++
				}
				ids, types, _ := r.e.tok.EncodePair(q, p.Passage, r.MaxLength())
				if !slices.Equal(ids, p.IDs) || (p.Types != nil && !slices.Equal(types, p.Types)) {
					t.Errorf("pair (%q, %.20q): ids %v types %v, want %v %v", q, p.Passage, ids, types, p.IDs, p.Types)
				}
				if d := math.Abs(float64(got[i]) - p.Score); d > 1e-4 {
					t.Errorf("pair (%q, %.20q): score %v, want %v", q, p.Passage, got[i], p.Score)
				}
			}
			if st.Truncated != cut {
				t.Errorf("query %q: %d truncated, want %d", q, st.Truncated, cut)
			}
		}
	}
	t.Run("xlmr-safetensors", func(t *testing.T) { check(t, xlmrDir(t), g.XLMR.Pairs) })
	t.Run("xlmr-gguf", func(t *testing.T) { check(t, "testdata/xlmr-tiny.gguf", g.XLMR.Pairs) })
	t.Run("bert", func(t *testing.T) { check(t, "testdata/bert-rerank", g.BERT.Pairs) })
}

func uniqueQueries(pairs []goldenPair) []string {
	var qs []string
	for _, p := range pairs {
		if !slices.Contains(qs, p.Query) {
			qs = append(qs, p.Query)
		}
	}
	return qs
}

func TestRerankerErrors(t *testing.T) {
	// An embedding model has no head.
	if _, err := LoadReranker(tinyModel(t, Synthetic{Seed: 1}), Options{Threads: 1}); err == nil || !strings.Contains(err.Error(), "no classification head") {
		t.Errorf("embedding model: err = %v", err)
	}
	r, err := LoadReranker("testdata/bert-rerank", Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.ScoreIDs(context.Background(), [][]int32{{2, 4, 3}}, [][]int32{{0, 2, 0}}); err == nil || !strings.Contains(err.Error(), "token type 2") {
		t.Errorf("type id out of range: err = %v", err)
	}
	if _, err := r.ScoreIDs(context.Background(), [][]int32{{2, 4, 3}}, [][]int32{{0}}); err == nil {
		t.Error("types shorter than ids: no error")
	}
	if s, _, err := r.Score(context.Background(), "a cat", nil); err != nil || len(s) != 0 {
		t.Errorf("no passages: %v, %v", s, err)
	}

	dir := xlmrDir(t)
	cfg, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ from, to, want string }{
		{`"pad_token_id": 1`, `"pad_token_id": 70`, "pad_token_id 70"},
		{`"model_type": "xlm-roberta"`, `"model_type": "roberta"`, `"roberta" is not supported`},
	} {
		if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(strings.Replace(string(cfg), c.from, c.to, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadReranker(dir, Options{Threads: 1}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.to, err, c.want)
		}
	}
}

// BenchmarkRerank times one query against 50 passages of about 120
// tokens on a cross-encoder of ms-marco-MiniLM-L-6-v2's shape (6 layers,
// hidden 384, 12 heads, FFN 1536) with the MiniLM tokenizer.
func BenchmarkRerank(b *testing.B) {
	dir := miniLMShaped(b, true)
	r, err := LoadReranker(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	words := strings.Fields("the unit requires maintenance every thirty seven days and the filter is replaced when the pressure drops below the mark shown in the manual")
	passages := make([]string, 50)
	for i := range passages {
		var p []string
		for j := range 110 {
			p = append(p, words[(i+j)%len(words)])
		}
		passages[i] = strings.Join(p, " ")
	}
	cpu0 := cputime.Process()
	tokens := 0
	for b.Loop() {
		_, st, err := r.Score(context.Background(), "how often should the unit be serviced", passages)
		if err != nil {
			b.Fatal(err)
		}
		tokens = st.Tokens
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/query")
	b.ReportMetric(float64((cputime.Process()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/query")
	b.ReportMetric(float64(tokens), "tokens/query")
}

// BenchmarkUnigram times the Unigram tokenizer on mixed English and
// Chinese text of about 1,000 characters.
func BenchmarkUnigram(b *testing.B) {
	u := unigramTokenizer(b)
	text := strings.Repeat("Retrieval augmented generation 检索增强生成 answers questions. ", 16)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		u.Encode(text, 0)
	}
}
