package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary-rag/tributary/pkg/daemon/daemontest"
	"github.com/tributary-rag/tributary/pkg/eventually"
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
	eventually.NoError(t, "the serving line in stderr", 30*time.Second, func() error {
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
		if addr == "" {
			return fmt.Errorf("stderr: %s", stderr.String())
		}
		return nil
	})

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
		{"every interface without a key", []string{"inference", "--model", "x.gguf", "--listen", ":8080"}},
		{"a public address without a key", []string{"inference", "--model", "x.gguf", "--listen", "0.0.0.0:8080"}},
	}
	for _, tt := range tests {
		var stderr bytes.Buffer
		if err := run(context.Background(), tt.args, io.Discard, &stderr); !errors.Is(err, errUsage) {
			t.Errorf("%s: run(%q) = %v, want errUsage", tt.name, tt.args, err)
		}
	}
	// A service's TRIBUTARY_HTTP_ADDR in the same shell does not move the
	// model server.
	t.Setenv("TRIBUTARY_HTTP_ADDR", "0.0.0.0:9999")
	if c, err := parseInferenceFlags([]string{"--model", "x.gguf"}, io.Discard); err != nil || c.listen != "127.0.0.1:8080" {
		t.Errorf("listen with TRIBUTARY_HTTP_ADDR set: %q, %v; want the loopback default", c.listen, err)
	}
	t.Setenv("TRIBUTARY_INFERENCE_API_KEY", "k1, k2")
	if c, err := parseInferenceFlags([]string{"--model", "x.gguf", "--listen", ":8080"}, io.Discard); err != nil || len(c.apiKeys) != 2 {
		t.Errorf("keys from TRIBUTARY_INFERENCE_API_KEY on every interface: %q, %v; want two keys, accepted", c.apiKeys, err)
	}
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"inference", "--model", filepath.Join(t.TempDir(), "missing.gguf"), "--listen", "127.0.0.1:0"}, io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), "load model") {
		t.Errorf("missing model: err = %v, want a load model error", err)
	}
}
