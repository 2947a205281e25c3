package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/tributary-rag/tributary/pkg/daemon"
)

// evalQuestion is one line of the questions file: a question and its
// relevant documents, by source relative to the corpus root (the eval adds
// the corpus prefix) or by document id.
type evalQuestion struct {
	Question string   `json:"question"`
	Relevant []string `json:"relevant"`
	// Kind groups questions in the report (e.g. "licence", "readme").
	Kind string `json:"kind,omitempty"`
}

// evalScores are the averages over a set of questions.
type evalScores struct {
	Questions int     `json:"questions"`
	RecallAtK float64 `json:"recall_at_k"`
	MRR       float64 `json:"mrr"`
	NDCG      float64 `json:"ndcg_at_k"`
	// Answers is how many questions were asked for an answer; Cited the
	// share of those whose citations include a relevant document.
	Answers int     `json:"answers"`
	Cited   float64 `json:"cited_relevant"`
	// Duplicates is the share of results whose text repeats a better
	// result of the same search (crowding); Documents the mean number of
	// distinct documents in the first k results.
	Duplicates float64 `json:"duplicate_results"`
	Documents  float64 `json:"distinct_documents"`
}

// evalReport is what `tributary eval --json` prints.
type evalReport struct {
	K         int                   `json:"k"`
	Stack     string                `json:"stack"`
	Overall   evalScores            `json:"overall"`
	ByKind    map[string]evalScores `json:"by_kind"`
	SearchP50 float64               `json:"search_p50_ms"`
	SearchP95 float64               `json:"search_p95_ms"`
	Misses    []string              `json:"misses,omitempty"`
}

// evalStages switch the retrieval stages of an embedded stack, to measure
// what each one brings.
type evalStages struct {
	noContext, noIdentifiers, noDedup bool
	bm25B                             float64
	// embedModel and rerankModel add the dense and rerank stages (paths
	// of models the user has; none ship), denseSize is the embedding
	// model's dimension, vectors retrieve's --search-vectors.
	embedModel, rerankModel, vectors string
	denseSize                        int
}

// runEval implements `tributary eval --corpus DIR --questions FILE.jsonl`:
// it syncs the corpus to a server (by default a stack it starts in
// process on a temporary directory), runs every question through
// POST /v1/search, asks some over the chat WebSocket, and reports
// recall@k, MRR and nDCG@k of the searches and the share of answers that
// cite a relevant document.
func runEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("eval", flag.ContinueOnError)
	fset.SetOutput(stderr)
	corpus := fset.String("corpus", "", "directory of the corpus (synced under its name as the source prefix)")
	questions := fset.String("questions", "", "JSON Lines file of {question, relevant: [source or document id], kind}")
	server := fset.String("server", "", "base URL of a running stack (default: start one in process)")
	key := fset.String("api-key", os.Getenv("TRIBUTARY_API_KEY"), "API key for --server (env TRIBUTARY_API_KEY)")
	k := fset.Int("k", 5, "results per search that count (recall@k, nDCG@k)")
	answers := fset.Int("answers", -1, "questions also asked for an answer (-1: all, 0: none)")
	minRecall := fset.Float64("min-recall", 0, "fail when recall@k is below this")
	asJSON := fset.Bool("json", false, "print the report as JSON")
	var st evalStages
	fset.BoolVar(&st.noContext, "no-context", false, "in-process stack: index chunks without title, source and headings")
	fset.BoolVar(&st.noIdentifiers, "no-identifiers", false, "in-process stack: no whole-identifier tokens")
	fset.BoolVar(&st.noDedup, "no-dedup", false, "in-process stack: no near-duplicate collapse and no per-document limit")
	fset.Float64Var(&st.bm25B, "bm25-b", -1, "in-process stack: BM25 length normalization b (default: the embed default)")
	fset.StringVar(&st.embedModel, "embed-model", "", "in-process stack: dense embedding model (directory or .gguf) beside BM25")
	fset.IntVar(&st.denseSize, "dense-size", 0, "in-process stack: the embedding model's dimension (default: retrieve's default, 384)")
	fset.StringVar(&st.rerankModel, "rerank-model", "", "in-process stack: cross-encoder that reorders the fused candidates")
	fset.StringVar(&st.vectors, "search-vectors", "", "in-process stack: hybrid, dense or sparse (default: retrieve's, hybrid)")
	fset.Usage = func() {
		fmt.Fprintln(stderr, "usage: tributary eval --corpus DIR --questions FILE.jsonl [--server URL --api-key KEY] [--k 5] [--answers N] [--min-recall R] [--json]")
		fset.PrintDefaults()
	}
	if _, err := parseInterspersed(fset, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	staged := st.noContext || st.noIdentifiers || st.noDedup || st.bm25B >= 0 || st.embedModel != "" || st.rerankModel != "" ||
		st.vectors != "" || st.denseSize != 0
	if *corpus == "" || *questions == "" || *k < 1 || *k > 50 || (*server != "" && (*key == "" || staged)) {
		fset.Usage()
		if *server != "" && staged {
			fmt.Fprintln(stderr, "eval: the stage switches apply to the in-process stack only")
		}
		return errUsage
	}
	qs, err := readQuestions(*questions)
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	base, apiKey, stack := *server, *key, "server "+*server
	if base == "" {
		var stop func() error
		base, apiKey, stop, err = startEvalStack(ctx, st)
		if err != nil {
			return fmt.Errorf("eval: %w", err)
		}
		defer func() {
			cancel()
			if err := stop(); err != nil {
				fmt.Fprintf(stderr, "eval: stack: %v\n", err)
			}
		}()
		stack = st.String()
	}

	// Sync the corpus and wait until every document is indexed.
	client := &http.Client{Timeout: time.Minute}
	up := uploader{base: base, key: apiKey, client: client}
	abs, err := filepath.Abs(*corpus)
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	prefix := sourceName(filepath.Base(abs)) + "/"
	sctx, scancel := context.WithTimeout(ctx, 10*time.Minute)
	defer scancel()
	stats, err := syncTrees(sctx, up, []string{*corpus}, syncOptions{prefix: prefix, hasPrefix: true, prune: true, parallel: 4, maxSize: 50 << 20}, io.Discard, stderr)
	if err == nil && stats.failed > 0 {
		err = fmt.Errorf("%d corpus files failed", stats.failed)
	}
	if err != nil {
		return fmt.Errorf("eval: sync corpus: %w", err)
	}
	for _, r := range stats.uploaded {
		if err := up.waitIndexed(sctx, r); err != nil {
			return fmt.Errorf("eval: %w", err)
		}
	}
	docs, err := up.list(sctx, prefix)
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}

	rep := evalReport{K: *k, Stack: stack, ByKind: map[string]evalScores{}}
	var latencies []float64
	byKind := map[string][]evalOutcome{}
	var all []evalOutcome
	for i, q := range qs {
		relevant := map[string]bool{}
		for _, r := range q.Relevant {
			if d, ok := docs[prefix+r]; ok {
				relevant[d.DocumentID] = true
			} else {
				relevant[r] = true // a document id
			}
		}
		begin := time.Now()
		res, err := search(ctx, client, base, apiKey, searchRequest{Query: q.Question, TopK: *k})
		if err != nil {
			return fmt.Errorf("eval: question %d: %w", i+1, err)
		}
		latencies = append(latencies, float64(time.Since(begin).Microseconds())/1000)
		var ranked []string
		texts := map[string]bool{}
		dups := 0
		for _, h := range res.Results {
			ranked = append(ranked, h.DocumentID)
			t := strings.Join(strings.Fields(strings.ToLower(h.Snippet)), " ")
			if texts[t] {
				dups++
			}
			texts[t] = true
		}
		o := scoreRanking(ranked, relevant, *k)
		o.results, o.dups = len(res.Results), dups
		distinct := map[string]bool{}
		for _, id := range ranked {
			distinct[id] = true
		}
		o.docs = len(distinct)
		if o.rr == 0 {
			rep.Misses = append(rep.Misses, q.Question)
		}
		if *answers < 0 || i < *answers {
			ar, err := ask(ctx, askRequest{Server: base, APIKey: apiKey, Question: q.Question, TopK: *k}, nil)
			if err != nil {
				return fmt.Errorf("eval: ask question %d: %w", i+1, err)
			}
			o.asked = true
			for _, c := range ar.Citations {
				if relevant[c.DocumentID] {
					o.cited = true
				}
			}
		}
		all = append(all, o)
		byKind[q.Kind] = append(byKind[q.Kind], o)
	}
	rep.Overall = summarize(all)
	for kind, outs := range byKind {
		rep.ByKind[kind] = summarize(outs)
	}
	rep.SearchP50, rep.SearchP95 = quantile(latencies, 0.5), quantile(latencies, 0.95)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printEval(stdout, rep)
	}
	if rep.Overall.RecallAtK < *minRecall {
		return fmt.Errorf("eval: recall@%d %.3f is below --min-recall %.3f", *k, rep.Overall.RecallAtK, *minRecall)
	}
	return nil
}

func (s evalStages) String() string {
	parts := []string{"in-process"}
	if s.noContext {
		parts = append(parts, "no-context")
	}
	if s.noIdentifiers {
		parts = append(parts, "no-identifiers")
	}
	if s.noDedup {
		parts = append(parts, "no-dedup")
	}
	if s.bm25B >= 0 {
		parts = append(parts, fmt.Sprintf("bm25-b=%g", s.bm25B))
	}
	if s.embedModel != "" {
		parts = append(parts, "embed-model="+s.embedModel)
	}
	if s.rerankModel != "" {
		parts = append(parts, "rerank-model="+s.rerankModel)
	}
	if s.vectors != "" {
		parts = append(parts, "search-vectors="+s.vectors)
	}
	return strings.Join(parts, " ")
}

// startEvalStack starts the whole suite in process on a temporary
// directory with one key, and returns its URL, the key and its stop.
func startEvalStack(ctx context.Context, st evalStages) (base, key string, stop func() error, err error) {
	dir, err := os.MkdirTemp("", "tributary-eval-")
	if err != nil {
		return "", "", nil, err
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	key = "eval-" + hex.EncodeToString(b[:])
	services := defaultDevServices()
	services.Embed.Context = !st.noContext
	services.Embed.Identifiers = !st.noIdentifiers
	if st.bm25B >= 0 {
		services.Embed.B = st.bm25B
	}
	if st.noDedup {
		services.Retrieve.PerDocument = 0
		services.Retrieve.NearDuplicate = 2
	}
	services.Embed.EmbedModel = st.embedModel
	services.Retrieve.RerankModel = st.rerankModel
	if st.vectors != "" {
		services.Retrieve.SearchVectors = st.vectors
	}
	if st.denseSize > 0 {
		services.Retrieve.DenseSize = st.denseSize
	}
	var p daemon.Problems
	for _, s := range services.list() {
		s.settings.Check(&p)
	}
	if err := p.Err(); err != nil {
		_ = os.RemoveAll(dir)
		return "", "", nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	d, err := startDev(sctx, devOptions{
		HTTPAddr: "127.0.0.1:0", DataDir: dir, APIKeys: key + ":eval:", LogLevel: slog.LevelError,
		Logs: io.Discard, SkipSample: true, Services: services,
	})
	if err != nil {
		cancel()
		_ = os.RemoveAll(dir)
		return "", "", nil, err
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(sctx) }()
	stop = func() error {
		cancel()
		err := <-done
		return errors.Join(err, os.RemoveAll(dir))
	}
	base = "http://" + d.Addr()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base, key, stop, nil
			}
		}
		if time.Now().After(deadline) {
			return "", "", nil, errors.Join(errors.New("in-process stack not ready within 2m"), stop())
		}
		select {
		case err := <-done:
			_ = os.RemoveAll(dir)
			return "", "", nil, fmt.Errorf("in-process stack exited: %w", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func readQuestions(path string) ([]evalQuestion, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var qs []evalQuestion
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		var q evalQuestion
		if err := json.Unmarshal([]byte(text), &q); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		if strings.TrimSpace(q.Question) == "" || len(q.Relevant) == 0 {
			return nil, fmt.Errorf("%s:%d: a question needs question and relevant", path, line)
		}
		qs = append(qs, q)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(qs) == 0 {
		return nil, fmt.Errorf("%s: no questions", path)
	}
	return qs, nil
}

// evalOutcome is one question's scores.
type evalOutcome struct {
	recall, rr, ndcg    float64
	asked, cited        bool
	results, dups, docs int
}

// scoreRanking scores the document ids of a ranked result list (chunks,
// so an id may repeat) against the relevant set, over the first k
// results: recall@k is the share of relevant documents among them, the
// reciprocal rank that of the first relevant result, and nDCG@k uses
// binary gains, each relevant document counted at its best rank.
func scoreRanking(ranked []string, relevant map[string]bool, k int) evalOutcome {
	var o evalOutcome
	seen := map[string]bool{}
	var dcg float64
	for i, id := range ranked {
		if i == k {
			break
		}
		if !relevant[id] || seen[id] {
			continue
		}
		seen[id] = true
		if o.rr == 0 {
			o.rr = 1 / float64(i+1)
		}
		dcg += 1 / math.Log2(float64(i+2))
	}
	var ideal float64
	for i := range min(len(relevant), k) {
		ideal += 1 / math.Log2(float64(i+2))
	}
	if len(relevant) > 0 {
		o.recall = float64(len(seen)) / float64(len(relevant))
		o.ndcg = dcg / ideal
	}
	return o
}

func summarize(outs []evalOutcome) evalScores {
	s := evalScores{Questions: len(outs)}
	cited, results, dups := 0, 0, 0
	for _, o := range outs {
		results += o.results
		dups += o.dups
		s.Documents += float64(o.docs)
		s.RecallAtK += o.recall
		s.MRR += o.rr
		s.NDCG += o.ndcg
		if o.asked {
			s.Answers++
			if o.cited {
				cited++
			}
		}
	}
	if n := float64(len(outs)); n > 0 {
		s.RecallAtK /= n
		s.MRR /= n
		s.NDCG /= n
		s.Documents /= n
	}
	if results > 0 {
		s.Duplicates = float64(dups) / float64(results)
	}
	if s.Answers > 0 {
		s.Cited = float64(cited) / float64(s.Answers)
	}
	return s
}

func quantile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func printEval(w io.Writer, r evalReport) {
	fmt.Fprintf(w, "stack: %s\n", r.Stack)
	fmt.Fprintf(w, "%-10s %9s %9s %7s %8s %9s %14s %10s %9s\n", "kind", "questions", "recall@"+fmt.Sprint(r.K), "MRR", "nDCG@"+fmt.Sprint(r.K), "answers", "cited-relevant", "duplicates", "documents")
	row := func(name string, s evalScores) {
		fmt.Fprintf(w, "%-10s %9d %9.3f %7.3f %8.3f %9d %14.3f %10.3f %9.2f\n", name, s.Questions, s.RecallAtK, s.MRR, s.NDCG, s.Answers, s.Cited, s.Duplicates, s.Documents)
	}
	kinds := make([]string, 0, len(r.ByKind))
	for kind := range r.ByKind {
		kinds = append(kinds, kind)
	}
	sort.Strings(kinds)
	for _, kind := range kinds {
		name := kind
		if name == "" {
			name = "-"
		}
		row(name, r.ByKind[kind])
	}
	row("all", r.Overall)
	fmt.Fprintf(w, "search latency: p50 %.1f ms, p95 %.1f ms\n", r.SearchP50, r.SearchP95)
	for i, m := range r.Misses {
		if i == 10 {
			fmt.Fprintf(w, "… and %d more misses\n", len(r.Misses)-10)
			break
		}
		fmt.Fprintf(w, "miss: %s\n", m)
	}
}
