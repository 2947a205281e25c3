package audit

import (
	"bufio"
	"context"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Segment file format, version 2 (all integers big-endian):
//
//	header: magic "TRBAUDIT" | version u16 | segment index u64 |
//	        first seq u64 | previous hash [32]
//	frame:  body length u32 | body
//	key body:    kind 0x03 | slot u16 | created unix ns i64 |
//	             tenant length u16 | tenant | key id length u16 | key id
//	record body: kind 0x01 | seq u64 | slot u16 | nonce [12] |
//	             AES-256-GCM ciphertext+tag
//	seal body:   kind 0x02 | record count u64 | last seq u64 | last hash [32]
//
// Each tenant's records in a segment are encrypted with the data key of
// their own slot; a key frame, written before the first record of its
// slot, names the slot's tenant and the KEK (a transit key) that wrapped
// its data key. The wrapped data keys themselves are in the segment's key
// file, seg-N.keys (keyFile), outside the chain, so a rewrap replaces them
// without touching a record and a shredded key leaves the chain intact.
//
// The chain: h(0) is the previous segment's last hash (zeros for the first
// segment) and h(i) = SHA-256(h(i-1) || body(i)) for each key and record
// body. A record's GCM additional data is recordAAD || seq || h(i-1) ||
// slot, so a record decrypts only at its own sequence number, behind its
// own predecessor, under its own slot; its plaintext names its tenant,
// which must be the slot's. A seal states the segment's record count, last
// seq and last hash, so removing records from the end of a sealed segment
// is detected by any reader who knows the chain's head (see docs/audit.md).
//
// Segments of format 1 (segment_v1.go) are read, never written: a log
// upgraded from format 1 continues its chain into format 2.
const (
	magic          = "TRBAUDIT"
	formatVersion  = 2
	kindRecord     = 0x01
	kindSeal       = 0x02
	kindKey        = 0x03
	nonceSize      = 12
	tagSize        = 16
	hashSize       = sha256.Size
	maxKeyIDLen    = 255
	maxTenantLen   = 1024
	maxWrappedLen  = 4096
	maxSlots       = 4096
	sealBodySize   = 1 + 8 + 8 + hashSize
	minRecordBody  = 1 + 8 + 2 + nonceSize + tagSize
	recordAAD      = "tributary-audit-v2\x00record"
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
	version  uint16
	index    uint64
	firstSeq uint64
	prevHash [hashSize]byte
	// v1Key is a format-1 segment's data key, wrapped, from its header.
	v1Key KeyRef
}

const headerSize = len(magic) + 2 + 8 + 8 + hashSize

func (h header) encode() []byte {
	b := make([]byte, 0, headerSize)
	b = append(b, magic...)
	b = binary.BigEndian.AppendUint16(b, formatVersion)
	b = binary.BigEndian.AppendUint64(b, h.index)
	b = binary.BigEndian.AppendUint64(b, h.firstSeq)
	return append(b, h.prevHash[:]...)
}

// readHeader reads a segment header; it returns the header's size.
func readHeader(r io.Reader) (header, int64, error) {
	var h header
	fixed := make([]byte, headerSize)
	if _, err := io.ReadFull(r, fixed); err != nil {
		return h, 0, fmt.Errorf("header: %w", noEOF(err))
	}
	if string(fixed[:len(magic)]) != magic {
		return h, 0, errors.New("header: bad magic")
	}
	p := fixed[len(magic):]
	h.version = binary.BigEndian.Uint16(p)
	if h.version != formatVersion && h.version != formatV1 {
		return h, 0, fmt.Errorf("header: unsupported version %d", h.version)
	}
	h.index = binary.BigEndian.Uint64(p[2:])
	h.firstSeq = binary.BigEndian.Uint64(p[10:])
	copy(h.prevHash[:], p[18:18+hashSize])
	if h.version == formatV1 {
		ref, n, err := readV1Key(r)
		h.v1Key = ref
		return h, int64(headerSize) + n, err
	}
	return h, int64(headerSize), nil
}

// keyFrame is a key body: a slot's tenant and KEK.
type keyFrame struct {
	slot    uint16
	created time.Time
	tenant  string
	keyID   string
}

func (k keyFrame) body() []byte {
	b := make([]byte, 0, 1+2+8+2+len(k.tenant)+2+len(k.keyID))
	b = append(b, kindKey)
	b = binary.BigEndian.AppendUint16(b, k.slot)
	b = binary.BigEndian.AppendUint64(b, uint64(k.created.UnixNano()))
	b = binary.BigEndian.AppendUint16(b, uint16(len(k.tenant)))
	b = append(b, k.tenant...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(k.keyID)))
	return append(b, k.keyID...)
}

func parseKeyFrame(b []byte) (keyFrame, error) {
	var k keyFrame
	if len(b) < 1+2+8+2 {
		return k, errors.New("key frame too short")
	}
	k.slot = binary.BigEndian.Uint16(b[1:])
	k.created = time.Unix(0, int64(binary.BigEndian.Uint64(b[3:]))).UTC()
	n := int(binary.BigEndian.Uint16(b[11:]))
	rest := b[13:]
	if n > maxTenantLen || len(rest) < n+2 {
		return k, errors.New("key frame: bad tenant length")
	}
	k.tenant = string(rest[:n])
	rest = rest[n:]
	m := int(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if m == 0 || m > maxKeyIDLen || len(rest) != m {
		return k, errors.New("key frame: bad key id length")
	}
	k.keyID = string(rest)
	return k, nil
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

func appendSeq(b []byte, seq uint64) []byte { return binary.BigEndian.AppendUint64(b, seq) }

func recordAD(seq uint64, prev [hashSize]byte, slot uint16) []byte {
	b := make([]byte, 0, len(recordAAD)+8+hashSize+2)
	b = append(b, recordAAD...)
	b = appendSeq(b, seq)
	b = append(b, prev[:]...)
	return binary.BigEndian.AppendUint16(b, slot)
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

// slotKey is a slot of a segment: its tenant, KEK and, once unwrapped,
// its data key.
type slotKey struct {
	keyFrame
	aead     cipher.AEAD
	shredded bool
}

// Entry is one record a scan yields: decrypted, or, when its tenant's key
// was shredded, only its Seq and Tenant with Shredded set.
type Entry struct {
	Record
	Shredded bool
	// raw is the record's canonical JSON as stored (authenticated by GCM),
	// so an export writes it without encoding it again.
	raw []byte
}

// Bytes returns the record's canonical JSON.
func (e Entry) Bytes() ([]byte, error) {
	if e.raw != nil {
		return e.raw, nil
	}
	return e.Record.Marshal()
}

// scanOpts says how much of a segment to check.
type scanOpts struct {
	// keys, when set, decrypts and authenticates records; nil checks the
	// structure and the chain only.
	keys KeyProvider
	// wrapped are the segment's wrapped data keys by slot (its key file).
	wrapped map[uint16]KeyRef
	// known are slots already unwrapped (the writer's); may be nil.
	known map[uint16]*slotKey
	// only, when set, selects the tenants whose records are decrypted;
	// the others are chain-checked only.
	only func(tenant string) bool
	// fn is called for each record decrypted or shredded.
	fn func(Entry) error
	// trusted skips the check that a plaintext is in canonical form
	// (decode and re-encode, most of the cost of a scan): GCM already
	// proves the bytes are those written. Verify and recovery check it.
	trusted bool
}

// segmentScan describes one scanned segment.
type segmentScan struct {
	header   header
	records  uint64
	sealed   bool
	goodSize int64 // bytes up to the end of the last whole frame
	slots    map[uint16]*slotKey
	// v1 is a format-1 segment's data key, once unwrapped.
	v1 cipher.AEAD
}

// scanSegment reads one segment from r, continuing chain c (which it
// advances). With o.keys it unwraps each slot's data key, authenticates
// and decrypts every selected record, checks each plaintext is a
// canonical record with the frame's seq and the slot's tenant, and calls
// o.fn for each; records of a shredded tenant are passed as such. name
// labels errors; index is the segment's expected index. On a
// *CorruptError, the segmentScan still says how far the segment was good.
// An unreachable key provider is an error wrapping ErrKeysUnavailable,
// not a *CorruptError.
func scanSegment(ctx context.Context, r io.Reader, name string, index uint64, c *chain, o scanOpts) (segmentScan, error) {
	s := segmentScan{slots: map[uint16]*slotKey{}}
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
	if h.version == formatV1 && o.keys != nil {
		if s.v1, err = unwrapV1(ctx, o.keys, h.v1Key); err != nil {
			var ce *CorruptError
			if errors.As(err, &ce) {
				ce.Segment = name
			}
			return s, err
		}
	}
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
		if h.version == formatV1 {
			if err := s.frameV1(body, c, o); err != nil {
				var ce *CorruptError
				if errors.As(err, &ce) {
					ce.Segment, ce.Record, ce.Offset = name, frame, off
				}
				return s, err
			}
			off += int64(n) + int64(size)
			s.goodSize = off
			continue
		}
		switch body[0] {
		case kindKey:
			kf, err := parseKeyFrame(body)
			if err != nil {
				return s, bad(frame, off, "%v", err)
			}
			if int(kf.slot) != len(s.slots) || len(s.slots) >= maxSlots {
				return s, bad(frame, off, "key slot %d, want %d (key frame removed, inserted or reordered)", kf.slot, len(s.slots))
			}
			sk := &slotKey{keyFrame: kf}
			if k, ok := o.known[kf.slot]; ok && k.keyFrame == kf && (k.aead != nil || k.shredded) {
				sk = k // shared with the writer: used, never modified
			}
			s.slots[kf.slot] = sk
			c.head = chainHash(c.head, body)
		case kindRecord:
			if len(body) < minRecordBody {
				return s, bad(frame, off, "record frame too short")
			}
			seq := binary.BigEndian.Uint64(body[1:9])
			if seq != c.seq+1 {
				return s, bad(frame, off, "seq %d, want %d (record removed, inserted or reordered)", seq, c.seq+1)
			}
			slot := binary.BigEndian.Uint16(body[9:11])
			sk, ok := s.slots[slot]
			if !ok {
				return s, bad(frame, off, "seq %d: key slot %d has no key frame before it", seq, slot)
			}
			if o.keys != nil && (o.only == nil || o.only(sk.tenant)) {
				if sk.aead == nil && !sk.shredded {
					if err := unwrapSlot(ctx, o, sk); err != nil {
						var ce *CorruptError
						if errors.As(err, &ce) {
							ce.Segment, ce.Record, ce.Offset = name, frame, off
						}
						return s, err
					}
				}
				if sk.shredded {
					if o.fn != nil {
						if err := o.fn(Entry{Record: Record{Seq: seq, Tenant: sk.tenant}, Shredded: true}); err != nil {
							return s, err
						}
					}
				} else {
					nonce := body[11 : 11+nonceSize]
					pt, err := sk.aead.Open(nil, nonce, body[11+nonceSize:], recordAD(seq, c.head, slot))
					if err != nil {
						return s, bad(frame, off, "seq %d: authentication failed (record modified, moved behind another predecessor, or its wrapped key swapped)", seq)
					}
					var rec Record
					if o.trusted {
						rec, err = decodeRecord(pt)
					} else {
						rec, err = UnmarshalRecord(pt)
					}
					if err != nil {
						return s, bad(frame, off, "seq %d: %v", seq, err)
					}
					if rec.Seq != seq {
						return s, bad(frame, off, "seq %d: record says seq %d", seq, rec.Seq)
					}
					if rec.Tenant != sk.tenant {
						return s, bad(frame, off, "seq %d: record of tenant %q under the key of tenant %q", seq, rec.Tenant, sk.tenant)
					}
					if o.fn != nil {
						if err := o.fn(Entry{Record: rec, raw: pt}); err != nil {
							return s, err
						}
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
			s.sealed = true
		default:
			return s, bad(frame, off, "unknown frame kind %#x", body[0])
		}
		off += int64(n) + int64(size)
		s.goodSize = off
	}
}

// unwrapSlot unwraps sk's data key from o.wrapped. A destroyed KEK marks
// the slot shredded; a refused or missing wrapped key is a *CorruptError.
func unwrapSlot(ctx context.Context, o scanOpts, sk *slotKey) error {
	ref, ok := o.wrapped[sk.slot]
	if !ok {
		return &CorruptError{Reason: fmt.Sprintf("key slot %d (tenant %q): no wrapped data key in the key file (key file removed or changed)", sk.slot, sk.tenant)}
	}
	// The key file's KEK id is used, not the key frame's: a rewrap under a
	// key file's new KEK changes it. A wrapped key moved in from another
	// slot still fails every record's tag.
	dk, err := o.keys.UnwrapKey(ctx, ref)
	switch {
	case errors.Is(err, ErrKeyDestroyed):
		sk.shredded = true
		return nil
	case errors.Is(err, ErrUnwrap), errors.Is(err, ErrUnknownKey):
		return &CorruptError{Reason: fmt.Sprintf("key slot %d (tenant %q): wrapped data key refused (tampered with, or from another key): %v", sk.slot, sk.tenant, err)}
	case err != nil:
		return fmt.Errorf("key slot %d (tenant %q): %w", sk.slot, sk.tenant, err)
	}
	aead, err := newGCM(dk)
	if err != nil {
		return err
	}
	sk.aead = aead
	return nil
}

// keyFileEntry is one wrapped data key in a key file.
type keyFileEntry struct {
	Slot    uint16 `json:"slot"`
	KeyID   string `json:"key_id"`
	Wrapped []byte `json:"wrapped"`
}

// keyFile is the content of seg-N.keys: the segment's wrapped data keys.
// It is replaced whole (write, sync, rename), never edited in place.
type keyFile struct {
	Keys []keyFileEntry `json:"keys"`
}

func keyFilePath(segPath string) string { return strings.TrimSuffix(segPath, ".aud") + ".keys" }

// readKeyFile returns the wrapped keys of the segment at segPath by slot;
// a missing file is an empty one (a segment without records).
func readKeyFile(segPath string) (map[uint16]KeyRef, error) {
	out := map[uint16]KeyRef{}
	f, err := os.Open(keyFilePath(segPath))
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	defer f.Close()
	b, err := readLimited(f, 16<<20)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	var kf keyFile
	if err := json.Unmarshal(b, &kf); err != nil {
		return nil, &CorruptError{Segment: filepath.Base(keyFilePath(segPath)), Reason: fmt.Sprintf("key file unreadable: %v", err)}
	}
	for _, e := range kf.Keys {
		out[e.Slot] = KeyRef{KeyID: e.KeyID, Wrapped: e.Wrapped}
	}
	return out, nil
}

// writeKeyFile replaces the key file of the segment at segPath.
func writeKeyFile(segPath string, refs map[uint16]KeyRef) error {
	var kf keyFile
	for slot, r := range refs {
		kf.Keys = append(kf.Keys, keyFileEntry{Slot: slot, KeyID: r.KeyID, Wrapped: r.Wrapped})
	}
	sort.Slice(kf.Keys, func(a, b int) bool { return kf.Keys[a].Slot < kf.Keys[b].Slot })
	b, err := json.Marshal(kf)
	if err != nil {
		return err
	}
	path := keyFilePath(segPath)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close key file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	return syncDir(filepath.Dir(path))
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

// ShredRange counts one tenant's records whose key was shredded.
type ShredRange struct {
	Tenant   string `json:"tenant"`
	Records  uint64 `json:"records"`
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
}

// shredTally accumulates ShredRanges in tenant order of first appearance.
type shredTally struct {
	ranges []ShredRange
	index  map[string]int
}

func (t *shredTally) add(tenant string, seq uint64) {
	if t.index == nil {
		t.index = map[string]int{}
	}
	i, ok := t.index[tenant]
	if !ok {
		i = len(t.ranges)
		t.index[tenant] = i
		t.ranges = append(t.ranges, ShredRange{Tenant: tenant, FirstSeq: seq})
	}
	t.ranges[i].Records++
	t.ranges[i].LastSeq = seq
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
	// decrypted (a KeyProvider was given), not only chain-checked; the
	// records of Shredded are the exception.
	Decrypted bool
	// Shredded counts, per tenant, the records whose key was destroyed.
	Shredded []ShredRange
}

// Verify checks the audit log in dir: segment names and headers, the
// sequence numbers, the key frames, the hash chain across segments, and
// the seals; every segment but the last must be sealed. With keys (may be
// nil) it also unwraps every data key and authenticates and decrypts
// every record and checks that each is canonical JSON carrying its own seq
// and its slot's tenant, which detects any change even by someone who
// recomputed the unkeyed hash chain; records whose tenant key was
// shredded are counted in Report.Shredded. The first problem is returned
// as a *CorruptError; an unreachable key provider as an error wrapping
// ErrKeysUnavailable.
func Verify(ctx context.Context, dir string, keys KeyProvider) (Report, error) {
	rep := Report{Decrypted: keys != nil}
	segs, err := listSegments(dir)
	if err != nil {
		return rep, err
	}
	var c chain
	var shred shredTally
	fn := func(e Entry) error {
		if e.Shredded {
			shred.add(e.Tenant, e.Seq)
		}
		return nil
	}
	for i, sf := range segs {
		s, err := scanFile(ctx, sf, -1, &c, scanOpts{keys: keys, fn: fn})
		rep.Segments++
		rep.Records += s.records
		if err != nil {
			rep.Shredded = shred.ranges
			return rep, err
		}
		if !s.sealed && i < len(segs)-1 {
			return rep, &CorruptError{Segment: filepath.Base(sf.path), Reason: "segment not sealed but not the last (truncated)", Truncated: true}
		}
		rep.Sealed = s.sealed
	}
	rep.LastSeq = c.seq
	rep.Head = fmt.Sprintf("%x", c.head)
	rep.Shredded = shred.ranges
	return rep, nil
}

// scanFile opens a segment and scans at most limit bytes of it (all when
// limit < 0); with o.keys and no o.wrapped it reads the segment's key file.
func scanFile(ctx context.Context, sf segmentFile, limit int64, c *chain, o scanOpts) (segmentScan, error) {
	if o.keys != nil && o.wrapped == nil {
		w, err := readKeyFile(sf.path)
		if err != nil {
			return segmentScan{}, err
		}
		o.wrapped = w
	}
	f, err := os.Open(sf.path)
	if err != nil {
		return segmentScan{}, fmt.Errorf("open segment: %w", err)
	}
	defer f.Close()
	var r io.Reader = f
	if limit >= 0 {
		r = io.LimitReader(f, limit)
	}
	return scanSegment(ctx, r, filepath.Base(sf.path), sf.index, c, o)
}
