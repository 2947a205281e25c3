package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestUploadLimits checks that one key cannot take what every key shares:
// a key holding its upload slots gets 429 at once while another key's
// upload goes through, a key over its rate gets 429 with Retry-After, and
// a body slower than the upload timeout gets 408 and frees the slot.
func TestUploadLimits(t *testing.T) {
	svc, _, _ := newTestService(t, t.TempDir())
	h := MakeHTTPHandler(MakeEndpoints(svc), testKeys(), slog.New(slog.DiscardHandler),
		WithHTTPMaxUploads(4), WithHTTPUploadLimits(1, 2, 2, 500*time.Millisecond))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	ct, body := multipartBody(t, multipartField{name: "file", filename: "a.txt", contentType: "text/plain", value: "Aurora ships in March."})
	post := func(key string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+"/v1/documents", bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e errorBody
		_ = json.Unmarshal(b, &e)
		return resp, e.Error.Code
	}

	// A slow client of acme: headers and part of the body, then silence.
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	head := "POST /v1/documents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer acme-admin\r\nContent-Type: " + ct +
		"\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
	if _, err := conn.Write(append([]byte(head), body[:20]...)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the slow upload takes acme's one slot

	if resp, code := post("acme-hr"); resp.StatusCode != http.StatusTooManyRequests || code != "too_many_uploads" || resp.Header.Get("Retry-After") == "" {
		t.Errorf("second upload of a key with its slot taken: %d %q, want 429 too_many_uploads with Retry-After", resp.StatusCode, code)
	}
	if resp, code := post("globex-root"); resp.StatusCode != http.StatusAccepted {
		t.Errorf("another key's upload while acme's is slow: %d %q, want 202", resp.StatusCode, code)
	}

	// The slow body runs into the upload timeout: 408, and the slot is free.
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	reply, _ := io.ReadAll(conn)
	if !bytes.HasPrefix(reply, []byte("HTTP/1.1 408")) {
		t.Errorf("slow body: reply %q, want 408", firstLine(reply))
	}
	if resp, code := post("acme-hr"); resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
		t.Errorf("upload after the slow one timed out: %d %q, want it served", resp.StatusCode, code)
	}

	// globex has spent 1 of its 2 burst tokens; the next goes, then 429.
	post("globex-root")
	resp, code := post("globex-root")
	if resp.StatusCode != http.StatusTooManyRequests || code != "rate_limited" || resp.Header.Get("Retry-After") == "" {
		t.Errorf("upload over the key's rate: %d %q, want 429 rate_limited with Retry-After", resp.StatusCode, code)
	}
}

// TestExpansionLimits refuses a document that makes too many chunks or
// too much text with 413 naming the limit, before any event leaves.
func TestExpansionLimits(t *testing.T) {
	long := strings.Repeat("Aurora ships in March and the team meets on Tuesdays. ", 200)
	for _, tt := range []struct {
		name  string
		opt   Option
		limit string
	}{
		{"chunks", WithExpansionLimits(2, 0), "max-chunks"},
		{"text", WithExpansionLimits(0, 1000), "max-text-bytes"},
	} {
		svc, em, _ := newTestService(t, t.TempDir(), tt.opt)
		_, err := svc.Ingest(context.Background(), acme, Document{ID: "big", ContentType: "text/plain", Content: []byte(long)})
		if status, _ := HTTPStatus(err); status != http.StatusRequestEntityTooLarge || !strings.Contains(err.Error(), tt.limit) {
			t.Errorf("%s: Ingest = %v (%d), want 413 naming %s", tt.name, err, status, tt.limit)
		}
		if a, r, d := em.counts(); a != 0 || d != 0 {
			t.Errorf("%s: %d accepted, %d rejected, %d deleted events for a refused document, want none accepted", tt.name, a, r, d)
		}
	}
}

func firstLine(b []byte) string {
	line, _, _ := strings.Cut(string(b), "\r\n")
	return line
}
