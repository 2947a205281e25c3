package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary-rag/tributary/pkg/encoder"
)

// TestEvalDenseStages runs the evaluation's in-process stack with a dense
// model (synthetic: no weights ship) under each --search-vectors setting:
// the report names the stage, sparse-only still finds every document by
// its words, and a bad setting is refused before any search. The gains of
// a real model are measured with the same flags (bench/sections/
// retrieval-quality.md).
func TestEvalDenseStages(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole stack")
	}
	dir := t.TempDir()
	model := filepath.Join(dir, "synth-enc")
	s := encoder.Synthetic{Config: encoder.Config{Hidden: 16, Layers: 1, Heads: 2, Intermediate: 32, MaxPositions: 64},
		Vocab: strings.Fields("pump valve filter serviced every days weeks manual unit cleaned replaced"), Seed: 3}
	if err := s.Write(model); err != nil {
		t.Fatal(err)
	}
	corpus := filepath.Join(dir, "docs")
	for name, text := range map[string]string{
		"pump.txt":   "The pump is serviced every 37 days by the operator.",
		"valve.txt":  "The valve is replaced every 12 weeks.",
		"filter.txt": "The filter is cleaned after each shift.",
	} {
		if err := os.MkdirAll(corpus, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(corpus, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	questions := filepath.Join(dir, "q.jsonl")
	q := `{"question": "How often is the pump serviced?", "relevant": ["pump.txt"], "kind": "fact"}
{"question": "When is the valve replaced?", "relevant": ["valve.txt"], "kind": "fact"}
{"question": "When is the filter cleaned?", "relevant": ["filter.txt"], "kind": "fact"}
`
	if err := os.WriteFile(questions, []byte(q), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	eval := func(vectors string) (evalReport, string, error) {
		var out, errb bytes.Buffer
		err := run(ctx, []string{"eval", "--corpus", corpus, "--questions", questions, "--k", "1", "--answers", "0", "--json",
			"--embed-model", model, "--dense-size", "16", "--search-vectors", vectors}, &out, &errb)
		var rep evalReport
		if err == nil {
			err = json.Unmarshal(out.Bytes(), &rep)
		}
		return rep, errb.String(), err
	}
	for _, vectors := range []string{"sparse", "dense"} {
		rep, stderr, err := eval(vectors)
		if err != nil {
			t.Fatalf("%s: %v\n%s", vectors, err, stderr)
		}
		if !strings.Contains(rep.Stack, "embed-model=") || !strings.Contains(rep.Stack, "search-vectors="+vectors) {
			t.Errorf("%s: the report's stack %q does not name the stage", vectors, rep.Stack)
		}
		if rep.Overall.Questions != 3 {
			t.Errorf("%s: %d questions evaluated, want 3", vectors, rep.Overall.Questions)
		}
		if vectors == "sparse" && rep.Overall.RecallAtK != 1 {
			t.Errorf("sparse only: recall@1 %.2f, want 1 (each question shares its document's words)", rep.Overall.RecallAtK)
		}
	}
	if _, stderr, err := eval("both"); err == nil || !strings.Contains(stderr+err.Error(), "search-vectors") {
		t.Errorf("--search-vectors both: err %v, stderr %q; want it refused naming the flag", err, stderr)
	}
}
