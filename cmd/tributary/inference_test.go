package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary-rag/tributary/pkg/daemon/daemontest"
)

// TestInferenceServe starts `tributary inference` on a free port, asks for
// a completion over HTTP, and shuts it down by cancelling its context.
func TestInferenceServe(t *testing.T) {
	model := filepath.Join("..", "..", "models", "stories260K.gguf")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr daemontest.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"inference", "--model", model, "--listen", "127.0.0.1:0", "--max-batch", "2", "--max-queue", "4", "--context", "256"}, io.Discard, &stderr)
	}()

	var addr string
	deadline := time.Now().Add(30 * time.Second)
	for addr == "" {
		for _, line := range strings.Split(stderr.String(), "\n") {
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "serving" {
				addr = rec.Addr
			}
		}
		select {
		case err := <-done:
			t.Fatalf("inference exited early: %v; stderr %s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no serving line in stderr: %s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}

	resp, err := http.Post("http://"+addr+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"stories260K","messages":[{"role":"user","content":"Tell me a story"}],"max_tokens":16,"temperature":0}`))
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Model   string `json:"model"`
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
		Usage struct {
			CompletionTokens int `json:"completion_tokens"`
		} `json:"usage"`
	}
	err = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || body.Model != "stories260K" || len(body.Choices) != 1 || body.Usage.CompletionTokens == 0 {
		t.Fatalf("chat completion: status %d, err %v, body %+v", resp.StatusCode, err, body)
	}
	resp, err = http.Post("http://"+addr+"/v1/completions", "application/json", strings.NewReader(`{"prompt":"a","max_tokens":257}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("max_tokens beyond --context: status %d, want 400", resp.StatusCode)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("inference returned %v after shutdown, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("inference did not shut down")
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Errorf("server still answers after shutdown")
	}
}

func TestInferenceFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"no model", []string{"inference"}},
		{"bad batch", []string{"inference", "--model", "x.gguf", "--max-batch", "0"}},
		{"bad queue", []string{"inference", "--model", "x.gguf", "--max-queue", "-1"}},
		{"bad log level", []string{"inference", "--model", "x.gguf", "--log-level", "loud"}},
		{"unknown flag", []string{"inference", "--model", "x.gguf", "--gpu"}},
		{"extra argument", []string{"inference", "--model", "x.gguf", "extra"}},
	}
	for _, tt := range tests {
		var stderr bytes.Buffer
		if err := run(context.Background(), tt.args, io.Discard, &stderr); !errors.Is(err, errUsage) {
			t.Errorf("%s: run(%q) = %v, want errUsage", tt.name, tt.args, err)
		}
	}
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"inference", "--model", filepath.Join(t.TempDir(), "missing.gguf"), "--listen", "127.0.0.1:0"}, io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), "load model") {
		t.Errorf("missing model: err = %v, want a load model error", err)
	}
}
