package audit

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"
)

// benchMsgs returns n query.received messages of about 600 bytes, four
// tenants taking turns, on one partition from offset from.
func benchMsgs(from, n int) []kafka.Message {
	q := strings.Repeat("how does the audit log detect tampering? ", 13)
	out := make([]kafka.Message, n)
	for i := range out {
		tenant := [...]string{"acme", "globex", "initech", "umbrella"}[i%4]
		m := testMsg("tributary.queries.received.v1", 0, int64(from+i), tenant, "tributary.query.received")
		m.Value = []byte(fmt.Sprintf(`{"request_id":"r-%d","tenant_id":%q,"question":%q}`, from+i, tenant, q))
		out[i] = m
	}
	return out
}

// BenchmarkVaultAppend compares, against the same real Vault server, the
// audit log's envelope encryption (a data key per tenant and segment from
// transit, records sealed locally, one fsync per batch of 512 before the
// offsets would be committed) with one transit/encrypt request per record.
func BenchmarkVaultAppend(b *testing.B) {
	v := startVaultDev(b)
	k := vaultKeys(b, v, v.policyToken(b))
	root := vaultKeys(b, v, v.token)
	ctx := context.Background()
	for _, batch := range []int{512, 2048} {
		b.Run(fmt.Sprintf("envelope/batch=%d", batch), func(b *testing.B) {
			l, err := Open(ctx, b.TempDir(), k)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			off := 0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				msgs := benchMsgs(off, batch)
				b.StartTimer()
				if _, err := l.Append(ctx, msgs); err != nil {
					b.Fatal(err)
				}
				off += batch
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "records/s")
		})
	}
	b.Run("transit-encrypt-per-record", func(b *testing.B) {
		msgs := benchMsgs(0, 64)
		pts := make([][]byte, len(msgs))
		for i, m := range msgs {
			r := NewRecord(m)
			pts[i], _ = r.Marshal()
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			m := msgs[i%len(msgs)]
			if _, err := root.Encrypt(ctx, NewRecord(m).Tenant, pts[i%len(pts)]); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
}

// BenchmarkVaultExport measures reading back a Vault-encrypted log: through
// the running log (the export path; data keys in memory) and cold, as
// `tributary audit verify` does (every data key unwrapped by
// transit/decrypt once per segment and tenant).
func BenchmarkVaultExport(b *testing.B) {
	v := startVaultDev(b)
	k := vaultKeys(b, v, v.policyToken(b))
	ctx := context.Background()
	dir := b.TempDir()
	l, err := Open(ctx, dir, k, WithSegmentSize(8<<20))
	if err != nil {
		b.Fatal(err)
	}
	const n = 50000
	for off := 0; off < n; off += 512 {
		if _, err := l.Append(ctx, benchMsgs(off, min(512, n-off))); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("scan", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			count := 0
			if err := l.Scan(ctx, nil, func(Entry) error { count++; return nil }); err != nil || count != n {
				b.Fatalf("scan: %d, %v", count, err)
			}
		}
		b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "records/s")
	})
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	b.Run("verify-cold", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			rep, err := Verify(ctx, dir, k)
			if err != nil || rep.Records != n {
				b.Fatalf("verify: %+v, %v", rep, err)
			}
		}
		b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "records/s")
	})
}
