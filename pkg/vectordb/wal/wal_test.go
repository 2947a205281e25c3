package wal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestAppendDecodeRoundTrip(t *testing.T) {
	tests := []Record{
		{Seq: 1, Type: 3, Data: []byte("hello")},
		{Seq: 1 << 40, Type: 255, Data: nil},
		{Seq: 7, Type: 0, Data: bytes.Repeat([]byte{0xab}, 70000)},
	}
	var buf []byte
	for _, tt := range tests {
		buf = AppendRecord(buf, tt)
	}
	rest := buf
	for _, tt := range tests {
		got, n, err := Decode(rest)
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		if got.Seq != tt.Seq || got.Type != tt.Type || !bytes.Equal(got.Data, tt.Data) {
			t.Errorf("Decode = %d/%d/%d bytes, want %d/%d/%d bytes", got.Seq, got.Type, len(got.Data), tt.Seq, tt.Type, len(tt.Data))
		}
		rest = rest[n:]
	}
	if _, _, err := Decode(rest); err != io.EOF {
		t.Errorf("Decode at end = %v, want EOF", err)
	}
	sc := NewScanner(bytes.NewReader(buf), int64(len(buf)))
	n := 0
	for sc.Next() {
		n++
	}
	if sc.Err() != nil || n != len(tests) || sc.Offset() != int64(len(buf)) {
		t.Errorf("Scanner read %d records to offset %d, err %v; want %d to %d", n, sc.Offset(), sc.Err(), len(tests), len(buf))
	}
}

func TestDecodeRejectsDamage(t *testing.T) {
	good := AppendRecord(nil, Record{Seq: 9, Type: 1, Data: []byte("payload")})
	tests := []struct {
		name string
		buf  []byte
		want error
	}{
		{"truncated header", good[:5], io.ErrUnexpectedEOF},
		{"truncated body", good[:len(good)-1], io.ErrUnexpectedEOF},
		{"flipped data bit", flip(good, len(good)-2), ErrCorrupt},
		{"flipped crc bit", flip(good, 5), ErrCorrupt},
		{"huge length", append([]byte{0xff, 0xff, 0xff, 0xff}, good[4:]...), ErrCorrupt},
		{"tiny length", append([]byte{1, 0, 0, 0}, good[4:]...), ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Decode(tt.buf)
			if !errors.Is(err, tt.want) {
				t.Errorf("Decode = %v, want %v", err, tt.want)
			}
			sc := NewScanner(bytes.NewReader(tt.buf), int64(len(tt.buf)))
			if sc.Next() {
				t.Errorf("Scanner accepted a damaged record")
			}
			if sc.Err() == nil {
				t.Errorf("Scanner.Err = nil for a damaged record")
			}
		})
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 0x10
	return c
}

func FuzzDecode(f *testing.F) {
	f.Add(AppendRecord(nil, Record{Seq: 1, Type: 2, Data: []byte("x")}))
	f.Add([]byte{})
	f.Add([]byte{9, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, n, err := Decode(b)
		if err != nil {
			return
		}
		if n > len(b) || n < HeaderSize+bodyPrefix {
			t.Fatalf("Decode consumed %d of %d bytes", n, len(b))
		}
		again := AppendRecord(nil, rec)
		if !bytes.Equal(again, b[:n]) {
			t.Fatalf("re-encoding differs")
		}
		sc := NewScanner(bytes.NewReader(b), int64(len(b)))
		if !sc.Next() || sc.Record().Seq != rec.Seq {
			t.Fatalf("Scanner disagrees with Decode: %v", sc.Err())
		}
	})
}

func collect(t *testing.T, dir string, after uint64) (*Log, []Record) {
	t.Helper()
	var recs []Record
	l, err := Open(dir, after, func(r Record) error {
		recs = append(recs, Record{Seq: r.Seq, Type: r.Type, Data: append([]byte(nil), r.Data...)})
		return nil
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l, recs
}

func TestLogReplayTornTailAndRotation(t *testing.T) {
	dir := t.TempDir()
	l, recs := collect(t, dir, 0)
	if len(recs) != 0 {
		t.Fatalf("fresh log replayed %d records", len(recs))
	}
	for i := 1; i <= 5; i++ {
		seq, err := l.Append(1, []byte(fmt.Sprint("r", i)))
		if err != nil || seq != uint64(i) {
			t.Fatalf("Append = %d, %v; want %d", seq, err, i)
		}
	}
	if err := l.Rotate(); err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	for i := 6; i <= 8; i++ {
		if _, err := l.Append(1, []byte(fmt.Sprint("r", i))); err != nil {
			t.Fatalf("Append: %v", err)
		}
	}
	if err := l.Sync(8); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Tear the last record: simulate a crash in the middle of a write.
	segs, _ := listSegments(dir)
	last := segs[len(segs)-1].path
	st, _ := os.Stat(last)
	if err := os.Truncate(last, st.Size()-3); err != nil {
		t.Fatal(err)
	}
	l, recs = collect(t, dir, 0)
	if len(recs) != 7 || recs[6].Seq != 7 || string(recs[6].Data) != "r7" {
		t.Fatalf("replay after torn tail: %d records, want 7", len(recs))
	}
	// The torn record's seq is reused by the next append.
	if seq, err := l.Append(1, []byte("r8b")); err != nil || seq != 8 {
		t.Fatalf("Append after recovery = %d, %v; want 8", seq, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, recs = collect(t, dir, 5)
	if len(recs) != 3 || recs[0].Seq != 6 || string(recs[2].Data) != "r8b" {
		t.Fatalf("replay after 5: %v", recs)
	}
	if err := l.RemoveThrough(5); err != nil {
		t.Fatalf("RemoveThrough: %v", err)
	}
	segs, _ = listSegments(dir)
	if segs[0].first != 6 {
		t.Errorf("after RemoveThrough(5) first segment starts at %d, want 6", segs[0].first)
	}
	l.Close()
}

func TestLogCorruptOlderSegmentIsAnError(t *testing.T) {
	dir := t.TempDir()
	l, _ := collect(t, dir, 0)
	l.Append(1, []byte("a"))
	l.Append(1, []byte("b"))
	l.Rotate()
	l.Append(1, []byte("c"))
	l.Close()
	segs, _ := listSegments(dir)
	b, _ := os.ReadFile(segs[0].path)
	b[len(b)-1] ^= 1
	os.WriteFile(segs[0].path, b, 0o644)
	if _, err := Open(dir, 0, func(Record) error { return nil }); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Open with a corrupt older segment = %v, want ErrCorrupt", err)
	}
	_ = filepath.Base(dir)
}
