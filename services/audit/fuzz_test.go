package audit

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/segmentio/kafka-go"
)

// sampleSegments writes a small sealed log and returns its segment files
// and the first segment's wrapped keys.
func sampleSegments(tb testing.TB) ([][]byte, map[uint16]KeyRef) {
	tb.Helper()
	dir, err := os.MkdirTemp("", "audit-fuzz")
	if err != nil {
		tb.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	k, _ := ParseKeys([]byte(testKeyHex))
	l, err := Open(ctx, dir, k, WithSegmentSize(700))
	if err != nil {
		tb.Fatal(err)
	}
	for i := int64(0); i < 6; i++ {
		if _, err := l.Append(ctx, []kafka.Message{testMsg("tributary.chunks.v1", 0, i, "acme", "tributary.chunk.created")}); err != nil {
			tb.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		tb.Fatal(err)
	}
	var out [][]byte
	segs, _ := listSegments(dir)
	wrapped, err := readKeyFile(segs[0].path)
	if err != nil {
		tb.Fatal(err)
	}
	for _, s := range segs {
		b, err := os.ReadFile(s.path)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	return out, wrapped
}

// FuzzSegmentReader feeds hostile bytes to the segment reader, with and
// without keys, as the first segment and as a later one; it must never
// panic, and must accept only what it can fully account for.
func FuzzSegmentReader(f *testing.F) {
	samples, wrapped := sampleSegments(f)
	for _, s := range samples {
		f.Add(s)
		f.Add(s[:len(s)/2])
	}
	// Format-1 segments of the fixture (read, never written): the first,
	// sealed, and the unsealed tail, each also torn.
	for _, i := range []uint64{0, v1Segments - 1} {
		b, err := os.ReadFile(segPath(v1Dir, i))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte(magic))
	f.Add([]byte{})
	v1Key, err := os.ReadFile(filepath.Join(v1Dir, "audit.key"))
	if err != nil {
		f.Fatal(err)
	}
	// Both KEKs: the samples' (format 2) and the fixture's (format 1).
	k, err := ParseKeys(append([]byte(testKeyHex+"\n"), v1Key...))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		for _, keys := range []KeyProvider{nil, k} {
			var c chain
			o := scanOpts{keys: keys, wrapped: wrapped}
			o.fn = func(e Entry) error {
				if _, err := e.Marshal(); err != nil {
					t.Errorf("accepted record does not marshal: %v", err)
				}
				return nil
			}
			s, err := scanSegment(ctx, bytes.NewReader(data), "fuzz", 0, &c, o)
			if s.goodSize > int64(len(data)) {
				t.Fatalf("goodSize %d beyond %d bytes", s.goodSize, len(data))
			}
			if err == nil && s.goodSize != int64(len(data)) {
				t.Fatalf("accepted a segment but consumed %d of %d bytes", s.goodSize, len(data))
			}
			var c2 chain
			c2.seq = 5
			_, _ = scanSegment(ctx, bytes.NewReader(data), "fuzz", 3, &c2, scanOpts{keys: keys, wrapped: wrapped})
		}
	})
}

// FuzzUnmarshalRecord checks the record decoder never panics and that
// what it accepts re-encodes to the same bytes.
func FuzzUnmarshalRecord(f *testing.F) {
	f.Add([]byte(`{"ce_id":"","ce_type":"","offset":4,"partition":0,"payload":{"a":1},"seq":7,"tenant":"","time":"2026-11-28T09:00:00Z","topic":"t"}`))
	f.Add([]byte(`{"payload":1e400}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := UnmarshalRecord(data)
		if err != nil {
			return
		}
		b, err := r.Marshal()
		if err != nil || !bytes.Equal(b, data) {
			t.Fatalf("accepted %q but it re-encodes as %q (%v)", data, b, err)
		}
	})
}

// TestSeedCorpusPresent keeps the checked-in corpus in step with the
// format: every file under testdata/fuzz/FuzzSegmentReader must be
// readable by the fuzz harness.
func TestSeedCorpusPresent(t *testing.T) {
	ents, err := os.ReadDir(filepath.Join("testdata", "fuzz", "FuzzSegmentReader"))
	if err != nil || len(ents) == 0 {
		t.Fatalf("seed corpus missing: %v", err)
	}
}
