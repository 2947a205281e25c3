package audit

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

const testKeyHex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

func testKeys(t testing.TB) *FileKeys {
	t.Helper()
	k, err := ParseKeys([]byte(testKeyHex + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testMsg(topic string, partition int, offset int64, tenant, typ string) kafka.Message {
	return kafka.Message{
		Topic: topic, Partition: partition, Offset: offset,
		Time: time.Date(2026, 11, 28, 10, 0, int(offset), 0, time.UTC),
		Headers: hdrs("ce_specversion", "1.0", "ce_id", fmt.Sprintf("%s-%d-%d", topic, partition, offset), "ce_source", "test",
			"ce_type", typ, "tenantid", tenant, "ce_time", time.Date(2026, 11, 28, 10, 0, int(offset), 0, time.UTC).Format(time.RFC3339Nano)),
		Value: []byte(fmt.Sprintf(`{"tenant_id":%q,"n":%d}`, tenant, offset)),
	}
}

// writeLog writes n records (offsets 0..n-1 on one partition) in batches
// of batch, rolling segments at segSize, and closes the log.
func writeLog(t *testing.T, dir string, n, batch int, segSize int64) {
	t.Helper()
	ctx := context.Background()
	l, err := Open(ctx, dir, testKeys(t), WithSegmentSize(segSize))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	for i := 0; i < n; i += batch {
		var msgs []kafka.Message
		for j := i; j < min(n, i+batch); j++ {
			msgs = append(msgs, testMsg("tributary.chunks.v1", 0, int64(j), "acme", "tributary.chunk.created"))
		}
		if _, err := l.Append(ctx, msgs); err != nil {
			t.Fatalf("Append: %v", err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

type frameSpan struct{ off, end int64 }

// frames returns the byte spans of the frames of a segment file.
func frames(t *testing.T, path string) (headerLen int64, spans []frameSpan) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, hl, err := readHeader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	for off := hl; off < int64(len(b)); {
		n := int64(binary.BigEndian.Uint32(b[off:]))
		spans = append(spans, frameSpan{off, off + 4 + n})
		off += 4 + n
	}
	return hl, spans
}

func segPath(dir string, i uint64) string { return filepath.Join(dir, segmentName(i)) }

func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func edit(t *testing.T, path string, fn func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, fn(b), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestLogWriteVerifyScan(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeLog(t, dir, 40, 7, 1500)
	rep, err := Verify(ctx, dir, testKeys(t))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if rep.Records != 40 || rep.LastSeq != 40 || !rep.Sealed || !rep.Decrypted || rep.Segments < 3 {
		t.Errorf("Verify() = %+v, want 40 records in at least 3 sealed segments", rep)
	}
	keyless, err := Verify(ctx, dir, nil)
	if err != nil || keyless.Head != rep.Head || keyless.Decrypted {
		t.Errorf("Verify(no keys) = %+v, %v; want the same head %s", keyless, err, rep.Head)
	}
	l, err := Open(ctx, dir, testKeys(t), WithSegmentSize(1500))
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer l.Close()
	var got []Record
	if err := l.Scan(ctx, nil, func(e Entry) error { got = append(got, e.Record); return nil }); err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if len(got) != 40 {
		t.Fatalf("Scan gave %d records, want 40", len(got))
	}
	for i, r := range got {
		if r.Seq != uint64(i+1) || r.Offset != int64(i) || r.Tenant != "acme" || r.Type != "tributary.chunk.created" {
			t.Fatalf("record %d = %+v", i, r)
		}
	}
	// Redelivery of everything plus two new messages appends only these two.
	var msgs []kafka.Message
	for i := int64(0); i < 42; i++ {
		msgs = append(msgs, testMsg("tributary.chunks.v1", 0, i, "acme", "tributary.chunk.created"))
	}
	msgs = append(msgs, testMsg("tributary.chunks.v1", 1, 0, "acme", "tributary.chunk.created"))
	n, err := l.Append(ctx, msgs)
	if err != nil || n != 3 {
		t.Fatalf("Append(redelivery) = %d, %v; want 3 new records", n, err)
	}
	if seq, _ := l.Stats(); seq != 43 {
		t.Errorf("last seq = %d, want 43", seq)
	}
	// The plaintext never reaches the disk (the tenant id does, in key
	// frames: it names the key).
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		if bytes.Contains(b, []byte("tributary.chunk.created")) || bytes.Contains(b, []byte(`"tenant_id"`)) {
			t.Errorf("segment %s contains plaintext", e.Name())
		}
	}
}

func TestLogRecoversTornTail(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, err := Open(ctx, dir, testKeys(t))
	if err != nil {
		t.Fatal(err)
	}
	var msgs []kafka.Message
	for i := int64(0); i < 5; i++ {
		msgs = append(msgs, testMsg("tributary.queries.received.v1", 0, i, "acme", "tributary.query.received"))
	}
	if _, err := l.Append(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	// Simulate a crash: no Close (no seal), and half of a last frame.
	l.f.Close()
	_, spans := frames(t, segPath(dir, 0))
	last := spans[len(spans)-1]
	edit(t, segPath(dir, 0), func(b []byte) []byte { return b[:last.off+(last.end-last.off)/2] })
	if _, err := Verify(ctx, dir, testKeys(t)); err == nil {
		t.Fatal("Verify of a torn log = nil, want an error")
	}

	l2, err := Open(ctx, dir, testKeys(t))
	if err != nil {
		t.Fatalf("Open after crash: %v", err)
	}
	// Offset 4 was torn, so it is not a duplicate; 0-3 are.
	n, err := l2.Append(ctx, msgs)
	if err != nil || n != 1 {
		t.Fatalf("Append after recovery = %d, %v; want 1", n, err)
	}
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(ctx, dir, testKeys(t))
	if err != nil || rep.Records != 5 || rep.Segments != 2 {
		t.Errorf("Verify after recovery = %+v, %v; want 5 records in 2 segments", rep, err)
	}

	// A crash while creating the next segment leaves an empty file (or a
	// partial header): it is removed and recreated.
	if err := os.WriteFile(segPath(dir, 2), []byte(magic[:5]), 0o600); err != nil {
		t.Fatal(err)
	}
	l3, err := Open(ctx, dir, testKeys(t))
	if err != nil {
		t.Fatalf("Open with a torn header: %v", err)
	}
	if err := l3.Close(); err != nil {
		t.Fatal(err)
	}
	if rep, err := Verify(ctx, dir, testKeys(t)); err != nil || rep.Records != 5 || rep.Segments != 3 {
		t.Errorf("Verify after header recovery = %+v, %v; want 5 records in 3 segments", rep, err)
	}
}

func TestLogRefusesCorruptLog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeLog(t, dir, 5, 5, DefaultSegmentSize)
	_, spans := frames(t, segPath(dir, 0))
	edit(t, segPath(dir, 0), func(b []byte) []byte { b[spans[1].end-3] ^= 1; return b })
	if _, err := Open(ctx, dir, testKeys(t)); err == nil {
		t.Fatal("Open(corrupt log) = nil error, want one")
	}
}

func TestTamperDetected(t *testing.T) {
	ctx := context.Background()
	orig := t.TempDir()
	writeLog(t, orig, 30, 4, 1200)
	segs, err := listSegments(orig)
	if err != nil || len(segs) < 4 {
		t.Fatalf("want at least 4 segments, got %d (%v)", len(segs), err)
	}
	s0 := func(d string) string { return segPath(d, 0) }
	s1 := func(d string) string { return segPath(d, 1) }

	tests := []struct {
		name    string
		tamper  func(t *testing.T, dir string)
		segment string // the segment the error must name
		want    string // part of the reason
		keyless bool   // also detected without keys
	}{
		{"flip a ciphertext byte", func(t *testing.T, d string) {
			_, sp := frames(t, s0(d))
			edit(t, s0(d), func(b []byte) []byte { b[sp[1].end-20] ^= 0x40; return b })
		}, segmentName(0), "authentication failed", false},
		{"flip a byte of the gcm tag", func(t *testing.T, d string) {
			_, sp := frames(t, s1(d))
			edit(t, s1(d), func(b []byte) []byte { b[sp[1].end-1] ^= 1; return b })
		}, segmentName(1), "authentication failed", false},
		{"flip a seq byte", func(t *testing.T, d string) {
			_, sp := frames(t, s0(d))
			edit(t, s0(d), func(b []byte) []byte { b[sp[1].off+4+8] ^= 1; return b })
		}, segmentName(0), "seq", true},
		{"delete a record", func(t *testing.T, d string) {
			_, sp := frames(t, s0(d))
			edit(t, s0(d), func(b []byte) []byte { return append(b[:sp[1].off:sp[1].off], b[sp[1].end:]...) })
		}, segmentName(0), "removed", true},
		{"delete a record and renumber the rest", func(t *testing.T, d string) {
			_, sp := frames(t, s0(d))
			edit(t, s0(d), func(b []byte) []byte {
				out := append([]byte(nil), b[:sp[1].off]...)
				for i := 2; i < len(sp)-1; i++ {
					f := append([]byte(nil), b[sp[i].off:sp[i].end]...)
					binary.BigEndian.PutUint64(f[5:], binary.BigEndian.Uint64(f[5:])-1)
					out = append(out, f...)
				}
				return append(out, b[sp[len(sp)-1].off:]...)
			})
		}, segmentName(0), "authentication failed", false},
		{"swap two records", func(t *testing.T, d string) {
			_, sp := frames(t, s0(d))
			edit(t, s0(d), func(b []byte) []byte {
				out := append([]byte(nil), b[:sp[1].off]...)
				out = append(out, b[sp[2].off:sp[2].end]...)
				out = append(out, b[sp[1].off:sp[1].end]...)
				return append(out, b[sp[2].end:]...)
			})
		}, segmentName(0), "reordered", true},
		{"insert a copy of a record", func(t *testing.T, d string) {
			_, sp := frames(t, s0(d))
			edit(t, s0(d), func(b []byte) []byte {
				out := append([]byte(nil), b[:sp[1].end]...)
				out = append(out, b[sp[1].off:sp[1].end]...)
				return append(out, b[sp[1].end:]...)
			})
		}, segmentName(0), "inserted", true},
		{"truncate inside a record", func(t *testing.T, d string) {
			_, sp := frames(t, s1(d))
			edit(t, s1(d), func(b []byte) []byte { return b[:sp[1].off+10] })
		}, segmentName(1), "truncated", true},
		{"truncate a sealed segment at a record boundary", func(t *testing.T, d string) {
			_, sp := frames(t, s1(d))
			edit(t, s1(d), func(b []byte) []byte { return b[:sp[1].end] })
		}, segmentName(1), "not sealed", true},
		{"drop the last record and fix the seal without the key", func(t *testing.T, d string) {
			_, sp := frames(t, s0(d))
			edit(t, s0(d), func(b []byte) []byte {
				seal := append([]byte(nil), b[sp[len(sp)-1].off:sp[len(sp)-1].end]...)
				binary.BigEndian.PutUint64(seal[5:], binary.BigEndian.Uint64(seal[5:])-1)
				return append(b[:sp[len(sp)-2].off:sp[len(sp)-2].off], seal...)
			})
		}, segmentName(0), "seal says", true},
		{"remove a middle segment", func(t *testing.T, d string) {
			os.Remove(s1(d))
		}, segmentName(1), "missing", true},
		{"remove a middle segment and rename the rest", func(t *testing.T, d string) {
			segs, _ := listSegments(d)
			os.Remove(s1(d))
			for i := 2; i < len(segs); i++ {
				os.Rename(segPath(d, uint64(i)), segPath(d, uint64(i-1)))
			}
		}, segmentName(1), "segment 2, want 1", true},
		{"remove a middle segment, rename and fix the header index", func(t *testing.T, d string) {
			segs, _ := listSegments(d)
			os.Remove(s1(d))
			for i := 2; i < len(segs); i++ {
				os.Rename(segPath(d, uint64(i)), segPath(d, uint64(i-1)))
				edit(t, segPath(d, uint64(i-1)), func(b []byte) []byte {
					binary.BigEndian.PutUint64(b[10:], uint64(i-1))
					return b
				})
			}
		}, segmentName(1), "first seq", true},
		{"change the key id in the key frame", func(t *testing.T, d string) {
			_, sp := frames(t, s1(d))
			edit(t, s1(d), func(b []byte) []byte { b[sp[0].end-1] ^= 1; return b })
		}, segmentName(1), "authentication failed", false},
		{"tamper with a wrapped data key", func(t *testing.T, d string) {
			edit(t, keyFilePath(s1(d)), func(b []byte) []byte {
				var kf keyFile
				if err := json.Unmarshal(b, &kf); err != nil {
					t.Fatal(err)
				}
				kf.Keys[0].Wrapped[len(kf.Keys[0].Wrapped)-1] ^= 1
				out, _ := json.Marshal(kf)
				return out
			})
		}, segmentName(1), "wrapped data key refused", false},
		{"swap the wrapped data keys of two segments", func(t *testing.T, d string) {
			a, _ := os.ReadFile(keyFilePath(s0(d)))
			b, _ := os.ReadFile(keyFilePath(s1(d)))
			edit(t, keyFilePath(s0(d)), func([]byte) []byte { return b })
			edit(t, keyFilePath(s1(d)), func([]byte) []byte { return a })
		}, segmentName(0), "authentication failed", false},
		{"remove a key file", func(t *testing.T, d string) {
			os.Remove(keyFilePath(s1(d)))
		}, segmentName(1), "no wrapped data key", false},
		{"append after the seal", func(t *testing.T, d string) {
			_, sp := frames(t, s0(d))
			edit(t, s0(d), func(b []byte) []byte { return append(b, b[sp[0].off:sp[0].end]...) })
		}, segmentName(0), "after the seal", true},
		{"bad magic", func(t *testing.T, d string) {
			edit(t, s0(d), func(b []byte) []byte { b[0] = 'X'; return b })
		}, segmentName(0), "magic", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := copyDir(t, orig)
			tt.tamper(t, d)
			_, err := Verify(ctx, d, testKeys(t))
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("Verify() = %v, want a *CorruptError", err)
			}
			if ce.Segment != tt.segment || !strings.Contains(ce.Error(), tt.want) {
				t.Errorf("Verify() = %v, want segment %s and %q", ce, tt.segment, tt.want)
			}
			if tt.keyless {
				if _, err := Verify(ctx, d, nil); err == nil {
					t.Errorf("Verify(no keys) = nil, want an error")
				}
			}
			if _, err := Open(ctx, d, testKeys(t)); err == nil {
				t.Errorf("Open(tampered) = nil error, want one")
			}
		})
	}
}

func TestKeyFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keys", "audit.key")
	k1, err := LoadKeyFile(path)
	if err != nil {
		t.Fatalf("LoadKeyFile(new) = %v", err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode = %v, %v; want 0600", st.Mode().Perm(), err)
	}
	k2, err := LoadKeyFile(path)
	if err != nil || k2.CurrentKeyID() != k1.CurrentKeyID() {
		t.Fatalf("reload gave key %q, %v; want %q", k2.CurrentKeyID(), err, k1.CurrentKeyID())
	}
	id, wrapped, err := k1.WrapKey(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	// Rotation: a new first line; the old key still unwraps.
	old, _ := os.ReadFile(path)
	if err := os.WriteFile(path, append([]byte("ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100\n"), old...), 0o600); err != nil {
		t.Fatal(err)
	}
	k3, err := LoadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if k3.CurrentKeyID() == id {
		t.Errorf("current key did not rotate")
	}
	dk, err := k3.UnwrapKey(ctx, KeyRef{KeyID: id, Wrapped: wrapped})
	if err != nil || !bytes.Equal(dk, bytes.Repeat([]byte{7}, 32)) {
		t.Errorf("UnwrapKey after rotation = %x, %v", dk, err)
	}
	if _, err := k3.UnwrapKey(ctx, KeyRef{KeyID: "file-0000", Wrapped: wrapped}); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("UnwrapKey(unknown id) = %v, want ErrUnknownKey", err)
	}
	wrapped[len(wrapped)-1] ^= 1
	if _, err := k3.UnwrapKey(ctx, KeyRef{KeyID: id, Wrapped: wrapped}); !errors.Is(err, ErrUnwrap) {
		t.Errorf("UnwrapKey(tampered) = %v, want ErrUnwrap", err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeyFile(path); err == nil {
		t.Errorf("LoadKeyFile(0644) = nil error, want one")
	}
	bad := []string{"", "# only a comment\n", "abcd\n", strings.Repeat("zz", 32) + "\n"}
	for _, b := range bad {
		if _, err := ParseKeys([]byte(b)); err == nil {
			t.Errorf("ParseKeys(%q) = nil error, want one", b)
		}
	}
}

// TestFileKeysRewrap: after a new KEK is put first in the key file, a
// rewrap moves every stored data key to it, so the log verifies with the
// new KEK alone and no segment byte changed.
func TestFileKeysRewrap(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeLog(t, dir, 20, 5, 1500)
	before, _ := os.ReadFile(segPath(dir, 0))
	const newKey = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
	both, err := ParseKeys([]byte(newKey + "\n" + testKeyHex + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := Open(ctx, dir, both)
	if err != nil {
		t.Fatal(err)
	}
	n, err := l.Rewrap(ctx, both)
	if err != nil || n < 3 {
		t.Fatalf("Rewrap = %d, %v", n, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	only, _ := ParseKeys([]byte(newKey))
	if rep, err := Verify(ctx, dir, only); err != nil || rep.Records != 20 {
		t.Errorf("Verify with the new KEK only = %+v, %v", rep, err)
	}
	if after, _ := os.ReadFile(segPath(dir, 0)); !bytes.Equal(before, after) {
		t.Errorf("rewrap changed a segment")
	}
	if _, err := Verify(ctx, dir, testKeys(t)); err == nil {
		t.Errorf("Verify with the old KEK only passed after the rewrap")
	}
}
