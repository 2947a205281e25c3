package vectordb

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tributary-rag/tributary/pkg/vectordb/wal"
)

// Snapshot files made through the Snapshots API live under
// <data-dir>/snapshots: collections/<name>/<name>-<time>.snapshot for a
// collection, full/full-snapshot-<time>.snapshot for the whole store. Their
// format is the store's own snapshot format (checksummed records, an end
// marker with the record count), so a truncated or altered file is refused.
const (
	snapshotsDir   = "snapshots"
	fullSnapshots  = "full"
	snapshotSuffix = ".snapshot"
)

// ErrSnapshotNotFound answers a delete or restore of a missing snapshot.
var ErrSnapshotNotFound = status.Error(codes.NotFound, "Not found: snapshot not found")

// snapshotDir is the directory of a collection's snapshots, or of full
// snapshots when collection is empty. Collection names cannot contain path
// separators, and the "collections" level keeps a collection named "full"
// apart from the full snapshots.
func (s *Store) snapshotDir(collection string) string {
	if collection == "" {
		return filepath.Join(s.dir, snapshotsDir, fullSnapshots)
	}
	return filepath.Join(s.dir, snapshotsDir, "collections", collection)
}

// CreateSnapshot writes a snapshot of one collection (named directly, not
// through an alias) and describes it. Writers wait while it is written.
func (s *Store) CreateSnapshot(ctx context.Context, name string) (*qdrant.SnapshotDescription, error) {
	s.mu.RLock()
	c := s.colls[name]
	s.mu.RUnlock()
	if c == nil {
		return nil, collectionNotFound(name)
	}
	return s.createSnapshotFile(s.snapshotDir(name), name, []*collection{c}, nil)
}

// CreateFullSnapshot writes a snapshot of every collection and alias.
func (s *Store) CreateFullSnapshot(ctx context.Context) (*qdrant.SnapshotDescription, error) {
	s.mu.RLock()
	names := make([]string, 0, len(s.colls))
	for n := range s.colls {
		names = append(names, n)
	}
	sort.Strings(names)
	colls := make([]*collection, len(names))
	for i, n := range names {
		colls[i] = s.colls[n]
	}
	ca := s.aliasRecord("")
	s.mu.RUnlock()
	return s.createSnapshotFile(s.snapshotDir(""), "full-snapshot", colls, ca.ChangeAliases)
}

func (s *Store) createSnapshotFile(dir, prefix string, colls []*collection, aliases *qdrant.ChangeAliases) (*qdrant.SnapshotDescription, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, internalf("create snapshot directory: %v", err)
	}
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	s.gate.Lock()
	defer s.gate.Unlock()
	for _, c := range colls {
		c.mu.RLock()
		dropped := c.dropped
		c.mu.RUnlock()
		if dropped {
			return nil, collectionNotFound(c.name)
		}
	}
	now := time.Now().UTC()
	var name string
	for i := 0; ; i++ {
		name = fmt.Sprintf("%s-%s%s", prefix, now.Format("2006-01-02-15-04-05.000000"), snapshotSuffix)
		if i > 0 {
			name = fmt.Sprintf("%s-%s-%d%s", prefix, now.Format("2006-01-02-15-04-05.000000"), i, snapshotSuffix)
		}
		if _, err := os.Stat(filepath.Join(dir, name)); errors.Is(err, os.ErrNotExist) {
			break
		}
	}
	size, sum, err := s.writeStateFile(filepath.Join(dir, name), s.wal.LastSeq(), colls, aliases)
	if err != nil {
		return nil, internalf("%v", err)
	}
	return &qdrant.SnapshotDescription{Name: name, CreationTime: timestamppb.New(now), Size: size, Checksum: &sum}, nil
}

// ListSnapshots describes a collection's snapshots (full snapshots when
// name is empty), oldest first.
func (s *Store) ListSnapshots(ctx context.Context, name string) ([]*qdrant.SnapshotDescription, error) {
	if name != "" {
		s.mu.RLock()
		_, ok := s.colls[name]
		s.mu.RUnlock()
		if !ok {
			return nil, collectionNotFound(name)
		}
	}
	entries, err := os.ReadDir(s.snapshotDir(name))
	if errors.Is(err, os.ErrNotExist) {
		return []*qdrant.SnapshotDescription{}, nil
	}
	if err != nil {
		return nil, internalf("list snapshots: %v", err)
	}
	out := []*qdrant.SnapshotDescription{}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), snapshotSuffix) || !e.Type().IsRegular() {
			continue // .tmp files of interrupted snapshots among them
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		sum, err := fileSHA256(filepath.Join(s.snapshotDir(name), e.Name()))
		if err != nil {
			continue
		}
		out = append(out, &qdrant.SnapshotDescription{Name: e.Name(), CreationTime: timestamppb.New(info.ModTime()), Size: info.Size(), Checksum: &sum})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
	return out, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// DeleteSnapshot deletes a collection's snapshot (a full snapshot when
// collection is empty).
func (s *Store) DeleteSnapshot(ctx context.Context, collection, name string) error {
	if name == "" || strings.ContainsAny(name, "/\\\x00") || !strings.HasSuffix(name, snapshotSuffix) {
		return invalidf("snapshot name %q is not valid", name)
	}
	path := filepath.Join(s.snapshotDir(collection), name)
	if err := os.Remove(path); errors.Is(err, os.ErrNotExist) {
		return status.Errorf(codes.NotFound, "Not found: Snapshot %s not found", name)
	} else if err != nil {
		return internalf("delete snapshot: %v", err)
	}
	return wal.SyncDir(filepath.Dir(path))
}

// readSnapshotFile loads a snapshot file into a scratch store and returns
// its collections and aliases. Nothing of s changes, so a truncated or
// corrupt file is refused before anything is replaced.
func (s *Store) readSnapshotFile(path string) (*Store, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, status.Errorf(codes.NotFound, "Not found: snapshot file %s not found", path)
		}
		return nil, invalidf("open snapshot: %v", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, invalidf("stat snapshot: %v", err)
	}
	sc := wal.NewScanner(f, st.Size())
	var seq uint64
	if sc.Next() {
		seq = sc.Record().Seq
	}
	f.Close()
	scratch := &Store{opts: s.opts, colls: map[string]*collection{}, aliases: map[string]string{}}
	scratch.opts.ann.newIndex = nil // no graphs: only the points matter here
	scratch.opts.ann.vectorDir = "" // and rows on the heap
	if err := scratch.loadSnapshot(path, seq); err != nil {
		return nil, invalidf("snapshot %s is not usable: %v", filepath.Base(path), err)
	}
	return scratch, nil
}

// RestoreSnapshot replaces collections with those in a snapshot file (a
// collection or a full snapshot). With as set, the file must hold exactly
// one collection, which is restored under that name. Each restored
// collection is logged as create + points, so the result is durable; an
// existing collection of the same name is deleted first. A crash during a
// restore can leave a collection partly restored: restoring again (as
// `tributary vectordb --restore-snapshot` does at every start) replaces it.
func (s *Store) RestoreSnapshot(ctx context.Context, path, as string) error {
	scratch, err := s.readSnapshotFile(path)
	if err != nil {
		return err
	}
	names := scratch.ListCollections()
	if as != "" {
		if len(names) != 1 {
			return invalidf("snapshot %s holds %d collections; restoring under one name needs exactly one", filepath.Base(path), len(names))
		}
		if err := validCollectionName(as); err != nil {
			return err
		}
	}
	for _, name := range names {
		src := scratch.colls[name]
		dst := name
		if as != "" {
			dst = as
		}
		if err := s.restoreCollection(ctx, src, dst); err != nil {
			return fmt.Errorf("restore collection %s: %w", dst, err)
		}
	}
	if as == "" && len(scratch.aliases) > 0 {
		if err := s.UpdateAliases(ctx, scratch.aliasRecord("").ChangeAliases); err != nil {
			return fmt.Errorf("restore aliases: %w", err)
		}
	}
	return nil
}

func (s *Store) restoreCollection(ctx context.Context, src *collection, name string) error {
	if _, err := s.DeleteCollection(ctx, name); err != nil {
		return err
	}
	create := src.create
	if name != src.name {
		create = cloneCreate(create)
		create.CollectionName = name
	}
	if err := s.CreateCollection(ctx, create); err != nil {
		return err
	}
	c, err := s.collection(name)
	if err != nil {
		return err
	}
	for _, k := range src.sortedShardKeys() {
		if err := s.CreateShardKey(ctx, &qdrant.CreateShardKeyRequest{CollectionName: name, Request: &qdrant.CreateShardKey{ShardKey: src.shardKeys[k]}}); err != nil {
			return err
		}
	}
	for key, fi := range src.indexes {
		ft := fi.typ
		if _, err := s.CreateFieldIndex(ctx, &qdrant.CreateFieldIndexCollection{CollectionName: name, FieldName: key, FieldType: &ft}); err != nil {
			return err
		}
	}
	// Batches hold points of one shard, logged with its key.
	sels := map[uint32]*qdrant.ShardKeySelector{}
	for ks, n := range src.shardNum {
		sels[n] = &qdrant.ShardKeySelector{ShardKeys: []*qdrant.ShardKey{src.shardKeys[ks]}}
	}
	const batch = 1024
	var ps []*qdrant.PointStruct
	var shard uint32
	flush := func() error {
		if len(ps) == 0 {
			return nil
		}
		_, err := s.putPoints(ctx, c, false, sels[shard], func() ([]*qdrant.PointStruct, error) { return ps, nil })
		ps = nil
		return err
	}
	byShard := map[uint32][]uint32{}
	for _, slot := range src.sortedSlots() {
		n := src.points[slot].shard
		byShard[n] = append(byShard[n], slot)
	}
	for n, slots := range byShard {
		shard = n
		for _, slot := range slots {
			ps = append(ps, src.storedPoint(slot))
			if len(ps) == batch {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err := flush(); err != nil {
			return err
		}
	}
	return s.wal.Sync(s.wal.LastSeq())
}

// removeSnapshotTemps deletes the temporary files of snapshots that a crash
// interrupted: they were never renamed, so never listed or relied on.
func removeSnapshotTemps(dataDir string) {
	_ = filepath.WalkDir(filepath.Join(dataDir, snapshotsDir), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, snapshotSuffix+".tmp") {
			_ = os.Remove(path)
		}
		return nil
	})
}
