package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestChatURL(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{in: "http://127.0.0.1:8080", want: "ws://127.0.0.1:8080/v1/chat"},
		{in: "https://rag.example.com/", want: "wss://rag.example.com/v1/chat"},
		{in: "https://rag.example.com/tributary", want: "wss://rag.example.com/tributary/v1/chat"},
		{in: "ws://h:1", want: "ws://h:1/v1/chat"},
		{in: "127.0.0.1:8080", wantErr: true},
		{in: "ftp://h", wantErr: true},
		{in: "", wantErr: true},
		{in: "http://[::1", wantErr: true},
	}
	for _, tt := range tests {
		got, err := chatURL(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("chatURL(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestHumanBytes(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1536, "1.5 KiB"},
		{5 << 20, "5.0 MiB"}, {3 << 30, "3.0 GiB"}, {4 << 40, "4096.0 GiB"},
	}
	for _, tt := range tests {
		if got := humanBytes(tt.in); got != tt.want {
			t.Errorf("humanBytes(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCLIUsageErrors(t *testing.T) {
	t.Setenv("TRIBUTARY_API_KEY", "")
	tests := []struct {
		name string
		args []string
	}{
		{"ask without question", []string{"ask", "--api-key", "k"}},
		{"ask without key", []string{"ask", "hello"}},
		{"ask bad flag", []string{"ask", "--nope", "hello"}},
		{"ingest without files", []string{"ingest", "--api-key", "k"}},
		{"ingest without key", []string{"ingest", "x.md"}},
		{"ingest with zero parallel", []string{"ingest", "x.md", "--api-key", "k", "--parallel", "0"}},
		{"search without query", []string{"search", "--api-key", "k"}},
		{"search without key", []string{"search", "q"}},
		{"eval without corpus", []string{"eval", "--questions", "q.jsonl"}},
		{"eval stages on a server", []string{"eval", "--corpus", "d", "--questions", "q.jsonl", "--server", "http://x", "--api-key", "k", "--no-context"}},
		{"dev extra argument", []string{"dev", "extra"}},
		{"dev bad log level", []string{"dev", "--log-level", "loud"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(context.Background(), tt.args, io.Discard, io.Discard)
			if !errors.Is(err, errUsage) {
				t.Errorf("run(%q) = %v, want errUsage", tt.args, err)
			}
		})
	}
}

// TestIngestReportsServerErrors checks that the API's error body reaches
// the user and the command fails.
func TestIngestReportsServerErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer good" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":{"code":"unauthorized","message":"missing or unknown API key"}}`)
			return
		}
		if r.Method == http.MethodGet {
			_, _ = io.WriteString(w, `{"documents":[]}`)
			return
		}
		if err := r.ParseMultipartForm(1 << 20); err != nil || r.MultipartForm.File["file"] == nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"document_id":"d1","version":2,"status":"accepted"}`)
	}))
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "a.md")
	if err := os.WriteFile(file, []byte("# A\n\ntext\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"ingest", file, "--server", srv.URL, "--api-key", "bad"}, &out, &errb)
	if err == nil || !strings.Contains(err.Error()+errb.String(), "unknown API key") {
		t.Errorf("ingest with a bad key: err %v, stderr %q; want failure naming the API error", err, errb.String())
	}
	out.Reset()
	errb.Reset()
	if err := run(context.Background(), []string{"ingest", file, "--server", srv.URL, "--api-key", "good"}, &out, &errb); err != nil {
		t.Fatalf("ingest: %v (stderr %q)", err, errb.String())
	}
	if got, want := out.String(), file+"\td1\tv2\taccepted\n"; got != want {
		t.Errorf("ingest output %q, want %q", got, want)
	}
	if !strings.Contains(errb.String(), "1/1 files") {
		t.Errorf("progress %q lacks 1/1 files", errb.String())
	}
}
