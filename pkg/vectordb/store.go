// Package vectordb is an embedded vector store that serves Qdrant's gRPC API
// (collections, points, dense/sparse/hybrid search, payload filters) with a
// write-ahead log, snapshots and crash recovery. See docs/vectordb.md.
package vectordb

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/protobuf/proto"

	"github.com/tributary-rag/tributary/pkg/vectordb/wal"
)

// WAL and snapshot record types.
const (
	opCreateCollection byte = 1
	opDeleteCollection byte = 2
	opUpsert           byte = 3
	opDelete           byte = 4
	opSetPayload       byte = 5
	opCreateIndex      byte = 6
	opDeleteIndex      byte = 7
	opOverwritePayload byte = 8

	snapANN byte = 9 // collection, vector name, node table, HNSW graph

	opUpdateCollection byte = 10
	opAliases          byte = 11 // one ChangeAliases: all its actions or none
	opCreateShardKey   byte = 12
	opDeleteShardKey   byte = 13
	opDeletePayload    byte = 14

	snapHeader byte = 100
	snapEnd    byte = 101
)

const snapshotMagic = "tributary-vectordb-snapshot-v1"

// Option configures a Store.
type Option func(*options)

type options struct {
	logger        *slog.Logger
	snapshotBytes int64
	ann           annConfig
}

// WithLogger sets the logger (default, and when l is nil: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithSnapshotThreshold sets the WAL size in bytes above which the store
// writes a snapshot and drops the covered WAL segments (default 64 MiB).
func WithSnapshotThreshold(n int64) Option { return func(o *options) { o.snapshotBytes = n } }

// WithSearchEf sets the default HNSW search beam width (default 128); a
// request's params.hnsw_ef overrides it.
func WithSearchEf(ef int) Option { return func(o *options) { o.ann.ef = ef } }

// WithANNThreshold sets the number of vectors in a space from which searches
// use the HNSW index instead of an exact scan (default 20000).
func WithANNThreshold(n int) Option { return func(o *options) { o.ann.threshold = n } }

// Store is a durable set of collections. All methods are safe for
// concurrent use.
type Store struct {
	dir  string
	opts options
	wal  *wal.Log
	lock *os.File

	// gate orders writes against snapshots: every write holds it shared
	// from WAL append to in-memory apply; a snapshot holds it exclusively,
	// so the snapshot's state is exactly the WAL prefix it names.
	gate sync.RWMutex

	mu      sync.RWMutex // guards colls (the map, not the collections) and aliases
	colls   map[string]*collection
	aliases map[string]string // alias → collection name

	snapMu  sync.Mutex
	snapSeq uint64 // seq covered by the newest snapshot; guarded by snapMu

	kick   chan struct{}
	stop   chan struct{}
	done   chan struct{}
	closed sync.Once
}

// Open opens (creating if needed) the store in dir and recovers its state
// from the newest snapshot and the WAL.
func Open(dir string, opts ...Option) (*Store, error) {
	o := options{
		snapshotBytes: 64 << 20,
		ann:           annConfig{threshold: 20000, minANNMatches: 1000, ef: 128},
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	o.ann.newIndex = newANNIndex
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	o.ann.vectorDir, o.ann.fileSeq = filepath.Join(dir, "vectors"), new(atomic.Uint64)
	if err := resetVectorDir(o.ann.vectorDir); err != nil {
		unlockDir(lock)
		return nil, err
	}
	s := &Store{
		dir:     dir,
		opts:    o,
		lock:    lock,
		colls:   map[string]*collection{},
		aliases: map[string]string{},
		kick:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	if err := s.recover(); err != nil {
		unlockDir(lock)
		return nil, err
	}
	removeSnapshotTemps(dir)
	go s.compactor()
	return s, nil
}

// Close stops background work, writes a final snapshot when the WAL holds
// records, and closes the files.
func (s *Store) Close() error {
	var err error
	s.closed.Do(func() {
		close(s.stop)
		<-s.done
		if s.wal.Size() > 0 {
			if serr := s.Snapshot(); serr != nil {
				err = serr
			}
		}
		if cerr := s.wal.Close(); err == nil {
			err = cerr
		}
		// Row files are caches: close and delete them (their mappings stay
		// valid for callers that still hold a collection).
		s.mu.Lock()
		for _, c := range s.colls {
			for _, d := range c.dense {
				d.release()
			}
		}
		s.mu.Unlock()
		unlockDir(s.lock)
	})
	return err
}

func (s *Store) compactor() {
	defer close(s.done)
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-s.kick:
		case <-t.C:
		}
		if s.wal.Size() >= s.opts.snapshotBytes {
			if err := s.Snapshot(); err != nil {
				s.opts.logger.Error("snapshot failed", "err", err)
			}
		}
	}
}

func (s *Store) maybeKick() {
	if s.wal.Size() >= s.opts.snapshotBytes {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

func snapshotName(seq uint64) string { return fmt.Sprintf("snapshot-%020d.snap", seq) }

func listSnapshots(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	var seqs []uint64
	for _, e := range entries {
		n := e.Name()
		if strings.HasSuffix(n, ".tmp") {
			// An interrupted snapshot: never renamed, so never relied on.
			_ = os.Remove(filepath.Join(dir, n))
			continue
		}
		if !strings.HasPrefix(n, "snapshot-") || !strings.HasSuffix(n, ".snap") {
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(n, "snapshot-"), ".snap"), 10, 64)
		if err == nil {
			seqs = append(seqs, seq)
		}
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	return seqs, nil
}

func (s *Store) recover() error {
	seqs, err := listSnapshots(s.dir)
	if err != nil {
		return err
	}
	var after uint64
	if len(seqs) > 0 {
		after = seqs[len(seqs)-1]
		if err := s.loadSnapshot(filepath.Join(s.dir, snapshotName(after)), after); err != nil {
			return fmt.Errorf("load snapshot %d: %w", after, err)
		}
	}
	s.snapSeq = after
	replayed := 0
	l, err := wal.Open(filepath.Join(s.dir, "wal"), after, func(r wal.Record) error {
		replayed++
		return s.replay(r)
	})
	if err != nil {
		return fmt.Errorf("recover wal: %w", err)
	}
	s.wal = l
	s.opts.logger.Info("store recovered", "snapshot_seq", after, "wal_records", replayed, "collections", len(s.colls))
	return nil
}

// replay applies one WAL record to the in-memory state.
func (s *Store) replay(r wal.Record) error {
	switch r.Type {
	case opCreateCollection:
		var req qdrant.CreateCollection
		if err := proto.Unmarshal(r.Data, &req); err != nil {
			return fmt.Errorf("decode create collection: %w", err)
		}
		c, err := newCollection(&req, s.opts.ann)
		if err != nil {
			return err
		}
		s.colls[c.name] = c
	case opDeleteCollection:
		s.dropCollection(string(r.Data))
	case opUpsert:
		var req qdrant.UpsertPoints
		c, err := s.decodeLogged(r.Data, &req, "upsert")
		if err != nil {
			return err
		}
		ps, err := c.preparePoints(req.GetPoints(), true)
		if err != nil {
			return err
		}
		if err := c.placeLogged(ps, req.GetShardKeySelector()); err != nil {
			return err
		}
		if after := c.applyUpsert(ps); after != nil {
			after()
		}
	case opDelete:
		var req qdrant.DeletePoints
		c, err := s.decodeLogged(r.Data, &req, "delete")
		if err != nil {
			return err
		}
		ids, err := parseIDs(req.GetPoints().GetPoints().GetIds())
		if err != nil {
			return err
		}
		c.applyDelete(ids)
	case opSetPayload, opOverwritePayload:
		var req qdrant.SetPayloadPoints
		c, err := s.decodeLogged(r.Data, &req, "set payload")
		if err != nil {
			return err
		}
		ids, err := parseIDs(req.GetPointsSelector().GetPoints().GetIds())
		if err != nil {
			return err
		}
		var key keyPath
		if req.Key != nil {
			if key, err = parseKeyPath(req.GetKey()); err != nil {
				return err
			}
		}
		c.applySetPayload(ids, req.GetPayload(), key, r.Type == opOverwritePayload)
	case opCreateIndex:
		var req qdrant.CreateFieldIndexCollection
		c, err := s.decodeLogged(r.Data, &req, "create index")
		if err != nil {
			return err
		}
		path, err := parseKeyPath(req.GetFieldName())
		if err != nil {
			return err
		}
		c.applyCreateIndex(req.GetFieldName(), path, req.GetFieldType())
	case opDeleteIndex:
		var req qdrant.DeleteFieldIndexCollection
		if err := proto.Unmarshal(r.Data, &req); err != nil {
			return fmt.Errorf("decode delete index: %w", err)
		}
		if c := s.colls[req.GetCollectionName()]; c != nil {
			c.applyDeleteIndex(req.GetFieldName())
		}
	case opPutPoints:
		var req qdrant.UpsertPoints
		c, err := s.decodeLogged(r.Data, &req, "points")
		if err != nil {
			return err
		}
		ps, err := c.preparePoints(req.GetPoints(), false)
		if err != nil {
			return err
		}
		if err := c.placeLogged(ps, req.GetShardKeySelector()); err != nil {
			return err
		}
		keepShards(ps)
		if after := c.applyUpsert(ps); after != nil {
			after()
		}
	case opUpdateCollection, opAliases, opCreateShardKey, opDeleteShardKey, opDeletePayload:
		return s.replayMore(r)
	default:
		return fmt.Errorf("unknown wal record type %d", r.Type)
	}
	return nil
}

func parseIDs(ids []*qdrant.PointId) ([]pointID, error) {
	out := make([]pointID, 0, len(ids))
	for _, id := range ids {
		p, err := parsePointID(id)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// loadSnapshot reads a snapshot file into the (empty) store.
func (s *Store) loadSnapshot(path string, seq uint64) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open snapshot: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat snapshot: %w", err)
	}
	sc := wal.NewScanner(f, st.Size())
	var n uint64
	ended := false
	for sc.Next() {
		r := sc.Record()
		if ended {
			return errors.New("records after the end marker")
		}
		if r.Seq != seq {
			return fmt.Errorf("record seq %d in snapshot %d", r.Seq, seq)
		}
		switch r.Type {
		case snapHeader:
			if n != 0 || string(r.Data) != snapshotMagic {
				return errors.New("bad snapshot header")
			}
		case snapEnd:
			if len(r.Data) != 8 || binary.LittleEndian.Uint64(r.Data) != n {
				return errors.New("snapshot record count mismatch")
			}
			ended = true
			continue
		case snapANN:
			if err := s.loadANNRecord(r.Data); err != nil {
				// The graph is only an accelerator: rebuild it instead.
				s.opts.logger.Warn("snapshot hnsw graph not loaded; rebuilding", "err", err)
			}
		case opUpsert:
			// Snapshot vectors are stored already normalized.
			var req qdrant.UpsertPoints
			c, err := s.decodeLogged(r.Data, &req, "snapshot points")
			if err != nil {
				return err
			}
			ps, err := c.preparePoints(req.GetPoints(), false)
			if err != nil {
				return err
			}
			if err := c.placeLogged(ps, req.GetShardKeySelector()); err != nil {
				return err
			}
			if after := c.applyUpsert(ps); after != nil {
				after()
			}
		default:
			if n == 0 {
				return errors.New("snapshot has no header")
			}
			if err := s.replay(r); err != nil {
				return err
			}
			if r.Type == opCreateCollection {
				for _, c := range s.colls {
					if c.annCfg.newIndex != nil && len(c.slots) == 0 {
						c.loading = true // graphs come from the snapshot
					}
				}
			}
		}
		n++
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read snapshot: %w", err)
	}
	if !ended {
		return errors.New("snapshot has no end marker")
	}
	for _, c := range s.colls {
		c.loading = false
		if build := c.maybeBuildANN(); build != nil {
			build()
		}
	}
	return nil
}

// loadANNRecord attaches a persisted HNSW graph to its dense space.
func (s *Store) loadANNRecord(data []byte) error {
	parts := bytes.SplitN(data, []byte{0}, 3)
	if len(parts) != 3 {
		return errors.New("bad ann record header")
	}
	c := s.colls[string(parts[0])]
	if c == nil {
		return fmt.Errorf("ann record for unknown collection %q", parts[0])
	}
	d := c.dense[string(parts[1])]
	if d == nil {
		return fmt.Errorf("ann record for unknown vector %q", parts[1])
	}
	a, err := loadANN(parts[2], d, c.slots)
	if err != nil {
		return err
	}
	d.ann = a
	d.annReady.Store(true)
	return nil
}

// Snapshot writes the whole state to a new snapshot file and removes the
// WAL segments and older snapshots it covers. Writes wait while the state is
// written; reads continue.
func (s *Store) Snapshot() error {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	s.gate.Lock()
	seq := s.wal.LastSeq()
	if seq == s.snapSeq {
		s.gate.Unlock()
		return nil
	}
	err := s.writeSnapshot(seq)
	if err == nil {
		err = s.wal.Rotate()
	}
	s.gate.Unlock()
	if err != nil {
		return err
	}
	if err := s.wal.RemoveThrough(seq); err != nil {
		return err
	}
	old := s.snapSeq
	s.snapSeq = seq
	if seqs, err := listSnapshots(s.dir); err == nil {
		for _, q := range seqs {
			if q < seq {
				_ = os.Remove(filepath.Join(s.dir, snapshotName(q)))
			}
		}
	}
	s.opts.logger.Info("snapshot written", "seq", seq, "previous_seq", old)
	return nil
}

// writeSnapshot serializes the state. Caller holds s.gate exclusively.
func (s *Store) writeSnapshot(seq uint64) error {
	s.mu.RLock()
	names := make([]string, 0, len(s.colls))
	for name := range s.colls {
		names = append(names, name)
	}
	sort.Strings(names)
	colls := make([]*collection, 0, len(names))
	for _, name := range names {
		colls = append(colls, s.colls[name])
	}
	ca := s.aliasRecord("")
	s.mu.RUnlock()
	_, _, err := s.writeStateFile(filepath.Join(s.dir, snapshotName(seq)), seq, colls, ca.ChangeAliases)
	return err
}

// writeStateFile writes colls and the alias actions to final through a
// temporary file that is synced and renamed, so a crash leaves either no
// file or a whole one. It returns the file's size and SHA-256 (hex). Caller
// holds s.gate exclusively, so no write is half applied.
func (s *Store) writeStateFile(final string, seq uint64, colls []*collection, aliases *qdrant.ChangeAliases) (size int64, sum string, err error) {
	tmp := final + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return 0, "", fmt.Errorf("create snapshot: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	h := sha256.New()
	w := io.MultiWriter(f, h)
	var buf []byte
	var n uint64
	emit := func(typ byte, data []byte) error {
		buf = wal.AppendRecord(buf[:0], wal.Record{Seq: seq, Type: typ, Data: data})
		n++
		size += int64(len(buf))
		if _, err := w.Write(buf); err != nil {
			return fmt.Errorf("write snapshot: %w", err)
		}
		return nil
	}
	emitProto := func(typ byte, m proto.Message) error {
		data, err := proto.Marshal(m)
		if err != nil {
			return fmt.Errorf("encode snapshot record: %w", err)
		}
		return emit(typ, data)
	}
	if err := emit(snapHeader, []byte(snapshotMagic)); err != nil {
		return 0, "", err
	}
	for _, c := range colls {
		if err := s.writeCollection(c, emitProto, emit); err != nil {
			return 0, "", err
		}
	}
	if len(aliases.GetActions()) > 0 {
		if err := emitProto(opAliases, aliases); err != nil {
			return 0, "", err
		}
	}
	var cnt [8]byte
	binary.LittleEndian.PutUint64(cnt[:], n)
	if err := emit(snapEnd, cnt[:]); err != nil {
		return 0, "", err
	}
	if err := f.Sync(); err != nil {
		return 0, "", fmt.Errorf("sync snapshot: %w", err)
	}
	if err := f.Close(); err != nil {
		return 0, "", fmt.Errorf("close snapshot: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return 0, "", fmt.Errorf("rename snapshot: %w", err)
	}
	return size, hex.EncodeToString(h.Sum(nil)), wal.SyncDir(filepath.Dir(final))
}

func (s *Store) writeCollection(c *collection, emit func(byte, proto.Message) error, emitRaw func(byte, []byte) error) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if err := emit(opCreateCollection, c.create); err != nil {
		return err
	}
	for _, k := range c.sortedShardKeys() {
		if err := emit(opCreateShardKey, &qdrant.CreateShardKeyRequest{CollectionName: c.name, Request: &qdrant.CreateShardKey{ShardKey: c.shardKeys[k]}}); err != nil {
			return err
		}
	}
	keys := make([]string, 0, len(c.indexes))
	for k := range c.indexes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ft := c.indexes[k].typ
		if err := emit(opCreateIndex, &qdrant.CreateFieldIndexCollection{CollectionName: c.name, FieldName: k, FieldType: &ft}); err != nil {
			return err
		}
	}
	// Points go in batches per shard, each batch's selector naming its
	// shard key (none for points without one).
	sels := map[uint32]*qdrant.ShardKeySelector{}
	for ks, n := range c.shardNum {
		sels[n] = &qdrant.ShardKeySelector{ShardKeys: []*qdrant.ShardKey{c.shardKeys[ks]}}
	}
	batches := map[uint32]*qdrant.UpsertPoints{}
	sizes := map[uint32]int{}
	all := vectorSelector{all: true}
	pointSize := 64 + 4*len(c.dense)*16
	for _, d := range c.dense {
		pointSize += 4 * d.dim
	}
	for slot, p := range c.points {
		if !p.live {
			continue
		}
		batch := batches[p.shard]
		if batch == nil {
			batch = &qdrant.UpsertPoints{CollectionName: c.name, ShardKeySelector: sels[p.shard]}
			batches[p.shard] = batch
		}
		ps := &qdrant.PointStruct{Id: p.id.proto(), Payload: p.payload, Vectors: c.vectorsInput(uint32(slot), all)}
		batch.Points = append(batch.Points, ps)
		sizes[p.shard] += pointSize
		if sizes[p.shard] > 4<<20 {
			if err := emit(opUpsert, batch); err != nil {
				return err
			}
			delete(batches, p.shard)
			sizes[p.shard] = 0
		}
	}
	shards := make([]uint32, 0, len(batches))
	for n := range batches {
		shards = append(shards, n)
	}
	sort.Slice(shards, func(i, j int) bool { return shards[i] < shards[j] })
	for _, n := range shards {
		if err := emit(opUpsert, batches[n]); err != nil {
			return err
		}
	}
	names := make([]string, 0, len(c.dense))
	for name := range c.dense {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		d := c.dense[name]
		a, ok := d.ann.(*hnswANN)
		if !ok {
			continue
		}
		var buf bytes.Buffer
		buf.WriteString(c.name)
		buf.WriteByte(0)
		buf.WriteString(name)
		buf.WriteByte(0)
		if err := a.persist(&buf, c.points); err != nil || buf.Len() > wal.MaxRecordSize-64 {
			continue // too big or unusable: the graph is rebuilt on load
		}
		if err := emitRaw(snapANN, buf.Bytes()); err != nil {
			return err
		}
	}
	return nil
}

// vectorsInput returns slot's vectors in upsert form. Caller holds c.mu.
func (c *collection) vectorsInput(slot uint32, vs vectorSelector) *qdrant.Vectors {
	named := map[string]*qdrant.Vector{}
	for name, d := range c.dense {
		if vs.want(name) && d.present[slot] {
			named[name] = qdrant.NewVectorDense(append([]float32(nil), d.row(slot)...))
		}
	}
	for name, sp := range c.sparse {
		if v := sp.vecs[slot]; vs.want(name) && v != nil {
			named[name] = qdrant.NewVectorSparse(v.idx, v.val)
		}
	}
	return qdrant.NewVectorsMap(named)
}

// collection returns the named collection or NotFound.
func (s *Store) collection(name string) (*collection, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c := s.colls[name]
	if c == nil {
		if target, ok := s.aliases[name]; ok {
			c = s.colls[target]
		}
	}
	if c == nil {
		return nil, collectionNotFound(name)
	}
	return c, nil
}

func updateResult(seq uint64, wait bool) *qdrant.UpdateResult {
	st := qdrant.UpdateStatus_Acknowledged
	if wait {
		st = qdrant.UpdateStatus_Completed
	}
	return &qdrant.UpdateResult{OperationId: &seq, Status: st}
}

// abandon releases the store's files without a final snapshot or sync, as a
// crash would leave them (tests only).
func (s *Store) abandon() {
	s.closed.Do(func() {
		close(s.stop)
		<-s.done
		s.wal.Abandon()
		unlockDir(s.lock)
	})
}

// loggedRequest is the request a WAL or snapshot record holds, naming its
// collection.
type loggedRequest interface {
	proto.Message
	GetCollectionName() string
}

// decodeLogged decodes a logged record's data into req and returns the
// collection it names; what labels a decoding error.
func (s *Store) decodeLogged(data []byte, req loggedRequest, what string) (*collection, error) {
	if err := proto.Unmarshal(data, req); err != nil {
		return nil, fmt.Errorf("decode %s: %w", what, err)
	}
	c := s.colls[req.GetCollectionName()]
	if c == nil {
		return nil, collectionNotFound(req.GetCollectionName())
	}
	return c, nil
}
