package audit

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Segment file format, version 1, written by releases before the Vault
// key hierarchy and read (never written) by this one:
//
//	header: as version 2, then key id length u16 | key id |
//	        wrapped key length u16 | wrapped key
//	record body: kind 0x01 | seq u64 | nonce [12] | AES-256-GCM ciphertext+tag
//	seal body:   kind 0x02 | record count u64 | last seq u64 | last hash [32] |
//	             nonce [12] | GCM tag of the empty plaintext
//
// One data key per segment, for every tenant, wrapped in the header by
// the KEK of the local key file (FileKeys: the same file format and key
// ids as today). The chain is the same as version 2's: h(i) =
// SHA-256(h(i-1) || body(i)) over record bodies, seals outside it, and a
// segment's previous hash is the last hash of the segment before, of
// either format; so the first format-2 segment of an upgraded log
// continues the chain from the head of the last format-1 segment. A
// record's additional data is recordAADv1 || seq || h(i-1); a seal
// authenticates the segment index, the count, the last seq and the last
// hash under the segment's data key.
const (
	formatV1        = 1
	recordAADv1     = "tributary-audit-v1\x00record"
	sealAADv1       = "tributary-audit-v1\x00seal"
	minRecordBodyV1 = 1 + 8 + nonceSize + tagSize
	sealBodySizeV1  = sealBodySize + nonceSize + tagSize
)

// readV1Key reads the rest of a format-1 header: the wrapped data key and
// the id of its KEK. It returns how many bytes it read.
func readV1Key(r io.Reader) (KeyRef, int64, error) {
	var ref KeyRef
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return ref, 0, fmt.Errorf("header: %w", noEOF(err))
	}
	n := int(binary.BigEndian.Uint16(l[:]))
	if n == 0 || n > maxKeyIDLen {
		return ref, 0, fmt.Errorf("header: key id length %d", n)
	}
	rest := make([]byte, n+2)
	if _, err := io.ReadFull(r, rest); err != nil {
		return ref, 0, fmt.Errorf("header: %w", noEOF(err))
	}
	ref.KeyID = string(rest[:n])
	m := int(binary.BigEndian.Uint16(rest[n:]))
	if m == 0 || m > maxWrappedLen {
		return ref, 0, fmt.Errorf("header: wrapped key length %d", m)
	}
	ref.Wrapped = make([]byte, m)
	if _, err := io.ReadFull(r, ref.Wrapped); err != nil {
		return ref, 0, fmt.Errorf("header: %w", noEOF(err))
	}
	return ref, int64(2 + n + 2 + m), nil
}

// unwrapV1 unwraps a format-1 segment's data key. Format 1 had one KEK
// for every tenant, in the local key file: a refused wrapped key is
// tampering, and any other failure (another key file, or Vault, which
// has no such key or no right to it) means the key file is missing,
// never that the key was shredded.
func unwrapV1(ctx context.Context, keys KeyProvider, ref KeyRef) (cipher.AEAD, error) {
	dk, err := keys.UnwrapKey(ctx, ref)
	switch {
	case errors.Is(err, ErrUnwrap):
		return nil, &CorruptError{Reason: fmt.Sprintf("format-1 data key refused (tampered with, or from another key): %v", err)}
	case err != nil:
		return nil, fmt.Errorf("format-1 segment: its data key is wrapped by KEK %s of the key file the earlier release used; give that key file: %w", ref.KeyID, err)
	}
	return newGCM(dk)
}

// frameV1 checks one frame body of a format-1 segment against chain c,
// decrypting a record when the data key is known (s.v1) and passing it to
// o.fn if o.only selects its tenant. Format 1 has no per-tenant keys, so
// every record is decrypted to learn its tenant, and none is shredded.
// Errors are *CorruptError without position (the caller adds it), or
// o.fn's.
func (s *segmentScan) frameV1(body []byte, c *chain, o scanOpts) error {
	bad := func(format string, args ...any) error {
		return &CorruptError{Reason: fmt.Sprintf(format, args...)}
	}
	switch body[0] {
	case kindRecord:
		if len(body) < minRecordBodyV1 {
			return bad("record frame too short")
		}
		seq := binary.BigEndian.Uint64(body[1:9])
		if seq != c.seq+1 {
			return bad("seq %d, want %d (record removed, inserted or reordered)", seq, c.seq+1)
		}
		if s.v1 != nil {
			ad := append(appendSeq([]byte(recordAADv1), seq), c.head[:]...)
			pt, err := s.v1.Open(nil, body[9:9+nonceSize], body[9+nonceSize:], ad)
			if err != nil {
				return bad("seq %d: authentication failed (record modified, or moved behind another predecessor)", seq)
			}
			var rec Record
			if o.trusted {
				rec, err = decodeRecord(pt)
			} else {
				rec, err = UnmarshalRecord(pt)
			}
			if err != nil {
				return bad("seq %d: %v", seq, err)
			}
			if rec.Seq != seq {
				return bad("seq %d: record says seq %d", seq, rec.Seq)
			}
			if o.fn != nil && (o.only == nil || o.only(rec.Tenant)) {
				if err := o.fn(Entry{Record: rec, raw: pt}); err != nil {
					return err
				}
			}
		}
		c.head = chainHash(c.head, body)
		c.seq = seq
		s.records++
	case kindSeal:
		if len(body) != sealBodySizeV1 {
			return bad("seal of %d bytes, want %d", len(body), sealBodySizeV1)
		}
		count := binary.BigEndian.Uint64(body[1:9])
		lastSeq := binary.BigEndian.Uint64(body[9:17])
		var last [hashSize]byte
		copy(last[:], body[17:17+hashSize])
		if count == s.records && lastSeq == c.seq && last != c.head {
			return bad("seal's last hash differs from the chain (a record changed)")
		}
		if count != s.records || lastSeq != c.seq || last != c.head {
			return bad("seal says %d records up to seq %d, found %d up to seq %d (records removed or added)", count, lastSeq, s.records, c.seq)
		}
		if s.v1 != nil {
			nonce := body[17+hashSize : 17+hashSize+nonceSize]
			if _, err := s.v1.Open(nil, nonce, body[17+hashSize+nonceSize:], sealADv1(s.header.index, count, lastSeq, last)); err != nil {
				return bad("seal authentication failed")
			}
		}
		s.sealed = true
	default:
		return bad("unknown frame kind %#x", body[0])
	}
	return nil
}

func sealADv1(index, count, lastSeq uint64, last [hashSize]byte) []byte {
	b := append([]byte(nil), sealAADv1...)
	b = appendSeq(b, index)
	b = appendSeq(b, count)
	b = appendSeq(b, lastSeq)
	return append(b, last[:]...)
}

// sealFrameV1 is the seal frame the earlier release wrote when it reopened
// a log whose last segment was open: Open closes a format-1 tail the same
// way before the log continues in format 2.
func sealFrameV1(index, count uint64, c chain, aead cipher.AEAD) ([]byte, error) {
	nonce := make([]byte, nonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal nonce: %w", err)
	}
	b := binary.BigEndian.AppendUint32(make([]byte, 0, 4+sealBodySizeV1), sealBodySizeV1)
	b = append(b, kindSeal)
	b = appendSeq(b, count)
	b = appendSeq(b, c.seq)
	b = append(b, c.head[:]...)
	b = append(b, nonce...)
	return aead.Seal(b, nonce, nil, sealADv1(index, count, c.seq, c.head)), nil
}

// WithFormat1Keys returns keys, except that data keys wrapped by a KEK of
// file (format-1 segments) are unwrapped by file: a deployment that moved
// to Vault when it upgraded still reads the segments the key file
// protects. Give it to Open and Verify, not to the key administration,
// which acts on keys alone.
func WithFormat1Keys(keys KeyProvider, file *FileKeys) KeyProvider {
	return format1Keys{KeyProvider: keys, file: file}
}

type format1Keys struct {
	KeyProvider
	file *FileKeys
}

func (k format1Keys) UnwrapKey(ctx context.Context, ref KeyRef) ([]byte, error) {
	if _, ok := k.file.keys[ref.KeyID]; ok {
		return k.file.UnwrapKey(ctx, ref)
	}
	return k.KeyProvider.UnwrapKey(ctx, ref)
}
