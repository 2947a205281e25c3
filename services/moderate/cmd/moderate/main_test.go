package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunRejectsBadConfig checks that bad settings stop the service before
// it touches Kafka, with a message naming the variable.
func TestRunRejectsBadConfig(t *testing.T) {
	brokenBundle := t.TempDir()
	if err := os.WriteFile(filepath.Join(brokenBundle, "p.rego"), []byte("package tributary.input\ndecision := {\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"question limit", map[string]string{"TRIBUTARY_MAX_QUESTION_RUNES": "0"}, "TRIBUTARY_MAX_QUESTION_RUNES"},
		{"redactions", map[string]string{"TRIBUTARY_MAX_REDACTIONS": "-1"}, "TRIBUTARY_MAX_REDACTIONS"},
		{"sentence", map[string]string{"TRIBUTARY_MAX_SENTENCE_RUNES": "3"}, "TRIBUTARY_MAX_SENTENCE_RUNES"},
		{"missing bundle", map[string]string{"TRIBUTARY_POLICY_DIR": filepath.Join(brokenBundle, "nope")}, "policy bundle"},
		{"broken bundle", map[string]string{"TRIBUTARY_POLICY_DIR": brokenBundle}, "rego_parse_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			err := run(context.Background(), nil, getenv, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run = %v, want an error naming %s", err, tt.want)
			}
		})
	}
}
