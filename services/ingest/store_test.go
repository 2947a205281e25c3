package ingest

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestStorePutGetReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatalf("OpenStore: %v", err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	recs := []Record{
		{Tenant: "acme", DocumentID: "a", Version: 3, Status: StatusActive, ContentHash: "sha256:1", Fingerprint: "f1",
			Groups: []string{"hr"}, Metadata: map[string]string{"k": "v"}, ChunkCount: 7, CreatedAt: now, UpdatedAt: now,
			IndexedVersion: 3, IndexedAt: now.Add(time.Second)},
		{Tenant: "globex", DocumentID: "a", Version: 1, Status: StatusDeleted, CreatedAt: now, UpdatedAt: now},
		{Tenant: "acme", DocumentID: "../../etc/passwd", Version: 1, Status: StatusActive,
			Pending: &Pending{Version: 2, Fingerprint: "f2"}, CreatedAt: now, UpdatedAt: now},
		{Tenant: "acme", DocumentID: "文档-1", Version: 1, Status: StatusActive, CreatedAt: now, UpdatedAt: now},
	}
	for _, r := range recs {
		if err := s.Put(r); err != nil {
			t.Fatalf("Put(%q/%q): %v", r.Tenant, r.DocumentID, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Nothing may escape the data directory.
	if _, err := os.Stat(filepath.Join(dir, "..", "etc")); err == nil {
		t.Fatalf("a record escaped the data directory")
	}
	// A write that crashed before its rename leaves a temporary file.
	stale := recordFile(filepath.Join(dir, "documents"), "acme", "a") + ".tmp"
	if err := os.WriteFile(stale, []byte("{torn"), 0o640); err != nil {
		t.Fatal(err)
	}

	s2, err := OpenStore(dir)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s2.Close()
	if got := s2.Len(); got != len(recs) {
		t.Fatalf("Len() = %d, want %d", got, len(recs))
	}
	for _, want := range recs {
		got, ok := s2.Get(want.Tenant, want.DocumentID)
		if !ok {
			t.Fatalf("Get(%q, %q) missing after reopen", want.Tenant, want.DocumentID)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Get(%q, %q) = %+v, want %+v", want.Tenant, want.DocumentID, got, want)
		}
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale temporary file not removed: %v", err)
	}
}

func TestStoreRefusesSecondOpenAndCorruptRecords(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatalf("OpenStore: %v", err)
	}
	if _, err := OpenStore(dir); err == nil || !strings.Contains(err.Error(), "lock") {
		t.Fatalf("second OpenStore = %v, want a lock error", err)
	}
	if err := s.Put(Record{Tenant: "t", DocumentID: "d", Version: 1, Status: StatusActive}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		content string
		want    string
	}{
		{"truncated", `{"format":1,"record":{"tenant":"t"`, "read record"},
		{"future format", `{"format":99,"record":{"tenant":"t","document_id":"d"}}`, "unknown format"},
		{"wrong file", `{"format":1,"record":{"tenant":"t","document_id":"other"}}`, "does not match"},
	}
	path := recordFile(filepath.Join(dir, "documents"), "t", "d")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(path, []byte(tt.content), 0o640); err != nil {
				t.Fatal(err)
			}
			s, err := OpenStore(dir)
			if err == nil {
				s.Close()
				t.Fatalf("OpenStore with %s record succeeded, want error", tt.name)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("OpenStore error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestStoreGetReturnsCopies(t *testing.T) {
	s, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := Record{Tenant: "t", DocumentID: "d", Groups: []string{"a"}, Metadata: map[string]string{"k": "v"}}
	if err := s.Put(r); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Get("t", "d")
	got.Groups[0] = "changed"
	got.Metadata["k"] = "changed"
	again, _ := s.Get("t", "d")
	if again.Groups[0] != "a" || again.Metadata["k"] != "v" {
		t.Fatalf("Get returned shared slices or maps: %+v", again)
	}
}
