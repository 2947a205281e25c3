package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary-rag/tributary/pkg/daemon/daemontest"
	"github.com/tributary-rag/tributary/pkg/encoder"
	"github.com/tributary-rag/tributary/pkg/eventually"
)

// TestInferenceEmbedOnly starts `tributary inference --embed-model` alone
// (no generation model) on a synthetic encoder and embeds over HTTP.
func TestInferenceEmbedOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "synth-enc")
	s := encoder.Synthetic{Config: encoder.Config{Hidden: 16, Layers: 1, Heads: 2, Intermediate: 32, MaxPositions: 32},
		Vocab: []string{"paid", "leave"}, Seed: 9}
	if err := s.Write(dir); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr daemontest.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"inference", "--embed-model", dir, "--listen", "127.0.0.1:0", "--api-key", "k1"}, io.Discard, &stderr)
	}()
	var addr string
	eventually.NoError(t, "the serving line in stderr", 30*time.Second, func() error {
		for _, line := range strings.Split(stderr.String(), "\n") {
			var rec struct {
				Msg        string `json:"msg"`
				Addr       string `json:"addr"`
				EmbedModel string `json:"embed_model"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "serving" && rec.EmbedModel == "synth-enc" {
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
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/embeddings", strings.NewReader(`{"model":"synth-enc","input":["paid leave","leave"]}`))
	req.Header.Set("Authorization", "Bearer k1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Model string `json:"model"`
		Data  []struct {
			Embedding []float32 `json:"embedding"`
		} `json:"data"`
	}
	err = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || body.Model != "synth-enc" || len(body.Data) != 2 || len(body.Data[0].Embedding) != 16 {
		t.Fatalf("embeddings: status %d, err %v, body %+v", resp.StatusCode, err, body)
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
}
