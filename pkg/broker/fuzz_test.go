package broker

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// FuzzLoadState starts the broker on a data directory of real state (a
// topic with records and a consumer group's committed offset) in which one
// file is replaced by arbitrary bytes, as a crash or a hostile disk could
// leave it: Start must fail with an error or start a broker that closes,
// never panic or hang.
func FuzzLoadState(f *testing.F) {
	state, files := brokerState(f)
	f.Add(uint8(0), []byte{})
	for i, name := range files {
		b, err := os.ReadFile(filepath.Join(state, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), b)
		if len(b) > 8 {
			f.Add(uint8(i), b[:len(b)/2])
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		dir := t.TempDir()
		if err := os.CopyFS(dir, os.DirFS(state)); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, files[int(which)%len(files)]), data, 0o600); err != nil {
			t.Fatal(err)
		}
		b, err := Start(Config{Listen: "127.0.0.1:0", DataDir: dir})
		if err == nil {
			b.Close()
		}
	})
}

// brokerState runs a durable broker, writes records and commits a group
// offset, closes it, and returns its data directory and the files in it.
func brokerState(tb testing.TB) (string, []string) {
	tb.Helper()
	dir := tb.TempDir()
	b, err := Start(Config{Listen: "127.0.0.1:0", DataDir: dir, Partitions: 1})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w := &kafka.Writer{Addr: kafka.TCP(b.ListenAddr()), AllowAutoTopicCreation: true, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	err = w.WriteMessages(ctx, kafka.Message{Topic: "t", Key: []byte("k1"), Value: []byte("v1")}, kafka.Message{Topic: "t", Key: []byte("k2"), Value: []byte("v2")})
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{b.ListenAddr()}, GroupID: "g", Topic: "t", MaxWait: 50 * time.Millisecond})
		var m kafka.Message
		if m, err = r.FetchMessage(ctx); err == nil {
			err = r.CommitMessages(ctx, m)
		}
		if cerr := r.Close(); err == nil {
			err = cerr
		}
	}
	b.Close()
	if err != nil {
		tb.Fatal(err)
	}
	var files []string
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, path)
			files = append(files, rel)
		}
		return err
	})
	if err != nil || len(files) == 0 {
		tb.Fatalf("state files %v: %v", files, err)
	}
	slices.Sort(files)
	return dir, files
}
