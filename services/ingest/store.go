package ingest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Document statuses kept in a Record.
const (
	StatusActive  = "active"
	StatusDeleted = "deleted"
)

// storeFormat is the version of the on-disk record format. A reader refuses
// records of a newer format instead of guessing.
const storeFormat = 1

// Record is the durable state of one document of one tenant: its current
// version and what that version was made from.
type Record struct {
	Tenant      string            `json:"tenant"`
	DocumentID  string            `json:"document_id"`
	Version     int               `json:"version"`
	Status      string            `json:"status"`
	ContentHash string            `json:"content_hash"`
	Fingerprint string            `json:"fingerprint"`
	Title       string            `json:"title,omitempty"`
	ContentType string            `json:"content_type,omitempty"`
	Source      string            `json:"source,omitempty"`
	Groups      []string          `json:"groups,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	ChunkCount  int               `json:"chunk_count"`
	Size        int64             `json:"size"`
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
	// Pending is the version whose events are being published. It is
	// written before the first event leaves and cleared when the version is
	// recorded, so a version number that may have reached the topics is
	// never handed to different content after a crash.
	Pending *Pending `json:"pending,omitempty"`
	// IndexedVersion is the newest version the retrieve service has
	// announced as fully indexed (tributary.document.indexed), 0 for none.
	// It only grows. The current version is indexed when it equals
	// Version; it may also name a pending version (the announcement can
	// arrive before the version is recorded, or for a version whose
	// recording a crash interrupted) or an older one (while the current
	// version is still being indexed, the older one is what searches find).
	IndexedVersion int `json:"indexed_version,omitempty"`
	// IndexedAt is when IndexedVersion was recorded.
	IndexedAt time.Time `json:"indexed_at,omitzero"`
}

// Pending is a version that was reserved but not yet recorded as durable.
type Pending struct {
	Version     int    `json:"version"`
	Fingerprint string `json:"fingerprint"`
	// Doc is what the version records once published, kept so that a
	// restart after a crash between publishing and recording can record
	// it (see Reconcile).
	Doc *PendingDoc `json:"doc,omitempty"`
}

// PendingDoc is the part of a Record a pending version would set.
type PendingDoc struct {
	Title       string            `json:"title,omitempty"`
	ContentType string            `json:"content_type,omitempty"`
	Source      string            `json:"source,omitempty"`
	Groups      []string          `json:"groups,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	ChunkCount  int               `json:"chunk_count"`
	Size        int64             `json:"size"`
}

// Reconcile records every version a crash left pending: its events may
// have reached the topics (and the index), so the document must be
// readable and deletable, as if the version had been recorded. Its
// content hash and fingerprint stay empty: whether every chunk left is
// unknown, so the next upload of the same content (a re-run sync) makes a
// new version rather than being skipped as unchanged. Call it at start,
// before serving (WireService does). It returns the number of versions recorded.
func (s *Store) Reconcile(now time.Time) (int, error) {
	n := 0
	for _, rec := range s.Pendings() {
		pd := rec.Pending
		if pd.Doc == nil || pd.Version <= rec.Version {
			// Written before the document was kept with it, or already
			// superseded: nothing to record, only the reservation to drop.
			rec.Pending = nil
		} else {
			rec.Version, rec.Status = pd.Version, StatusActive
			rec.Title, rec.ContentType, rec.Source = pd.Doc.Title, pd.Doc.ContentType, pd.Doc.Source
			rec.Groups, rec.Metadata = pd.Doc.Groups, pd.Doc.Metadata
			rec.ChunkCount, rec.Size = pd.Doc.ChunkCount, pd.Doc.Size
			rec.ContentHash, rec.Fingerprint = "", ""
			rec.Pending = nil
			n++
		}
		rec.UpdatedAt = now.UTC()
		if err := s.Put(rec); err != nil {
			return n, fmt.Errorf("reconcile %s/%s: %w", rec.Tenant, rec.DocumentID, err)
		}
	}
	return n, nil
}

// Pendings returns every record with a pending version.
func (s *Store) Pendings() []Record {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []Record
	for _, r := range s.recs {
		if r.Pending != nil {
			out = append(out, r)
		}
	}
	return out
}

// fileRecord is the JSON document written to disk.
type fileRecord struct {
	Format int    `json:"format"`
	Record Record `json:"record"`
}

type storeKey struct{ tenant, id string }

// Store keeps every document Record in memory and writes each change
// through to its own file under dir before the change is visible. A file is
// replaced crash-safely: the new content goes to a temporary file in the
// same directory, which is fsynced, renamed over the old file, and the
// directory is fsynced, so after a crash a record is either wholly old or
// wholly new.
//
// Store is safe for concurrent use.
type Store struct {
	dir  string
	lock *os.File

	mu   sync.RWMutex
	recs map[storeKey]Record
}

// OpenStore opens (creating if needed) the document state under dir and
// loads every record. It takes an exclusive lock on dir so two processes
// cannot share it.
func OpenStore(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("open store: empty data directory")
	}
	docs := filepath.Join(dir, "documents")
	if err := os.MkdirAll(docs, 0o750); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	s := &Store{dir: docs, lock: lock, recs: make(map[storeKey]Record)}
	if err := s.load(); err != nil {
		_ = lock.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	return s, nil
}

// Close releases the directory lock.
func (s *Store) Close() error {
	if s.lock == nil {
		return nil
	}
	err := s.lock.Close()
	s.lock = nil
	return err
}

func (s *Store) load() error {
	return filepath.WalkDir(s.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		name := d.Name()
		if strings.HasSuffix(name, ".tmp") {
			// A write that never reached its rename: the old record (or
			// none) is the truth.
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("remove stale temporary file: %w", err)
			}
			return nil
		}
		if !strings.HasSuffix(name, ".json") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var fr fileRecord
		if err := json.Unmarshal(b, &fr); err != nil {
			return fmt.Errorf("read record %s: %w", name, err)
		}
		if fr.Format != storeFormat {
			return fmt.Errorf("read record %s: unknown format %d", name, fr.Format)
		}
		r := fr.Record
		if r.Tenant == "" || r.DocumentID == "" || recordFile(s.dir, r.Tenant, r.DocumentID) != path {
			return fmt.Errorf("read record %s: record does not match its file name", name)
		}
		s.recs[storeKey{r.Tenant, r.DocumentID}] = r
		return nil
	})
}

// Get returns the record of document id of tenant.
func (s *Store) Get(tenant, id string) (Record, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.recs[storeKey{tenant, id}]
	return r.clone(), ok
}

// Len returns the number of records.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.recs)
}

// Put durably writes r, replacing any record of the same tenant and id, and
// returns once the write has reached stable storage.
func (s *Store) Put(r Record) error {
	if r.Tenant == "" || r.DocumentID == "" {
		return errors.New("put record: empty tenant or document id")
	}
	b, err := json.Marshal(fileRecord{Format: storeFormat, Record: r})
	if err != nil {
		return fmt.Errorf("put record: %w", err)
	}
	path := recordFile(s.dir, r.Tenant, r.DocumentID)
	// Writes to one file are serialised by the service's per-document lock;
	// the store lock only guards the map, so fsyncs of different documents
	// run in parallel.
	if err := writeFileAtomic(path, b); err != nil {
		return fmt.Errorf("put record: %w", err)
	}
	s.mu.Lock()
	s.recs[storeKey{r.Tenant, r.DocumentID}] = r.clone()
	s.mu.Unlock()
	return nil
}

// recordFile names the file of a record by a hash of tenant and id, so
// hostile ids cannot escape the directory, and fans files out over 256
// subdirectories.
func recordFile(dir, tenant, id string) string {
	h := sha256.Sum256([]byte(tenant + "\x00" + id))
	name := hex.EncodeToString(h[:])
	return filepath.Join(dir, name[:2], name+".json")
}

func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		_ = d.Close()
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return d.Close()
}

func (r Record) clone() Record {
	r.Groups = slices.Clone(r.Groups)
	if r.Metadata != nil {
		m := make(map[string]string, len(r.Metadata))
		for k, v := range r.Metadata {
			m[k] = v
		}
		r.Metadata = m
	}
	if r.Pending != nil {
		p := *r.Pending
		r.Pending = &p
	}
	return r
}
