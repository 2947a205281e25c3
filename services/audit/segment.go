package audit

import (
	"bufio"
	"context"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
)

// Segment file format, version 1 (all integers big-endian):
//
//	header: magic "TRBAUDIT" | version u16 | segment index u64 |
//	        first seq u64 | previous hash [32] |
//	        key id length u16 | key id | wrapped key length u16 | wrapped key
//	frame:  body length u32 | body
//	record body: kind 0x01 | seq u64 | nonce [12] | AES-256-GCM ciphertext+tag
//	seal body:   kind 0x02 | record count u64 | last seq u64 | last hash [32] |
//	             nonce [12] | GCM tag of the empty plaintext
//
// The chain: h(0) is the previous segment's last hash (zeros for the first
// segment) and h(i) = SHA-256(h(i-1) || body(i)) for each record body. A
// record's GCM additional data is recordAAD || seq || h(i-1), so a record
// decrypts only at its own sequence number behind its own predecessor.
// A seal authenticates (under the segment's data key) the segment index,
// the count, the last seq and the last hash, so removing records from the
// end of a sealed segment is detected too.
const (
	magic          = "TRBAUDIT"
	formatVersion  = 1
	kindRecord     = 0x01
	kindSeal       = 0x02
	nonceSize      = 12
	tagSize        = 16
	hashSize       = sha256.Size
	maxKeyIDLen    = 255
	maxWrappedLen  = 4096
	sealBodySize   = 1 + 8 + 8 + hashSize + nonceSize + tagSize
	minRecordBody  = 1 + 8 + nonceSize + tagSize
	recordAAD      = "tributary-audit-v1\x00record"
	sealAAD        = "tributary-audit-v1\x00seal"
	segmentPattern = `^seg-([0-9]{20})\.aud$`
)

// MaxRecordSize bounds a record's canonical JSON; a larger message is
// recorded with its payload omitted (only its size and SHA-256 kept).
const MaxRecordSize = 16 << 20

const maxBody = MaxRecordSize + minRecordBody

var segmentRE = regexp.MustCompile(segmentPattern)

func segmentName(index uint64) string { return fmt.Sprintf("seg-%020d.aud", index) }

// CorruptError reports the first place where an audit log is not what was
// written: a modified, removed, inserted or reordered record, a truncated
// or missing segment, or a header that does not fit the chain.
type CorruptError struct {
	// Segment is the file name of the bad segment ("" for the directory).
	Segment string
	// Record is the 1-based position of the bad frame in the segment; 0
	// means the header or the segment as a whole.
	Record uint64
	// Offset is the byte offset of the bad frame or field in the segment.
	Offset int64
	// Reason says what is wrong.
	Reason string
	// Truncated is set when the segment ends inside a frame.
	Truncated bool
}

func (e *CorruptError) Error() string {
	switch {
	case e.Segment == "":
		return "audit log corrupt: " + e.Reason
	case e.Record == 0:
		return fmt.Sprintf("audit log corrupt: segment %s: %s", e.Segment, e.Reason)
	default:
		return fmt.Sprintf("audit log corrupt: segment %s record %d (byte %d): %s", e.Segment, e.Record, e.Offset, e.Reason)
	}
}

type header struct {
	index    uint64
	firstSeq uint64
	prevHash [hashSize]byte
	keyID    string
	wrapped  []byte
}

func (h header) encode() []byte {
	b := make([]byte, 0, 64+len(h.keyID)+len(h.wrapped))
	b = append(b, magic...)
	b = binary.BigEndian.AppendUint16(b, formatVersion)
	b = binary.BigEndian.AppendUint64(b, h.index)
	b = binary.BigEndian.AppendUint64(b, h.firstSeq)
	b = append(b, h.prevHash[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(h.keyID)))
	b = append(b, h.keyID...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(h.wrapped)))
	b = append(b, h.wrapped...)
	return b
}

// readHeader reads a segment header; it returns the header's size.
func readHeader(r io.Reader) (header, int64, error) {
	var h header
	fixed := make([]byte, len(magic)+2+8+8+hashSize+2)
	if _, err := io.ReadFull(r, fixed); err != nil {
		return h, 0, fmt.Errorf("header: %w", noEOF(err))
	}
	if string(fixed[:len(magic)]) != magic {
		return h, 0, errors.New("header: bad magic")
	}
	p := fixed[len(magic):]
	if v := binary.BigEndian.Uint16(p); v != formatVersion {
		return h, 0, fmt.Errorf("header: unsupported version %d", v)
	}
	h.index = binary.BigEndian.Uint64(p[2:])
	h.firstSeq = binary.BigEndian.Uint64(p[10:])
	copy(h.prevHash[:], p[18:18+hashSize])
	n := int(binary.BigEndian.Uint16(p[18+hashSize:]))
	if n == 0 || n > maxKeyIDLen {
		return h, 0, fmt.Errorf("header: key id length %d", n)
	}
	rest := make([]byte, n+2)
	if _, err := io.ReadFull(r, rest); err != nil {
		return h, 0, fmt.Errorf("header: %w", noEOF(err))
	}
	h.keyID = string(rest[:n])
	m := int(binary.BigEndian.Uint16(rest[n:]))
	if m == 0 || m > maxWrappedLen {
		return h, 0, fmt.Errorf("header: wrapped key length %d", m)
	}
	h.wrapped = make([]byte, m)
	if _, err := io.ReadFull(r, h.wrapped); err != nil {
		return h, 0, fmt.Errorf("header: %w", noEOF(err))
	}
	return h, int64(len(fixed) + len(rest) + m), nil
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

func appendSeq(b []byte, seq uint64) []byte { return binary.BigEndian.AppendUint64(b, seq) }

func recordAD(seq uint64, prev [hashSize]byte) []byte {
	b := make([]byte, 0, len(recordAAD)+8+hashSize)
	b = append(b, recordAAD...)
	b = appendSeq(b, seq)
	return append(b, prev[:]...)
}

func sealAD(index, count, lastSeq uint64, last [hashSize]byte) []byte {
	b := make([]byte, 0, len(sealAAD)+24+hashSize)
	b = append(b, sealAAD...)
	b = appendSeq(b, index)
	b = appendSeq(b, count)
	b = appendSeq(b, lastSeq)
	return append(b, last[:]...)
}

func chainHash(prev [hashSize]byte, body []byte) [hashSize]byte {
	h := sha256.New()
	h.Write(prev[:])
	h.Write(body)
	var out [hashSize]byte
	h.Sum(out[:0])
	return out
}

// chain is the position of a reader or writer in the log.
type chain struct {
	seq  uint64 // last seq written or read; 0 before the first record
	head [hashSize]byte
}

// segmentScan describes one scanned segment.
type segmentScan struct {
	header   header
	records  uint64
	sealed   bool
	goodSize int64 // bytes up to the end of the last whole frame
	aead     cipher.AEAD
}

// scanSegment reads one segment from r, continuing chain c (which it
// advances). With keys it unwraps the data key, authenticates and decrypts
// every record and the seal, checks each plaintext is a canonical record
// with the frame's seq, and calls fn (if not nil) for each. Without keys
// it checks the structure and the chain only. name labels errors; index
// is the segment's expected index. On a *CorruptError, the segmentScan
// still says how far the segment was good.
func scanSegment(ctx context.Context, r io.Reader, name string, index uint64, c *chain, keys KeyProvider, aead cipher.AEAD, fn func(Record) error) (segmentScan, error) {
	var s segmentScan
	bad := func(rec uint64, off int64, format string, args ...any) error {
		return &CorruptError{Segment: name, Record: rec, Offset: off, Reason: fmt.Sprintf(format, args...)}
	}
	br := bufio.NewReaderSize(r, 64<<10)
	h, off, err := readHeader(br)
	if err != nil {
		return s, &CorruptError{Segment: name, Reason: err.Error(), Truncated: errors.Is(err, io.ErrUnexpectedEOF)}
	}
	s.header = h
	s.goodSize = off
	switch {
	case h.index != index:
		return s, bad(0, 0, "header says segment %d, want %d (segment removed, inserted or renamed)", h.index, index)
	case h.firstSeq != c.seq+1:
		return s, bad(0, 0, "first seq %d, want %d (records or segment removed)", h.firstSeq, c.seq+1)
	case h.prevHash != c.head:
		return s, bad(0, 0, "previous hash does not match the chain (segment removed or replaced)")
	}
	if aead == nil && keys != nil {
		dk, err := keys.UnwrapKey(ctx, h.keyID, h.wrapped)
		if err != nil {
			return s, bad(0, 0, "data key: %v", err)
		}
		if aead, err = newGCM(dk); err != nil {
			return s, bad(0, 0, "data key: %v", err)
		}
	}
	s.aead = aead
	lenBuf := make([]byte, 4)
	var body []byte
	for frame := uint64(1); ; frame++ {
		if err := ctx.Err(); err != nil {
			return s, err
		}
		n, err := io.ReadFull(br, lenBuf)
		if err == io.EOF {
			return s, nil
		}
		if err != nil {
			e := bad(frame, off, "truncated frame length")
			e.(*CorruptError).Truncated = true
			return s, e
		}
		if s.sealed {
			return s, bad(frame, off, "data after the seal (record appended to a sealed segment)")
		}
		size := binary.BigEndian.Uint32(lenBuf)
		if size < 1 || size > maxBody {
			return s, bad(frame, off, "frame length %d out of range", size)
		}
		// Grow the buffer with what is really there, so a hostile length
		// on a short file does not allocate the maximum.
		body = body[:0]
		for int64(len(body)) < int64(size) {
			chunk := min(int(size)-len(body), 1<<20)
			if cap(body)-len(body) < chunk {
				body = append(body[:len(body):len(body)], make([]byte, chunk)...)[:len(body)]
			}
			got, err := io.ReadFull(br, body[len(body):len(body)+chunk])
			body = body[:len(body)+got]
			if err != nil {
				e := bad(frame, off, "truncated frame (%d of %d bytes)", len(body), size)
				e.(*CorruptError).Truncated = true
				return s, e
			}
		}
		switch body[0] {
		case kindRecord:
			if len(body) < minRecordBody {
				return s, bad(frame, off, "record frame too short")
			}
			seq := binary.BigEndian.Uint64(body[1:9])
			if seq != c.seq+1 {
				return s, bad(frame, off, "seq %d, want %d (record removed, inserted or reordered)", seq, c.seq+1)
			}
			if aead != nil {
				nonce := body[9 : 9+nonceSize]
				pt, err := aead.Open(nil, nonce, body[9+nonceSize:], recordAD(seq, c.head))
				if err != nil {
					return s, bad(frame, off, "seq %d: authentication failed (record modified, or moved behind another predecessor)", seq)
				}
				rec, err := UnmarshalRecord(pt)
				if err != nil {
					return s, bad(frame, off, "seq %d: %v", seq, err)
				}
				if rec.Seq != seq {
					return s, bad(frame, off, "seq %d: record says seq %d", seq, rec.Seq)
				}
				if fn != nil {
					if err := fn(rec); err != nil {
						return s, err
					}
				}
			}
			c.head = chainHash(c.head, body)
			c.seq = seq
			s.records++
		case kindSeal:
			if len(body) != sealBodySize {
				return s, bad(frame, off, "seal of %d bytes, want %d", len(body), sealBodySize)
			}
			count := binary.BigEndian.Uint64(body[1:9])
			lastSeq := binary.BigEndian.Uint64(body[9:17])
			var last [hashSize]byte
			copy(last[:], body[17:17+hashSize])
			if count != s.records || lastSeq != c.seq || last != c.head {
				return s, bad(frame, off, "seal says %d records up to seq %d, found %d up to seq %d (records removed or added)", count, lastSeq, s.records, c.seq)
			}
			if aead != nil {
				nonce := body[17+hashSize : 17+hashSize+nonceSize]
				if _, err := aead.Open(nil, nonce, body[17+hashSize+nonceSize:], sealAD(h.index, count, lastSeq, last)); err != nil {
					return s, bad(frame, off, "seal authentication failed")
				}
			}
			s.sealed = true
		default:
			return s, bad(frame, off, "unknown frame kind %#x", body[0])
		}
		off += int64(n) + int64(size)
		s.goodSize = off
	}
}

// segmentFile is one segment in a directory listing.
type segmentFile struct {
	index uint64
	path  string
}

// listSegments returns the directory's segments ordered by index and
// checks that the indexes run from 0 without gaps.
func listSegments(dir string) ([]segmentFile, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list segments: %w", err)
	}
	var segs []segmentFile
	for _, e := range ents {
		m := segmentRE.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		i, err := strconv.ParseUint(m[1], 10, 64)
		if err != nil {
			return nil, &CorruptError{Reason: fmt.Sprintf("segment name %q", e.Name())}
		}
		if !e.Type().IsRegular() {
			return nil, &CorruptError{Segment: e.Name(), Reason: "not a regular file"}
		}
		segs = append(segs, segmentFile{index: i, path: filepath.Join(dir, e.Name())})
	}
	sort.Slice(segs, func(a, b int) bool { return segs[a].index < segs[b].index })
	for i, s := range segs {
		if s.index != uint64(i) {
			return nil, &CorruptError{Segment: segmentName(uint64(i)), Reason: "segment missing"}
		}
	}
	return segs, nil
}

// Report summarises a verified audit log.
type Report struct {
	// Segments and Records count what was verified.
	Segments int
	Records  uint64
	// LastSeq is the last record's seq; Head is the chain's last hash in
	// hex. Record both outside the log to detect a later truncation of its
	// tail (see docs/audit.md).
	LastSeq uint64
	Head    string
	// Sealed reports whether the last segment is sealed (the writer closed
	// cleanly); an open last segment is normal while the service runs.
	Sealed bool
	// Decrypted reports whether every record was authenticated and
	// decrypted (a KeyProvider was given), not only chain-checked.
	Decrypted bool
}

// Verify checks the audit log in dir: segment names and headers, the
// sequence numbers, the hash chain across segments, and the seals; every
// segment but the last must be sealed. With keys (may be nil) it also
// authenticates and decrypts every record and seal and checks that each
// record is canonical JSON carrying its own seq, which detects any change
// even by someone who recomputed the unkeyed hash chain. The first problem
// is returned as a *CorruptError.
func Verify(ctx context.Context, dir string, keys KeyProvider) (Report, error) {
	rep := Report{Decrypted: keys != nil}
	segs, err := listSegments(dir)
	if err != nil {
		return rep, err
	}
	var c chain
	for i, sf := range segs {
		s, err := scanFile(ctx, sf, -1, &c, keys, nil, nil)
		rep.Segments++
		rep.Records += s.records
		if err != nil {
			return rep, err
		}
		if !s.sealed && i < len(segs)-1 {
			return rep, &CorruptError{Segment: filepath.Base(sf.path), Reason: "segment not sealed but not the last (truncated)", Truncated: true}
		}
		rep.Sealed = s.sealed
	}
	rep.LastSeq = c.seq
	rep.Head = fmt.Sprintf("%x", c.head)
	return rep, nil
}

// scanFile opens a segment and scans at most limit bytes of it (all when
// limit < 0).
func scanFile(ctx context.Context, sf segmentFile, limit int64, c *chain, keys KeyProvider, aead cipher.AEAD, fn func(Record) error) (segmentScan, error) {
	f, err := os.Open(sf.path)
	if err != nil {
		return segmentScan{}, fmt.Errorf("open segment: %w", err)
	}
	defer f.Close()
	var r io.Reader = f
	if limit >= 0 {
		r = io.LimitReader(f, limit)
	}
	return scanSegment(ctx, r, filepath.Base(sf.path), sf.index, c, keys, aead, fn)
}
