package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLLMReferenceOutput(t *testing.T) {
	want, err := os.ReadFile(filepath.Join("testdata", "stories260K_reference.txt"))
	if err != nil {
		t.Fatal(err)
	}
	model := filepath.Join("..", "..", "models", "stories260K.gguf")
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"llm", "--model", model}, &stdout, &stderr); err != nil {
		t.Fatalf("tributary llm: %v (stderr %q)", err, stderr.String())
	}
	if got := stdout.String(); got != string(want) {
		t.Errorf("tributary llm output differs from llama2.c's reference\ngot:\n%q\nwant:\n%q", got, want)
	}
}

func TestLLMPrompt(t *testing.T) {
	model := filepath.Join("..", "..", "models", "stories260K.gguf")
	tests := []struct {
		name string
		args []string
		want string // prefix of stdout
	}{
		{"prompt printed first", []string{"--prompt", "Once upon a time", "--max-tokens", "5"}, "Once upon a time"},
		{"greedy continuation of the reference", []string{"--prompt", "Once upon a time, there was a little girl", "--max-tokens", "3"}, "Once upon a time, there was a little girl named Lily."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"llm", "--model", model}, tt.args...)
			if err := run(context.Background(), args, &stdout, &stderr); err != nil {
				t.Fatalf("run(%q): %v", args, err)
			}
			if !strings.HasPrefix(stdout.String(), tt.want) {
				t.Errorf("run(%q) = %q, want prefix %q", args, stdout.String(), tt.want)
			}
		})
	}
}

func TestLLMSeededSamplingIsReproducible(t *testing.T) {
	model := filepath.Join("..", "..", "models", "stories260K.gguf")
	gen := func(seed string) string {
		var stdout, stderr bytes.Buffer
		args := []string{"llm", "--model", model, "--temperature", "1", "--seed", seed, "--max-tokens", "40"}
		if err := run(context.Background(), args, &stdout, &stderr); err != nil {
			t.Fatalf("run(%q): %v", args, err)
		}
		return stdout.String()
	}
	a, b, c := gen("7"), gen("7"), gen("8")
	if a != b {
		t.Errorf("same seed gave different text:\n%q\n%q", a, b)
	}
	if a == c {
		t.Errorf("seeds 7 and 8 gave the same text %q", a)
	}
}

func TestLLMUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"llm"}, &stdout, &stderr); err == nil {
		t.Error("llm without --model succeeded")
	}
	if err := run(context.Background(), []string{"llm", "--model", "does-not-exist.gguf"}, &stdout, &stderr); err == nil {
		t.Error("llm with a missing model succeeded")
	}
}
