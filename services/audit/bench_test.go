package audit

import (
	"context"
	"fmt"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/cputime"
)

// BenchmarkAppend measures recording throughput (encrypt, chain, write,
// one fsync per batch) for several batch sizes; ~600-byte payloads.
func BenchmarkAppend(b *testing.B) {
	payload := make([]byte, 0, 600)
	payload = append(payload, `{"tenant_id":"acme","text":"`...)
	for len(payload) < 590 {
		payload = append(payload, 'x')
	}
	payload = append(payload, `"}`...)
	for _, batch := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			ctx := context.Background()
			l, err := Open(ctx, b.TempDir(), testKeys(b))
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			msgs := make([]kafka.Message, batch)
			off := int64(0)
			b.SetBytes(int64(len(payload) * batch))
			b.ResetTimer()
			cpu := cputime.Process()
			for i := 0; i < b.N; i++ {
				for j := range msgs {
					m := testMsg("tributary.chunks.v1", 0, off, "acme", "tributary.chunk.created")
					m.Value = payload
					msgs[j] = m
					off++
				}
				if _, err := l.Append(ctx, msgs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64((cputime.Process()-cpu).Microseconds())/float64(b.N*batch), "cpu-µs/record")
		})
	}
}

// BenchmarkScan measures reading back (authenticate, decrypt, check
// canonical form, chain) as the export and Verify do.
func BenchmarkScan(b *testing.B) {
	ctx := context.Background()
	l, err := Open(ctx, b.TempDir(), testKeys(b))
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	const n = 5000
	msgs := make([]kafka.Message, 0, n)
	for i := int64(0); i < n; i++ {
		msgs = append(msgs, testMsg("tributary.chunks.v1", 0, i, "acme", "tributary.chunk.created"))
	}
	if _, err := l.Append(ctx, msgs); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	cpu := cputime.Process()
	for i := 0; i < b.N; i++ {
		count := 0
		if err := l.Scan(ctx, nil, func(Entry) error { count++; return nil }); err != nil || count != n {
			b.Fatalf("scan: %d, %v", count, err)
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64((cputime.Process()-cpu).Microseconds())/float64(b.N*n), "cpu-µs/record")
}

// BenchmarkRecord measures building one record from an answer.delta
// message and encoding it canonically (the CPU part of Append, without
// encryption and I/O).
func BenchmarkRecord(b *testing.B) {
	m := testMsg("tributary.answers.generated.v1", 1, 42, "acme", "tributary.answer.delta")
	m.Value = []byte(`{"request_id":"7f1c2f3e-9a6b-4c1d-8e2f-0a1b2c3d4e5f","tenant_id":"acme","seq":17,"text":" weighs"}`)
	b.ReportAllocs()
	for b.Loop() {
		r := NewRecord(m)
		if _, err := r.Marshal(); err != nil {
			b.Fatal(err)
		}
	}
}
