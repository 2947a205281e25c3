package audit

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// DefaultSegmentSize is the size at which a segment is sealed and the next
// one started.
const DefaultSegmentSize = 64 << 20

// LogOption configures a Log.
type LogOption func(*Log)

// WithSegmentSize sets the roll size in bytes (default DefaultSegmentSize).
func WithSegmentSize(n int64) LogOption {
	return func(l *Log) {
		if n > 0 {
			l.maxSize = n
		}
	}
}

// WithRecordPolicy sets what is recorded (default: the zero RecordPolicy).
func WithRecordPolicy(p RecordPolicy) LogOption {
	return func(l *Log) { l.policy = p }
}

// WithLogger sets the logger for recovery notices (default: discard).
func WithLogger(logger *slog.Logger) LogOption {
	return func(l *Log) { l.logger = logger }
}

type partitionKey struct {
	topic     string
	partition int
}

// Log is the append-only, encrypted, hash-chained audit log in one
// directory. Its methods are safe for concurrent use; appends are
// serialised. After a write or sync error the Log refuses further appends
// (the process should exit and recover on restart), since a half-written
// batch must not be followed by committed offsets.
type Log struct {
	dir     string
	keys    KeyProvider
	maxSize int64
	logger  *slog.Logger

	policy RecordPolicy
	now    func() time.Time

	mu       sync.Mutex
	err      error
	segs     []segmentFile                  // all segments, the active one last
	slots    map[uint64]map[uint16]*slotKey // known data keys by segment index and slot
	active   map[string]uint16              // tenant -> slot in the active segment
	wrapped  map[uint16]KeyRef              // the active segment's key file
	f        *os.File
	w        *bufio.Writer
	size     int64 // bytes written to the active segment
	durable  int64 // bytes of the active segment known to be synced
	segCount uint64
	c        chain
	hw       map[partitionKey]int64
	closed   bool
}

// Open opens or creates the audit log in dir. It verifies every existing
// segment (decrypting each record with keys), recovers the high-water
// offset of every partition already recorded, drops a torn final frame
// that a crash left in the last segment, seals that segment, and starts a
// new one. A log that fails verification is not opened.
func Open(ctx context.Context, dir string, keys KeyProvider, opts ...LogOption) (*Log, error) {
	l := &Log{
		dir: dir, keys: keys, maxSize: DefaultSegmentSize,
		logger: slog.New(slog.DiscardHandler), now: time.Now,
		slots: map[uint64]map[uint16]*slotKey{}, hw: map[partitionKey]int64{},
	}
	for _, o := range opts {
		o(l)
	}
	if keys == nil {
		return nil, errors.New("open audit log: no key provider")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	segs, err := listSegments(dir)
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	note := func(e Entry) error {
		if !e.Shredded {
			l.hw[partitionKey{e.Topic, e.Partition}] = max(l.hw[partitionKey{e.Topic, e.Partition}], e.Offset)
		}
		return nil
	}
	for i, sf := range segs {
		s, err := scanFile(ctx, sf, -1, &l.c, scanOpts{keys: keys, fn: note})
		last := i == len(segs)-1
		var ce *CorruptError
		if err != nil && last && errors.As(err, &ce) && ce.Truncated && ce.Record == 0 {
			// A crash while the segment's header was written: it holds
			// no records.
			l.logger.Warn("audit log: removing segment with torn header", "segment", filepath.Base(sf.path))
			if err := os.Remove(sf.path); err != nil {
				return nil, fmt.Errorf("open audit log: %w", err)
			}
			segs = segs[:i]
			break
		}
		if err != nil && last && !s.sealed && errors.As(err, &ce) && ce.Truncated && ce.Record > 0 {
			// A crash during a write: those records were never synced,
			// so their offsets were never committed and Kafka delivers
			// them again.
			l.logger.Warn("audit log: dropping torn tail", "segment", filepath.Base(sf.path), "at_byte", s.goodSize)
			if err := truncateFile(sf.path, s.goodSize); err != nil {
				return nil, fmt.Errorf("open audit log: %w", err)
			}
			err = nil
		}
		if err != nil {
			return nil, fmt.Errorf("open audit log: %w", err)
		}
		if !s.sealed && !last {
			return nil, fmt.Errorf("open audit log: %w", &CorruptError{Segment: filepath.Base(sf.path), Reason: "segment not sealed but not the last (truncated)", Truncated: true})
		}
		l.slots[sf.index] = s.slots
		if last && !s.sealed {
			frame := l.sealFrame(s.records)
			if s.header.version == formatV1 {
				if frame, err = sealFrameV1(sf.index, s.records, l.c, s.v1); err != nil {
					return nil, fmt.Errorf("open audit log: %w", err)
				}
			}
			if err := sealFile(sf, frame); err != nil {
				return nil, fmt.Errorf("open audit log: %w", err)
			}
		}
	}
	l.segs = segs
	if err := l.startSegment(); err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	return l, nil
}

func truncateFile(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("truncate segment: %w", err)
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return fmt.Errorf("truncate segment: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync segment: %w", err)
	}
	return f.Close()
}

// sealFile appends a seal frame to an existing unsealed segment (after
// recovery).
func sealFile(sf segmentFile, frame []byte) error {
	f, err := os.OpenFile(sf.path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("seal segment: %w", err)
	}
	if _, err := f.Write(frame); err != nil {
		f.Close()
		return fmt.Errorf("seal segment: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync segment: %w", err)
	}
	return f.Close()
}

func (l *Log) sealFrame(count uint64) []byte {
	b := make([]byte, 4, 4+sealBodySize)
	binary.BigEndian.PutUint32(b, sealBodySize)
	b = append(b, kindSeal)
	b = appendSeq(b, count)
	b = appendSeq(b, l.c.seq)
	return append(b, l.c.head[:]...)
}

// startSegment creates the next segment. It needs no key: each tenant's
// data key is made when its first record in the segment comes.
func (l *Log) startSegment() error {
	index := uint64(len(l.segs))
	h := header{index: index, firstSeq: l.c.seq + 1, prevHash: l.c.head}
	sf := segmentFile{index: index, path: filepath.Join(l.dir, segmentName(index))}
	f, err := os.OpenFile(sf.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("create segment: %w", err)
	}
	hb := h.encode()
	if _, err := f.Write(hb); err != nil {
		f.Close()
		return fmt.Errorf("write segment header: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync segment: %w", err)
	}
	if err := syncDir(l.dir); err != nil {
		f.Close()
		return err
	}
	l.segs = append(l.segs, sf)
	l.slots[index] = map[uint16]*slotKey{}
	l.active, l.wrapped = map[string]uint16{}, map[uint16]KeyRef{}
	l.f, l.w = f, bufio.NewWriterSize(f, 256<<10)
	l.size, l.durable, l.segCount = int64(len(hb)), int64(len(hb)), 0
	return nil
}

// roll seals the active segment and starts the next.
func (l *Log) roll() error {
	if err := l.sealActive(); err != nil {
		return err
	}
	return l.startSegment()
}

func (l *Log) sealActive() error {
	frame := l.sealFrame(l.segCount)
	if _, err := l.w.Write(frame); err != nil {
		return fmt.Errorf("write seal: %w", err)
	}
	if err := l.sync(); err != nil {
		return err
	}
	l.size += int64(len(frame))
	l.durable = l.size
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("close segment: %w", err)
	}
	l.f, l.w = nil, nil
	return nil
}

func (l *Log) sync() error {
	if err := l.w.Flush(); err != nil {
		return fmt.Errorf("write segment: %w", err)
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("sync segment: %w", err)
	}
	return nil
}

// Append records msgs in order and syncs them to disk before it returns:
// once it returns nil, every message is durable and its offset may be
// committed. A message at or below the recorded high-water offset of its
// topic and partition is a redelivery and is skipped, as are messages the
// RecordPolicy leaves out. It returns how many records it wrote.
//
// When the key provider cannot make a data key, Append writes nothing and
// returns an error wrapping ErrKeysUnavailable: the caller retries the
// same messages later. Any other failure is fatal to the Log.
func (l *Log) Append(ctx context.Context, msgs []kafka.Message) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, errors.New("append: audit log closed")
	}
	if l.err != nil {
		return 0, fmt.Errorf("append: audit log failed earlier: %w", l.err)
	}
	recs := l.records(msgs)
	// Make every missing data key first: until this succeeds nothing is
	// written, so an outage of the key provider costs a retry, not the Log.
	fresh, err := l.dataKeys(ctx, recs)
	if err != nil {
		return 0, err
	}
	n, err := l.append(recs, fresh)
	if err != nil {
		l.err = err
	}
	return n, err
}

// pending is a record to write and the partition position it advances.
type pending struct {
	rec Record
	k   partitionKey
	raw []byte // the message value, for an omitted payload's hash
}

// records builds the records of msgs that are new and kept by the policy.
func (l *Log) records(msgs []kafka.Message) []pending {
	out := make([]pending, 0, len(msgs))
	seen := map[partitionKey]int64{}
	for _, m := range msgs {
		k := partitionKey{m.Topic, m.Partition}
		hw, ok := seen[k]
		if !ok {
			hw, ok = l.hw[k]
		}
		if ok && m.Offset <= hw {
			continue
		}
		seen[k] = m.Offset
		rec, keep := l.policy.apply(m)
		if !keep {
			// Advance the high-water mark only through recorded
			// messages: a skipped one is simply not in the log.
			continue
		}
		out = append(out, pending{rec: rec, k: k, raw: m.Value})
	}
	return out
}

// dataKeys makes a data key for each tenant of recs that has no slot in
// the active segment yet.
func (l *Log) dataKeys(ctx context.Context, recs []pending) (map[string]DataKey, error) {
	var fresh map[string]DataKey
	for _, p := range recs {
		t := p.rec.Tenant
		if _, ok := l.active[t]; ok {
			continue
		}
		if _, ok := fresh[t]; ok {
			continue
		}
		dk, err := l.keys.NewDataKey(ctx, t)
		if err != nil {
			if !errors.Is(err, ErrKeysUnavailable) {
				err = fmt.Errorf("%w: %v", ErrKeysUnavailable, err)
			}
			return nil, fmt.Errorf("data key for tenant %q: %w", t, err)
		}
		if len(dk.KeyID) == 0 || len(dk.KeyID) > maxKeyIDLen || len(dk.Wrapped) == 0 || len(dk.Wrapped) > maxWrappedLen || len(dk.Key) != DataKeySize {
			return nil, fmt.Errorf("data key for tenant %q: key id of %d, wrapped key of %d or key of %d bytes out of range", t, len(dk.KeyID), len(dk.Wrapped), len(dk.Key))
		}
		if len(t) > maxTenantLen {
			return nil, fmt.Errorf("tenant of %d bytes: longer than %d", len(t), maxTenantLen)
		}
		if fresh == nil {
			fresh = map[string]DataKey{}
		}
		fresh[t] = dk
	}
	if len(l.active)+len(fresh) > maxSlots {
		return nil, fmt.Errorf("more than %d tenants in one segment", maxSlots)
	}
	return fresh, nil
}

func (l *Log) append(recs []pending, fresh map[string]DataKey) (int, error) {
	index := l.segs[len(l.segs)-1].index
	slots := l.slots[index]
	if len(fresh) > 0 {
		// The key file first: a key frame on disk must always find its
		// wrapped key.
		added := make([]keyFrame, 0, len(fresh))
		tenants := make([]string, 0, len(fresh))
		for t := range fresh {
			tenants = append(tenants, t)
		}
		sort.Strings(tenants)
		now := l.now().UTC()
		for _, t := range tenants {
			dk := fresh[t]
			kf := keyFrame{slot: uint16(len(slots) + len(added)), created: now, tenant: t, keyID: dk.KeyID}
			added = append(added, kf)
			l.wrapped[kf.slot] = KeyRef{KeyID: dk.KeyID, Wrapped: dk.Wrapped}
		}
		if err := writeKeyFile(l.segs[len(l.segs)-1].path, l.wrapped); err != nil {
			return 0, err
		}
		for _, kf := range added {
			aead, err := newGCM(fresh[kf.tenant].Key)
			if err != nil {
				return 0, err
			}
			body := kf.body()
			frame := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(body)), uint32(len(body)))
			frame = append(frame, body...)
			if _, err := l.w.Write(frame); err != nil {
				return 0, fmt.Errorf("write key frame: %w", err)
			}
			l.c.head = chainHash(l.c.head, body)
			l.size += int64(len(frame))
			slots[kf.slot] = &slotKey{keyFrame: kf, aead: aead}
			l.active[kf.tenant] = kf.slot
		}
	}
	written := 0
	nonce := make([]byte, nonceSize)
	for _, p := range recs {
		rec := p.rec
		rec.Seq = l.c.seq + 1
		pt, err := rec.Marshal()
		if err != nil {
			return written, err
		}
		if len(pt) > MaxRecordSize {
			// Record that the message existed, and what it was, without
			// its body: refusing it would stall the partition.
			sum := sha256.Sum256(p.raw)
			rec.Payload, _ = json.Marshal(map[string]any{"size": len(p.raw), "sha256": hex.EncodeToString(sum[:])})
			rec.canonical = false
			rec.PayloadEncoding = "omitted"
			if pt, err = rec.Marshal(); err != nil {
				return written, err
			}
		}
		slot := l.active[rec.Tenant]
		if _, err := rand.Read(nonce); err != nil {
			return written, fmt.Errorf("record nonce: %w", err)
		}
		bodyLen := 1 + 8 + 2 + nonceSize + len(pt) + tagSize
		frame := make([]byte, 4, 4+bodyLen)
		binary.BigEndian.PutUint32(frame, uint32(bodyLen))
		frame = append(frame, kindRecord)
		frame = appendSeq(frame, rec.Seq)
		frame = binary.BigEndian.AppendUint16(frame, slot)
		frame = append(frame, nonce...)
		frame = slots[slot].aead.Seal(frame, nonce, pt, recordAD(rec.Seq, l.c.head, slot))
		if _, err := l.w.Write(frame); err != nil {
			return written, fmt.Errorf("write record: %w", err)
		}
		l.c.head = chainHash(l.c.head, frame[4:])
		l.c.seq = rec.Seq
		l.size += int64(len(frame))
		l.segCount++
		l.hw[p.k] = rec.Offset
		written++
	}
	if err := l.sync(); err != nil {
		return written, err
	}
	l.durable = l.size
	// Roll between batches only, so a batch never needs a data key of a
	// segment it did not prepare for (a segment grows past maxSize by at
	// most one batch).
	if l.size >= l.maxSize {
		if err := l.roll(); err != nil {
			return written, err
		}
	}
	return written, nil
}

// Scan calls fn for every record written and synced so far, in order,
// after authenticating and decrypting it and checking the chain; a record
// whose tenant key was shredded is passed with Shredded set. With only
// set, records of other tenants are chain-checked but not decrypted. It
// reads a snapshot: records appended while it runs are not seen.
func (l *Log) Scan(ctx context.Context, only func(tenant string) bool, fn func(Entry) error) error {
	l.mu.Lock()
	segs := append([]segmentFile(nil), l.segs...)
	known := make(map[uint64]map[uint16]*slotKey, len(l.slots))
	for i, m := range l.slots {
		known[i] = maps.Clone(m)
	}
	activeWrapped := maps.Clone(l.wrapped)
	durable := l.durable
	l.mu.Unlock()
	var c chain
	for i, sf := range segs {
		o := scanOpts{keys: l.keys, known: known[sf.index], only: only, fn: fn, trusted: true}
		limit := int64(-1)
		if i == len(segs)-1 {
			limit, o.wrapped = durable, activeWrapped
		}
		if _, err := scanFile(ctx, sf, limit, &c, o); err != nil {
			return err
		}
	}
	return nil
}

// Roll seals the active segment and starts the next, so that data keys
// made from now on (after a KEK rotation) are used.
func (l *Log) Roll() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.err != nil {
		return errors.New("roll: audit log closed or failed")
	}
	if l.segCount == 0 && len(l.active) == 0 {
		return nil
	}
	if err := l.roll(); err != nil {
		l.err = err
		return err
	}
	return nil
}

// Rewrap rewraps the wrapped data key of every slot of every segment with
// r (to the latest KEK version), replacing each key file whole; record
// ciphertext is not touched. Keys of shredded tenants are left as they
// are. It returns how many keys it rewrapped.
func (l *Log) Rewrap(ctx context.Context, r Rewrapper) (int, error) {
	l.mu.Lock()
	segs := append([]segmentFile(nil), l.segs...)
	l.mu.Unlock()
	n := 0
	for _, sf := range segs {
		// Under the lock: the active segment's key file is the writer's.
		done, err := func() (int, error) {
			l.mu.Lock()
			defer l.mu.Unlock()
			isActive := sf.index == l.segs[len(l.segs)-1].index
			var refs map[uint16]KeyRef
			if isActive {
				refs = maps.Clone(l.wrapped)
			} else {
				var err error
				if refs, err = readKeyFile(sf.path); err != nil {
					return 0, err
				}
			}
			if len(refs) == 0 {
				return 0, nil
			}
			out := make(map[uint16]KeyRef, len(refs))
			k := 0
			for slot, ref := range refs {
				nr, err := r.Rewrap(ctx, ref)
				if errors.Is(err, ErrKeyDestroyed) {
					out[slot] = ref
					continue
				}
				if err != nil {
					return k, fmt.Errorf("rewrap %s slot %d: %w", filepath.Base(sf.path), slot, err)
				}
				out[slot] = nr
				k++
			}
			if err := writeKeyFile(sf.path, out); err != nil {
				return k, err
			}
			if isActive {
				l.wrapped = out
			}
			return k, nil
		}()
		n += done
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Forget drops every data key of tenant that this Log holds in memory,
// after its KEK was shredded: its records read as shredded from now on,
// and its next record gets a new slot with a new key.
func (l *Log) Forget(tenant string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, m := range l.slots {
		for slot, sk := range m {
			if sk.tenant == tenant {
				// Replace, not modify: a running Scan may hold the old one.
				m[slot] = &slotKey{keyFrame: sk.keyFrame, shredded: true}
			}
		}
		l.slots[i] = m
	}
	delete(l.active, tenant)
}

// Stats reports the log's position: the last seq and the number of
// segments.
func (l *Log) Stats() (lastSeq uint64, segments int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.c.seq, len(l.segs)
}

// Close seals the active segment and closes it. A Log that failed is
// closed without a seal; Open recovers it.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	if l.f == nil {
		return nil
	}
	if l.err != nil {
		return l.f.Close()
	}
	return l.sealActive()
}

var _ io.Closer = (*Log)(nil)
