package hnsw

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"testing"
)

func TestWriteLoadRoundTrip(t *testing.T) {
	const n, dim = 2500, 24
	r := rand.New(rand.NewPCG(8, 8))
	data := clustered(r, n+20, dim, 10, 0.3)
	tests := []struct {
		name   string
		metric Metric
		n      int
	}{
		{"empty", Cosine, 0},
		{"one", Dot, 1},
		{"many", L2, n},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ix, err := New(dim, tt.metric, M(8), EfConstruction(40), EfSearch(33), Seed(9))
			if err != nil {
				t.Fatal(err)
			}
			for i := range tt.n {
				if err := ix.Add(uint32(i), data[i]); err != nil {
					t.Fatal(err)
				}
			}
			for i := 0; i < tt.n; i += 5 {
				ix.Delete(uint32(i))
			}
			var buf bytes.Buffer
			wn, err := ix.WriteTo(&buf)
			if err != nil {
				t.Fatalf("WriteTo: %v", err)
			}
			if wn != int64(buf.Len()) {
				t.Errorf("WriteTo returned %d bytes, wrote %d", wn, buf.Len())
			}
			got, err := Load(bytes.NewReader(buf.Bytes()))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got.Len() != ix.Len() || got.Stats().Deleted != ix.Stats().Deleted || got.Metric() != tt.metric ||
				got.Dim() != dim || got.efSearch != 33 || got.m != 8 {
				t.Fatalf("Load: len %d deleted %d metric %v, want %d %d %v",
					got.Len(), got.Stats().Deleted, got.Metric(), ix.Len(), ix.Stats().Deleted, tt.metric)
			}
			// In-link counts are rebuilt, so rehoming goes on working.
			in := inLinks(got, tt.n)
			for id := range uint32(tt.n) {
				if c := got.indeg(id).Load(); c != in[id] {
					t.Fatalf("loaded node %d counts %d in-links, has %d", id, c, in[id])
				}
			}
			// Same graph, same answers.
			for _, q := range data[n:] {
				a, b := ix.Search(q, 10, 40, nil), got.Search(q, 10, 40, nil)
				if len(a) != len(b) {
					t.Fatalf("Search after Load = %v, want %v", b, a)
				}
				for i := range a {
					if a[i] != b[i] {
						t.Fatalf("Search after Load = %v, want %v", b, a)
					}
				}
			}
			// The loaded index accepts new points and rejects old ids.
			if tt.n > 0 {
				if err := got.Add(0, data[0]); !errors.Is(err, ErrExists) {
					t.Errorf("Add(existing id) after Load = %v, want ErrExists", err)
				}
			}
			if err := got.Add(uint32(tt.n), data[n]); err != nil {
				t.Errorf("Add after Load: %v", err)
			}
			// Writing the loaded index gives the same bytes as writing the
			// original (before the extra Add).
			var again bytes.Buffer
			reloaded, err := Load(bytes.NewReader(buf.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := reloaded.WriteTo(&again); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again.Bytes(), buf.Bytes()) {
				t.Errorf("WriteTo(Load(x)) differs from x")
			}
		})
	}
}

func TestLoadRejectsCorruption(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	data := clustered(r, 300, 8, 5, 0.3)
	ix, err := New(8, Cosine, M(4))
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range data {
		if err := ix.Add(uint32(i), v); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if _, err := ix.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"magic", append([]byte("XNSWGO\x00\x01"), good[8:]...)},
		{"truncated header", good[:20]},
		{"truncated body", good[:len(good)/2]},
		{"no checksum", good[:len(good)-4]},
		{"flipped byte", flip(good, len(good)/3)},
		{"flipped checksum", flip(good, len(good)-1)},
	}
	for _, tt := range tests {
		if _, err := Load(bytes.NewReader(tt.data)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Load(%s) = %v, want ErrCorrupt", tt.name, err)
		}
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x40
	return c
}

// FuzzLoad feeds arbitrary bytes to Load: it must return an error or a usable
// index, never panic. The seed corpus holds small valid files.
func FuzzLoad(f *testing.F) {
	for _, n := range []int{0, 1, 5, 40} {
		ix, err := New(3, L2, M(2))
		if err != nil {
			f.Fatal(err)
		}
		for i := range n {
			if err := ix.Add(uint32(i), []float32{float32(i), float32(i % 3), 1}); err != nil {
				f.Fatal(err)
			}
		}
		var buf bytes.Buffer
		if _, err := ix.WriteTo(&buf); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// As given (nearly always a checksum failure), then with the
		// checksum repaired so the structural checks see the mutation.
		for _, in := range [][]byte{data, withCRC(data)} {
			ix, err := Load(bytes.NewReader(in))
			if err != nil {
				continue
			}
			// A loaded index must answer searches and take writes without
			// panicking.
			q := make([]float32, ix.Dim())
			q[0] = 1
			ix.Search(q, 3, 8, nil)
			ix.SearchExact(q, 3, nil)
			_ = ix.Add(uint32(ix.Len()+ix.Stats().Deleted+1), q)
			ix.Search(q, 3, 8, func(id uint32) bool { return id%2 == 0 })
		}
	})
}

// withCRC returns data with its last four bytes replaced by the CRC-32C of
// the rest, as WriteTo writes it.
func withCRC(data []byte) []byte {
	if len(data) < 4 {
		return data
	}
	out := bytes.Clone(data)
	binary.LittleEndian.PutUint32(out[len(out)-4:], crc32.Checksum(out[:len(out)-4], crc32.MakeTable(crc32.Castagnoli)))
	return out
}
