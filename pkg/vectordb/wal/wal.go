// Package wal provides the checksummed record framing and the segmented,
// fsynced write-ahead log used by the embedded vector store.
//
// A record on disk is
//
//	length  uint32 little endian: number of body bytes
//	crc     uint32 little endian: CRC-32C (Castagnoli) of the body
//	body    seq uint64 little endian, type byte, data
//
// A log is a directory of segment files named wal-<first seq, 20 digits>.log.
// Appends go to the newest segment; Sync makes every record appended so far
// durable with one fsync shared by all concurrent callers (group commit).
package wal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// HeaderSize is the number of framing bytes before a record's body.
const HeaderSize = 8

// bodyPrefix is the number of body bytes before a record's data (seq and type).
const bodyPrefix = 9

// MaxRecordSize bounds the body of one record; longer lengths are treated as
// corruption.
const MaxRecordSize = 1 << 30

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt reports a record whose framing or checksum is invalid.
var ErrCorrupt = errors.New("corrupt record")

// Record is one log entry.
type Record struct {
	Seq  uint64
	Type byte
	Data []byte
}

// AppendRecord appends the framed encoding of r to dst and returns the
// extended slice.
func AppendRecord(dst []byte, r Record) []byte {
	n := bodyPrefix + len(r.Data)
	start := len(dst)
	dst = append(dst, make([]byte, HeaderSize+bodyPrefix)...)
	binary.LittleEndian.PutUint32(dst[start:], uint32(n))
	binary.LittleEndian.PutUint64(dst[start+HeaderSize:], r.Seq)
	dst[start+HeaderSize+8] = r.Type
	dst = append(dst, r.Data...)
	crc := crc32.Checksum(dst[start+HeaderSize:], castagnoli)
	binary.LittleEndian.PutUint32(dst[start+4:], crc)
	return dst
}

// Decode decodes the first record of buf. It returns the record (whose Data
// aliases buf), the number of bytes consumed, and io.ErrUnexpectedEOF when
// buf ends inside the record or ErrCorrupt when the record is invalid.
func Decode(buf []byte) (Record, int, error) {
	if len(buf) == 0 {
		return Record{}, 0, io.EOF
	}
	if len(buf) < HeaderSize {
		return Record{}, 0, io.ErrUnexpectedEOF
	}
	n := binary.LittleEndian.Uint32(buf)
	if n < bodyPrefix || n > MaxRecordSize {
		return Record{}, 0, fmt.Errorf("record length %d: %w", n, ErrCorrupt)
	}
	if uint64(len(buf)-HeaderSize) < uint64(n) {
		return Record{}, 0, io.ErrUnexpectedEOF
	}
	body := buf[HeaderSize : HeaderSize+int(n)]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(buf[4:]) {
		return Record{}, 0, fmt.Errorf("checksum mismatch: %w", ErrCorrupt)
	}
	return Record{
		Seq:  binary.LittleEndian.Uint64(body),
		Type: body[8],
		Data: body[bodyPrefix:],
	}, HeaderSize + int(n), nil
}

// Scanner reads framed records from a stream of known size.
type Scanner struct {
	r      *bufio.Reader
	remain int64
	offset int64
	rec    Record
	err    error
	hdr    [HeaderSize]byte
}

// NewScanner returns a Scanner over r, which holds size bytes.
func NewScanner(r io.Reader, size int64) *Scanner {
	return &Scanner{r: bufio.NewReaderSize(r, 1<<20), remain: size}
}

// Next reads the next record. It returns false at the end of the stream or
// on the first invalid record; Err tells which.
func (s *Scanner) Next() bool {
	if s.err != nil {
		return false
	}
	if s.remain == 0 {
		s.err = io.EOF
		return false
	}
	if s.remain < HeaderSize {
		s.err = io.ErrUnexpectedEOF
		return false
	}
	if _, err := io.ReadFull(s.r, s.hdr[:]); err != nil {
		s.err = fmt.Errorf("read record header: %w", io.ErrUnexpectedEOF)
		return false
	}
	n := binary.LittleEndian.Uint32(s.hdr[:])
	if n < bodyPrefix || n > MaxRecordSize {
		s.err = fmt.Errorf("record length %d: %w", n, ErrCorrupt)
		return false
	}
	if int64(n) > s.remain-HeaderSize {
		s.err = io.ErrUnexpectedEOF
		return false
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(s.r, body); err != nil {
		s.err = fmt.Errorf("read record body: %w", io.ErrUnexpectedEOF)
		return false
	}
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(s.hdr[4:]) {
		s.err = fmt.Errorf("checksum mismatch: %w", ErrCorrupt)
		return false
	}
	s.rec = Record{Seq: binary.LittleEndian.Uint64(body), Type: body[8], Data: body[bodyPrefix:]}
	s.remain -= HeaderSize + int64(n)
	s.offset += HeaderSize + int64(n)
	return true
}

// Record returns the record read by the last successful Next.
func (s *Scanner) Record() Record { return s.rec }

// Offset returns the number of bytes consumed by valid records so far.
func (s *Scanner) Offset() int64 { return s.offset }

// Err returns nil after a clean end of stream, or the reason Next stopped.
func (s *Scanner) Err() error {
	if errors.Is(s.err, io.EOF) {
		return nil
	}
	return s.err
}

// segment is one file of the log.
type segment struct {
	first uint64 // seq of its first record
	path  string
}

func segmentName(first uint64) string { return fmt.Sprintf("wal-%020d.log", first) }

func listSegments(dir string) ([]segment, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list wal segments: %w", err)
	}
	var segs []segment
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, "wal-") || !strings.HasSuffix(name, ".log") {
			continue
		}
		first, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(name, "wal-"), ".log"), 10, 64)
		if err != nil {
			continue
		}
		segs = append(segs, segment{first: first, path: filepath.Join(dir, name)})
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].first < segs[j].first })
	return segs, nil
}

// Log is a segmented write-ahead log. Append, Sync, Rotate and RemoveThrough
// are safe for concurrent use.
type Log struct {
	dir string

	mu       sync.Mutex // guards the fields below and the file offset
	f        *os.File
	segs     []segment
	nextSeq  uint64
	size     int64 // bytes in all segments
	buf      []byte
	err      error // sticky: set when a write or sync fails
	appended uint64

	syncMu sync.Mutex // serialises fsyncs
	synced uint64     // guarded by mu
}

// Open replays every record with Seq > after, in order, through fn, then
// opens the log for appends. A torn or corrupt tail of the newest segment is
// truncated (it can only hold writes that were never acknowledged); an invalid
// record in an older segment is an error.
func Open(dir string, after uint64, fn func(Record) error) (*Log, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create wal dir: %w", err)
	}
	segs, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	l := &Log{dir: dir, nextSeq: after + 1}
	for i, sg := range segs {
		last := i == len(segs)-1
		size, err := replaySegment(sg, last, after, fn, &l.nextSeq)
		if err != nil {
			return nil, err
		}
		l.size += size
	}
	l.appended = l.nextSeq - 1
	l.synced = l.appended
	l.segs = segs
	if err := l.startSegment(); err != nil {
		return nil, err
	}
	return l, nil
}

func replaySegment(sg segment, last bool, after uint64, fn func(Record) error, next *uint64) (int64, error) {
	f, err := os.OpenFile(sg.path, os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("open wal segment: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("stat wal segment: %w", err)
	}
	sc := NewScanner(f, st.Size())
	for sc.Next() {
		rec := sc.Record()
		if rec.Seq <= after {
			continue
		}
		if rec.Seq != *next {
			if last {
				// A gap means the record is not one of ours: treat as torn.
				break
			}
			return 0, fmt.Errorf("wal segment %s: seq %d, want %d: %w", filepath.Base(sg.path), rec.Seq, *next, ErrCorrupt)
		}
		if err := fn(rec); err != nil {
			return 0, fmt.Errorf("replay seq %d: %w", rec.Seq, err)
		}
		*next = rec.Seq + 1
	}
	if sc.Offset() == st.Size() {
		return st.Size(), nil
	}
	if !last {
		return 0, fmt.Errorf("wal segment %s at offset %d: %w", filepath.Base(sg.path), sc.Offset(), errors.Join(sc.Err(), ErrCorrupt))
	}
	if err := f.Truncate(sc.Offset()); err != nil {
		return 0, fmt.Errorf("truncate torn wal tail: %w", err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("sync truncated wal: %w", err)
	}
	return sc.Offset(), nil
}

// startSegment opens a fresh segment whose first record will be nextSeq.
// Callers hold mu (or own l exclusively).
func (l *Log) startSegment() error {
	if n := len(l.segs); n > 0 && l.segs[n-1].first == l.nextSeq {
		// The newest segment holds no record past nextSeq-1: reuse it.
		f, err := os.OpenFile(l.segs[n-1].path, os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("open wal segment: %w", err)
		}
		l.f = f
		return nil
	}
	sg := segment{first: l.nextSeq, path: filepath.Join(l.dir, segmentName(l.nextSeq))}
	f, err := os.OpenFile(sg.path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("create wal segment: %w", err)
	}
	if err := SyncDir(l.dir); err != nil {
		f.Close()
		return err
	}
	l.f = f
	l.segs = append(l.segs, sg)
	return nil
}

// Append writes a record of the given type and returns its sequence number.
// The record is durable only after Sync(seq) returns.
func (l *Log) Append(typ byte, data []byte) (uint64, error) {
	if bodyPrefix+len(data) > MaxRecordSize {
		return 0, fmt.Errorf("wal record of %d bytes exceeds the limit", len(data))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return 0, l.err
	}
	seq := l.nextSeq
	l.buf = AppendRecord(l.buf[:0], Record{Seq: seq, Type: typ, Data: data})
	if _, err := l.f.Write(l.buf); err != nil {
		l.err = fmt.Errorf("write wal: %w", err)
		return 0, l.err
	}
	if cap(l.buf) > 4<<20 {
		l.buf = nil
	}
	l.nextSeq++
	l.appended = seq
	l.size += int64(HeaderSize + bodyPrefix + len(data))
	return seq, nil
}

// Sync makes every record up to seq durable. Concurrent callers share fsyncs.
func (l *Log) Sync(seq uint64) error {
	l.mu.Lock()
	if l.err != nil {
		err := l.err
		l.mu.Unlock()
		return err
	}
	done := l.synced >= seq
	l.mu.Unlock()
	if done {
		return nil
	}
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	if l.synced >= seq || l.err != nil {
		err := l.err
		l.mu.Unlock()
		return err
	}
	f, upto := l.f, l.appended
	l.mu.Unlock()
	err := f.Sync()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.err = fmt.Errorf("sync wal: %w", err)
		return l.err
	}
	if upto > l.synced {
		l.synced = upto
	}
	return nil
}

// LastSeq returns the sequence number of the last appended record.
func (l *Log) LastSeq() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.nextSeq - 1
}

// Size returns the number of bytes held by all segments.
func (l *Log) Size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.size
}

// Rotate syncs and closes the current segment and starts a new one, so that
// segments wholly covered by a snapshot can be removed.
func (l *Log) Rotate() error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return l.err
	}
	if n := len(l.segs); n > 0 && l.segs[n-1].first == l.nextSeq {
		return nil // current segment is empty
	}
	if err := l.f.Sync(); err != nil {
		l.err = fmt.Errorf("sync wal: %w", err)
		return l.err
	}
	l.synced = l.appended
	if err := l.f.Close(); err != nil {
		l.err = fmt.Errorf("close wal segment: %w", err)
		return l.err
	}
	if err := l.startSegment(); err != nil {
		l.err = err
		return err
	}
	return nil
}

// RemoveThrough deletes the segments whose records all have Seq <= seq.
func (l *Log) RemoveThrough(seq uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	keep := l.segs[:0:0]
	for i, sg := range l.segs {
		if i < len(l.segs)-1 && l.segs[i+1].first <= seq+1 {
			if st, err := os.Stat(sg.path); err == nil {
				l.size -= st.Size()
			}
			if err := os.Remove(sg.path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("remove wal segment: %w", err)
			}
			continue
		}
		keep = append(keep, sg)
	}
	l.segs = keep
	return SyncDir(l.dir)
}

// Close syncs and closes the log.
func (l *Log) Close() error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	var err error
	if l.err == nil {
		err = l.f.Sync()
	}
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	if l.err == nil {
		l.err = errors.New("wal closed")
	}
	if err != nil {
		return fmt.Errorf("close wal: %w", err)
	}
	return nil
}

// SyncDir fsyncs a directory so that file creations and renames in it are
// durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir for sync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir: %w", err)
	}
	return nil
}

// Abandon closes the log's file without syncing it, leaving the directory
// as a process crash would. It exists for crash tests.
func (l *Log) Abandon() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
	l.err = errors.New("wal abandoned")
}
