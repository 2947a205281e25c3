package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"
)

// exportServer builds the real log, service, endpoints and handler over
// records for two tenants and several types, and serves them.
func exportServer(t *testing.T) *httptest.Server {
	t.Helper()
	ctx := context.Background()
	l, err := Open(ctx, t.TempDir(), testKeys(t), WithSegmentSize(2000))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var msgs []kafka.Message
	// Offsets double as seconds past 10:00: acme 0-9, globex 10-14.
	for i := int64(0); i < 15; i++ {
		tenant, typ, topic := "acme", "tributary.query.received", "tributary.queries.received.v1"
		if i >= 10 {
			tenant = "globex"
		}
		if i%5 == 4 {
			typ, topic = "tributary.audit.auth_failed", "tributary.audit.events.v1"
		}
		msgs = append(msgs, testMsg(topic, 0, i, tenant, typ))
	}
	if _, err := l.Append(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	keys := map[string]Principal{
		"k-officer":    {Tenant: "acme", Groups: []string{"staff", GroupCompliance}, Name: "officer"},
		"k-admin":      {Tenant: "ops", Groups: []string{GroupCompliance, GroupComplianceAdmin}, Name: "admin"},
		"k-staff":      {Tenant: "acme", Groups: []string{"staff"}, Name: "staff"},
		"k-admin-only": {Tenant: "ops", Groups: []string{GroupComplianceAdmin}, Name: "admin-only"},
	}
	auth := AuthenticatorFunc(func(k string) (Principal, bool) { p, ok := keys[k]; return p, ok })
	svc := LoggingMiddleware(slog.New(slog.DiscardHandler))(NewService(l, nil, nil))
	srv := httptest.NewServer(MakeHTTPHandler(MakeEndpoints(svc), auth, slog.New(slog.DiscardHandler), nil))
	t.Cleanup(srv.Close)
	return srv
}

func TestExportHTTP(t *testing.T) {
	srv := exportServer(t)
	tests := []struct {
		name       string
		key        string
		query      url.Values
		wantStatus int
		wantOffs   []int64
	}{
		{"no key", "", nil, 401, nil},
		{"unknown key", "k-nobody", nil, 401, nil},
		{"key without compliance group", "k-staff", nil, 403, nil},
		{"admin group alone is not enough", "k-admin-only", nil, 403, nil},
		{"officer sees own tenant only", "k-officer", nil, 200, []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{"officer asking for own tenant", "k-officer", url.Values{"tenant": {"acme"}}, 200, []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{"officer asking for another tenant", "k-officer", url.Values{"tenant": {"globex"}}, 403, nil},
		{"admin sees every tenant", "k-admin", nil, 200, []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}},
		{"admin filters a tenant", "k-admin", url.Values{"tenant": {"globex"}}, 200, []int64{10, 11, 12, 13, 14}},
		{"time range, since inclusive, until exclusive", "k-officer",
			url.Values{"since": {"2026-11-28T10:00:03Z"}, "until": {"2026-11-28T10:00:06Z"}}, 200, []int64{3, 4, 5}},
		{"exact type", "k-admin", url.Values{"type": {"tributary.audit.auth_failed"}}, 200, []int64{4, 9, 14}},
		{"type prefix", "k-officer", url.Values{"type": {"tributary.audit.*"}}, 200, []int64{4, 9}},
		{"several types", "k-admin", url.Values{"type": {"tributary.audit.auth_failed,tributary.query.received"}, "since": {"2026-11-28T10:00:13Z"}}, 200, []int64{13, 14}},
		{"nothing matches", "k-officer", url.Values{"since": {"2027-01-01"}}, 200, nil},
		{"bad since", "k-officer", url.Values{"since": {"yesterday"}}, 400, nil},
		{"until before since", "k-officer", url.Values{"since": {"2026-11-28T10:00:06Z"}, "until": {"2026-11-28T10:00:03Z"}}, 400, nil},
		{"bad type pattern", "k-officer", url.Values{"type": {"a*b"}}, 400, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", srv.URL+"/v1/audit/export?"+tt.query.Encode(), nil)
			if tt.key != "" {
				req.Header.Set("Authorization", "Bearer "+tt.key)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status = %d (%s), want %d", resp.StatusCode, b, tt.wantStatus)
			}
			if resp.StatusCode != 200 {
				var e struct {
					Error struct{ Code, Message string }
				}
				if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || e.Error.Code == "" {
					t.Errorf("error body: %+v, %v", e, err)
				}
				return
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-ndjson") {
				t.Errorf("Content-Type = %q", ct)
			}
			var offs []int64
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				r, err := UnmarshalRecord(sc.Bytes())
				if err != nil {
					t.Fatalf("line %q: %v", sc.Text(), err)
				}
				if r.Seq != uint64(r.Offset)+1 {
					t.Errorf("record seq %d for offset %d", r.Seq, r.Offset)
				}
				offs = append(offs, r.Offset)
			}
			if !equalInts(offs, tt.wantOffs) {
				t.Errorf("offsets = %v, want %v", offs, tt.wantOffs)
			}
			if got := resp.Trailer.Get(TrailerStatus); got != "ok" {
				t.Errorf("trailer %s = %q, want ok", TrailerStatus, got)
			}
			if got := resp.Trailer.Get(TrailerRecords); got != itoa(len(tt.wantOffs)) {
				t.Errorf("trailer %s = %q, want %d", TrailerRecords, got, len(tt.wantOffs))
			}
		})
	}
	resp, err := http.Post(srv.URL+"/v1/audit/export", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST status = %d, want 405", resp.StatusCode)
	}
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestExportReportsCorruptionInTrailer tampers with the log under a
// running service: the stream stops at the bad record and the trailer
// says why, so a client can tell a cut-short export from a complete one.
// TestExportSummaryLine: with summary=1 the export ends with one line
// saying what the trailers say, for browsers, which cannot read trailers.
func TestExportSummaryLine(t *testing.T) {
	srv := exportServer(t)
	req, _ := http.NewRequest("GET", srv.URL+"/v1/audit/export?summary=1&tenant=globex", nil)
	req.Header.Set("Authorization", "Bearer k-admin")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var last struct {
		Summary *ExportSummary `json:"summary"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || last.Summary == nil {
		t.Fatalf("last line %q: %v, want a summary", lines[len(lines)-1], err)
	}
	if s := last.Summary; s.Status != "ok" || s.Records != 5 || s.Records != len(lines)-1 || s.Shredded == nil {
		t.Errorf("summary %+v over %d record lines, want ok and 5", *s, len(lines)-1)
	}
	if got := resp.Trailer.Get(TrailerRecords); got != "5" {
		t.Errorf("trailer %s = %q with summary on, want 5", TrailerRecords, got)
	}
}

func TestExportReportsCorruptionInTrailer(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, err := Open(ctx, dir, testKeys(t))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var msgs []kafka.Message
	for i := int64(0); i < 5; i++ {
		msgs = append(msgs, testMsg("tributary.queries.received.v1", 0, i, "acme", "tributary.query.received"))
	}
	if _, err := l.Append(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	_, spans := frames(t, segPath(dir, 0))
	edit(t, segPath(dir, 0), func(b []byte) []byte { b[spans[4].end-5] ^= 1; /* frame 0 is the key frame */ return b })
	auth := AuthenticatorFunc(func(string) (Principal, bool) {
		return Principal{Tenant: "acme", Groups: []string{GroupCompliance}, Name: "o"}, true
	})
	srv := httptest.NewServer(MakeHTTPHandler(MakeEndpoints(NewService(l, nil, nil)), auth, slog.New(slog.DiscardHandler), nil))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/v1/audit/export", nil)
	req.Header.Set("Authorization", "Bearer x")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if n := strings.Count(string(body), "\n"); n != 3 {
		t.Errorf("export streamed %d records before the bad one, want 3", n)
	}
	if st := resp.Trailer.Get(TrailerStatus); !strings.HasPrefix(st, "error:") || !strings.Contains(st, "authentication failed") {
		t.Errorf("trailer %s = %q, want the corruption", TrailerStatus, st)
	}
}
