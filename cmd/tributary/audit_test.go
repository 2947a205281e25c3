package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/services/audit"
)

// writeAuditLog writes n records for tenants acme and globex into dir
// with a key file at dir/audit.key, as the audit service does, and
// returns the open log (closed at cleanup).
func writeAuditLog(t *testing.T, dir string, n int) *audit.Log {
	t.Helper()
	ctx := context.Background()
	keys, err := audit.LoadKeyFile(filepath.Join(dir, "audit.key"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(ctx, dir, keys, audit.WithSegmentSize(4096))
	if err != nil {
		t.Fatal(err)
	}
	var msgs []kafka.Message
	for i := 0; i < n; i++ {
		tenant := []string{"acme", "globex"}[i%2]
		env := events.Envelope{ID: fmt.Sprint("e", i), Source: "test", Type: events.TypeQueryReceived,
			Time: time.Date(2026, 11, 28, 10, i, 0, 0, time.UTC), TenantID: tenant}
		msgs = append(msgs, kafka.Message{Topic: "tributary.queries.received.v1", Offset: int64(i), Headers: env.Headers(),
			Value: []byte(fmt.Sprintf(`{"tenant_id":%q,"question":"q%d"}`, tenant, i))})
	}
	if _, err := l.Append(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestAuditVerifyCommand(t *testing.T) {
	dir := t.TempDir()
	l := writeAuditLog(t, dir, 60)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"audit", "verify", "--data-dir", dir}, &out, &errOut); err != nil {
		t.Fatalf("verify of a good log = %v\n%s%s", err, out.String(), errOut.String())
	}
	if !strings.HasPrefix(out.String(), "OK ") || !strings.Contains(out.String(), "60 records") || !strings.Contains(out.String(), "authenticated") {
		t.Errorf("verify output = %q", out.String())
	}

	// Without a key: structure only, said so.
	noKey := t.TempDir()
	segs, _ := filepath.Glob(filepath.Join(dir, "seg-*.aud"))
	for _, s := range segs {
		b, _ := os.ReadFile(s)
		os.WriteFile(filepath.Join(noKey, filepath.Base(s)), b, 0o600)
	}
	out.Reset()
	errOut.Reset()
	if err := run(context.Background(), []string{"audit", "verify", "--data-dir", noKey}, &out, &errOut); err != nil {
		t.Fatalf("keyless verify = %v", err)
	}
	if !strings.Contains(errOut.String(), "structure and hash chain only") {
		t.Errorf("keyless verify did not warn: %q", errOut.String())
	}
	if _, err := os.Stat(filepath.Join(noKey, "audit.key")); err == nil {
		t.Error("verify created a key file")
	}

	// Tampered: one byte of the second segment.
	if len(segs) < 2 {
		t.Fatalf("want several segments, got %d", len(segs))
	}
	b, _ := os.ReadFile(segs[1])
	b[len(b)-100] ^= 0x10
	os.WriteFile(segs[1], b, 0o600)
	out.Reset()
	err := run(context.Background(), []string{"audit", "verify", "--data-dir", dir}, &out, &errOut)
	if err == nil || !strings.Contains(out.String(), "FAIL") || !strings.Contains(out.String(), filepath.Base(segs[1])) {
		t.Errorf("verify of a tampered log = %v, output %q; want a failure naming %s", err, out.String(), filepath.Base(segs[1]))
	}
	if err := run(context.Background(), []string{"audit", "verify"}, io.Discard, io.Discard); err != errUsage {
		t.Errorf("verify without --data-dir = %v, want errUsage", err)
	}
}

// TestAuditVerifyFormat1 verifies the format-1 log of an earlier release
// (the audit service's fixture) with its key file, and fails on a
// changed record.
func TestAuditVerifyFormat1(t *testing.T) {
	src := filepath.Join("..", "..", "services", "audit", "testdata", "v1log")
	dir := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"audit", "verify", "--data-dir", dir}, &out, &errOut); err != nil {
		t.Fatalf("verify of the format-1 log = %v\n%s%s", err, out.String(), errOut.String())
	}
	if !strings.HasPrefix(out.String(), "OK ") || !strings.Contains(out.String(), "300 records in 9 segments") || !strings.Contains(out.String(), "authenticated") {
		t.Errorf("verify output = %q", out.String())
	}
	seg := filepath.Join(dir, "seg-00000000000000000002.aud")
	b, _ := os.ReadFile(seg)
	b[len(b)-200] ^= 0x10
	os.WriteFile(seg, b, 0o600)
	out.Reset()
	err = run(context.Background(), []string{"audit", "verify", "--data-dir", dir}, &out, &errOut)
	if err == nil || !strings.Contains(out.String(), "FAIL") || !strings.Contains(out.String(), "seg-00000000000000000002.aud") {
		t.Errorf("verify of a changed format-1 record = %v, output %q", err, out.String())
	}
}

func TestAuditExportCommand(t *testing.T) {
	dir := t.TempDir()
	l := writeAuditLog(t, dir, 10)
	keys := map[string]audit.Principal{
		"k-officer": {Tenant: "acme", Groups: []string{audit.GroupCompliance}, Name: "officer"},
		"k-staff":   {Tenant: "acme", Groups: []string{"staff"}, Name: "staff"},
	}
	auth := audit.AuthenticatorFunc(func(k string) (audit.Principal, bool) { p, ok := keys[k]; return p, ok })
	srv := httptest.NewServer(audit.MakeHTTPHandler(audit.MakeEndpoints(audit.NewService(l, nil, nil)), auth, slog.New(slog.DiscardHandler), nil))
	defer srv.Close()

	tests := []struct {
		name      string
		args      []string
		wantErr   string
		wantLines int
	}{
		{"own tenant", []string{"--api-key", "k-officer"}, "", 5},
		{"time window", []string{"--api-key", "k-officer", "--since", "2026-11-28T10:02:00Z", "--until", "2026-11-28T10:06:00Z"}, "", 2},
		{"type filter", []string{"--api-key", "k-officer", "--type", "tributary.audit.*"}, "", 0},
		{"forbidden", []string{"--api-key", "k-staff"}, "403", 0},
		{"unknown key", []string{"--api-key", "k-nope-123"}, "401", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			args := append([]string{"audit", "export", "--server", srv.URL}, tt.args...)
			err := run(context.Background(), args, &out, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("export = %v, want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("export = %v", err)
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if out.Len() == 0 {
				lines = nil
			}
			if len(lines) != tt.wantLines {
				t.Fatalf("export gave %d lines, want %d:\n%s", len(lines), tt.wantLines, out.String())
			}
			for _, line := range lines {
				r, err := audit.UnmarshalRecord([]byte(line))
				if err != nil || r.Tenant != "acme" {
					t.Errorf("line %q: %+v, %v", line, r, err)
				}
			}
		})
	}
}

// TestAuditKeyCommands runs rotate, rewrap and shred against a service on
// a key file: a non-admin key is refused, rotate and shred say the key
// file cannot do them, rewrap rewraps, and shred wants --tenant and --yes.
func TestAuditKeyCommands(t *testing.T) {
	dir := t.TempDir()
	l := writeAuditLog(t, dir, 10)
	keys, err := audit.LoadKeyFile(filepath.Join(dir, "audit.key"))
	if err != nil {
		t.Fatal(err)
	}
	principals := map[string]audit.Principal{
		"k-admin":   {Tenant: "bank", Groups: []string{audit.GroupCompliance, audit.GroupComplianceAdmin}, Name: "admin"},
		"k-officer": {Tenant: "acme", Groups: []string{audit.GroupCompliance}, Name: "officer"},
	}
	auth := audit.AuthenticatorFunc(func(k string) (audit.Principal, bool) { p, ok := principals[k]; return p, ok })
	srv := httptest.NewServer(audit.MakeHTTPHandler(audit.MakeEndpoints(audit.NewService(l, keys, nil)), auth, slog.New(slog.DiscardHandler), nil))
	defer srv.Close()
	tests := []struct {
		args    []string
		wantErr string
		wantOut string
	}{
		{[]string{"rotate", "--api-key", "k-officer"}, "403", ""},
		{[]string{"rotate", "--api-key", "k-admin"}, "501", ""},
		{[]string{"rewrap", "--api-key", "k-admin"}, "", "rewrapped "},
		{[]string{"shred", "--api-key", "k-admin", "--tenant", "acme"}, "usage", ""},
		{[]string{"shred", "--api-key", "k-admin", "--tenant", "acme", "--yes"}, "501", ""},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		err := run(context.Background(), append([]string{"audit", tt.args[0], "--server", srv.URL}, tt.args[1:]...), &out, io.Discard)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%v = %v, want an error with %q", tt.args, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !strings.Contains(out.String(), tt.wantOut) {
			t.Errorf("%v = %q, %v; want %q", tt.args, out.String(), err, tt.wantOut)
		}
	}
}
