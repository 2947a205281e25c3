package ingest

import (
	"bytes"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/tributary-rag/tributary/pkg/chunk"
	"github.com/tributary-rag/tributary/pkg/docparse"
)

// TestUploadOfLoopingPDFIsRefusedAndStops uploads the 553-byte PDF whose
// trailer's /Prev points at its own xref (the PDF library loops on it
// forever), and the same PDF with a comment inside /Prev, which docparse's
// xref check does not read, so the library loops until the parse child is
// killed: each upload gets 422 within the parse limit, and in the second
// after, the service process uses no CPU.
func TestUploadOfLoopingPDFIsRefusedAndStops(t *testing.T) {
	pdf, err := os.ReadFile("../../pkg/docparse/testdata/xref-prev-self.pdf")
	if err != nil {
		t.Fatal(err)
	}
	pool, err := docparse.NewPool(t.Context(), docparse.PoolOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	const limit = 2 * time.Second
	c, err := NewDocChunker(chunk.Options{}, docparse.Limits{Timeout: limit}, pool)
	if err != nil {
		t.Fatal(err)
	}
	st, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc := NewService(st, c, &recordingEmitter{})
	srv := httptest.NewServer(MakeHTTPHandler(MakeEndpoints(svc), testKeys(), slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)

	tests := []struct {
		name string
		pdf  []byte
	}{
		{"prev-self", pdf},
		{"prev-hidden", bytes.Replace(pdf, []byte("/Prev 360"), []byte("/Prev %x\n360"), 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body bytes.Buffer
			mw := multipart.NewWriter(&body)
			fw, err := mw.CreateFormFile("file", tt.name+".pdf")
			if err != nil {
				t.Fatal(err)
			}
			fw.Write(tt.pdf)
			mw.Close()
			req, err := http.NewRequestWithContext(t.Context(), "POST", srv.URL+"/v1/documents", &body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", mw.FormDataContentType())
			req.Header.Set("Authorization", "Bearer acme-admin")
			start := time.Now()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if took := time.Since(start); resp.StatusCode != http.StatusUnprocessableEntity || took > limit+time.Second {
				t.Fatalf("POST %s = %d after %v, want 422 within %v", tt.name, resp.StatusCode, took, limit)
			}
			before := processCPU(t)
			time.Sleep(time.Second)
			if used := processCPU(t) - before; used > 150*time.Millisecond {
				t.Errorf("process used %v of CPU in the second after the 422, want idle", used)
			}
		})
	}
}

// processCPU returns this process's user+system CPU time.
func processCPU(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
