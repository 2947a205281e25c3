package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tributary-rag/tributary/pkg/daemon/daemontest"
)

// TestRunRejectsBadConfig checks that bad settings stop the service before
// it touches Kafka, with a message naming the variable.
func TestRunRejectsBadConfig(t *testing.T) {
	brokenBundle := t.TempDir()
	if err := os.WriteFile(filepath.Join(brokenBundle, "p.rego"), []byte("package tributary.input\ndecision := {\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	daemontest.RejectsConfig(t, run, nil, []daemontest.BadConfig{
		{Name: "question limit", Env: map[string]string{"TRIBUTARY_MAX_QUESTION_RUNES": "0"}, Want: []string{"TRIBUTARY_MAX_QUESTION_RUNES"}},
		{Name: "redactions", Env: map[string]string{"TRIBUTARY_MAX_REDACTIONS": "-1"}, Want: []string{"TRIBUTARY_MAX_REDACTIONS"}},
		{Name: "sentence", Env: map[string]string{"TRIBUTARY_MAX_SENTENCE_RUNES": "3"}, Want: []string{"TRIBUTARY_MAX_SENTENCE_RUNES"}},
		{Name: "missing bundle", Env: map[string]string{"TRIBUTARY_POLICY_DIR": filepath.Join(brokenBundle, "nope")}, Want: []string{"policy bundle"}},
		{Name: "broken bundle", Env: map[string]string{"TRIBUTARY_POLICY_DIR": brokenBundle}, Want: []string{"rego_parse_error"}},
	})
}
