package audit

import (
	"bufio"
	"context"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

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

	mu       sync.Mutex
	err      error
	segs     []segmentFile          // all segments, the active one last
	aeads    map[uint64]cipher.AEAD // data keys by segment index
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
		logger: slog.New(slog.DiscardHandler),
		aeads:  map[uint64]cipher.AEAD{}, hw: map[partitionKey]int64{},
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
	note := func(r Record) error {
		l.hw[partitionKey{r.Topic, r.Partition}] = max(l.hw[partitionKey{r.Topic, r.Partition}], r.Offset)
		return nil
	}
	for i, sf := range segs {
		s, err := scanFile(ctx, sf, -1, &l.c, keys, nil, note)
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
		l.aeads[sf.index] = s.aead
		if last && !s.sealed {
			if err := l.sealFile(sf, s.records, s.aead); err != nil {
				return nil, fmt.Errorf("open audit log: %w", err)
			}
		}
	}
	l.segs = segs
	if err := l.startSegment(ctx); err != nil {
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

// sealFile appends a seal to an existing unsealed segment (after recovery).
func (l *Log) sealFile(sf segmentFile, count uint64, aead cipher.AEAD) error {
	f, err := os.OpenFile(sf.path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("seal segment: %w", err)
	}
	frame, err := l.sealFrame(sf.index, count, aead)
	if err != nil {
		f.Close()
		return err
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

func (l *Log) sealFrame(index, count uint64, aead cipher.AEAD) ([]byte, error) {
	nonce := make([]byte, nonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal nonce: %w", err)
	}
	b := make([]byte, 4, 4+sealBodySize)
	binary.BigEndian.PutUint32(b, sealBodySize)
	b = append(b, kindSeal)
	b = appendSeq(b, count)
	b = appendSeq(b, l.c.seq)
	b = append(b, l.c.head[:]...)
	b = append(b, nonce...)
	b = aead.Seal(b, nonce, nil, sealAD(index, count, l.c.seq, l.c.head))
	return b, nil
}

// startSegment creates the next segment with a fresh data key.
func (l *Log) startSegment(ctx context.Context) error {
	index := uint64(len(l.segs))
	dk := make([]byte, DataKeySize)
	if _, err := rand.Read(dk); err != nil {
		return fmt.Errorf("data key: %w", err)
	}
	keyID, wrapped, err := l.keys.WrapKey(ctx, dk)
	if err != nil {
		return fmt.Errorf("wrap data key: %w", err)
	}
	if len(keyID) == 0 || len(keyID) > maxKeyIDLen || len(wrapped) == 0 || len(wrapped) > maxWrappedLen {
		return fmt.Errorf("wrap data key: key id of %d or wrapped key of %d bytes out of range", len(keyID), len(wrapped))
	}
	aead, err := newGCM(dk)
	if err != nil {
		return err
	}
	h := header{index: index, firstSeq: l.c.seq + 1, prevHash: l.c.head, keyID: keyID, wrapped: wrapped}
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
	l.aeads[index] = aead
	l.f, l.w = f, bufio.NewWriterSize(f, 256<<10)
	l.size, l.durable, l.segCount = int64(len(hb)), int64(len(hb)), 0
	return nil
}

// roll seals the active segment and starts the next.
func (l *Log) roll(ctx context.Context) error {
	if err := l.sealActive(); err != nil {
		return err
	}
	return l.startSegment(ctx)
}

func (l *Log) sealActive() error {
	active := l.segs[len(l.segs)-1]
	frame, err := l.sealFrame(active.index, l.segCount, l.aeads[active.index])
	if err != nil {
		return err
	}
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
// topic and partition is a redelivery and is skipped. It returns how many
// records it wrote.
func (l *Log) Append(ctx context.Context, msgs []kafka.Message) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, errors.New("append: audit log closed")
	}
	if l.err != nil {
		return 0, fmt.Errorf("append: audit log failed earlier: %w", l.err)
	}
	n, err := l.append(ctx, msgs)
	if err != nil {
		l.err = err
	}
	return n, err
}

func (l *Log) append(ctx context.Context, msgs []kafka.Message) (int, error) {
	written := 0
	for _, m := range msgs {
		k := partitionKey{m.Topic, m.Partition}
		if hw, ok := l.hw[k]; ok && m.Offset <= hw {
			continue
		}
		rec := NewRecord(m)
		rec.Seq = l.c.seq + 1
		pt, err := rec.Marshal()
		if err != nil {
			return written, err
		}
		if len(pt) > MaxRecordSize {
			// Record that the message existed, and what it was, without
			// its body: refusing it would stall the partition.
			sum := sha256.Sum256(m.Value)
			rec.Payload, _ = json.Marshal(map[string]any{"size": len(m.Value), "sha256": hex.EncodeToString(sum[:])})
			rec.canonical = false
			rec.PayloadEncoding = "omitted"
			if pt, err = rec.Marshal(); err != nil {
				return written, err
			}
		}
		index := l.segs[len(l.segs)-1].index
		nonce := make([]byte, nonceSize)
		if _, err := rand.Read(nonce); err != nil {
			return written, fmt.Errorf("record nonce: %w", err)
		}
		bodyLen := 1 + 8 + nonceSize + len(pt) + tagSize
		frame := make([]byte, 4, 4+bodyLen)
		binary.BigEndian.PutUint32(frame, uint32(bodyLen))
		frame = append(frame, kindRecord)
		frame = appendSeq(frame, rec.Seq)
		frame = append(frame, nonce...)
		frame = l.aeads[index].Seal(frame, nonce, pt, recordAD(rec.Seq, l.c.head))
		if _, err := l.w.Write(frame); err != nil {
			return written, fmt.Errorf("write record: %w", err)
		}
		l.c.head = chainHash(l.c.head, frame[4:])
		l.c.seq = rec.Seq
		l.size += int64(len(frame))
		l.segCount++
		l.hw[k] = m.Offset
		written++
		if l.size >= l.maxSize {
			if err := l.roll(ctx); err != nil {
				return written, err
			}
		}
	}
	if err := l.sync(); err != nil {
		return written, err
	}
	l.durable = l.size
	return written, nil
}

// Scan calls fn for every record written and synced so far, in order,
// after authenticating and decrypting it and checking the chain. It reads
// a snapshot: records appended while it runs are not seen.
func (l *Log) Scan(ctx context.Context, fn func(Record) error) error {
	l.mu.Lock()
	segs := append([]segmentFile(nil), l.segs...)
	aeads := make(map[uint64]cipher.AEAD, len(l.aeads))
	for k, v := range l.aeads {
		aeads[k] = v
	}
	durable := l.durable
	l.mu.Unlock()
	var c chain
	for i, sf := range segs {
		limit := int64(-1)
		if i == len(segs)-1 {
			limit = durable
		}
		if _, err := scanFile(ctx, sf, limit, &c, l.keys, aeads[sf.index], fn); err != nil {
			return err
		}
	}
	return nil
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
