package retrieve

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/eventually"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
)

// benchInt reads a positive integer from the environment, or def.
func benchInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

var benchWords = []string{"leave", "salary", "travel", "expense", "policy", "review", "remote", "office",
	"badge", "holiday", "training", "security", "laptop", "contract", "benefit", "pension", "overtime",
	"parking", "meeting", "report", "budget", "hiring", "onboarding", "insurance", "invoice", "audit"}

// benchText is a deterministic chunk text of about 60 words.
func benchText(i int) string {
	b := make([]byte, 0, 512)
	x := uint32(i*2654435761 + 1)
	for range 60 {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b = append(b, benchWords[x%uint32(len(benchWords))]...)
		b = append(b, ' ')
	}
	return string(b)
}

// BenchmarkIndexThroughput measures chunk.embedded events → points indexed
// through Kafka: each iteration publishes RETRIEVE_BENCH_CHUNKS chunks
// (default 2000) as documents of 50 chunks and waits until every document
// is announced indexed, on topics of RETRIEVE_BENCH_PARTITIONS partitions
// (default 3). Reported: chunks/s.
func BenchmarkIndexThroughput(b *testing.B) {
	// RETRIEVE_BENCH_CHUNK_BATCH=1 indexes one chunk per upsert, as before
	// batching.
	h := startWithOpts(b, benchInt("RETRIEVE_BENCH_PARTITIONS", 3),
		kafkatransport.SubscriberBatch(benchInt("RETRIEVE_BENCH_CHUNK_BATCH", DefaultChunkBatch), 0))
	chunks := benchInt("RETRIEVE_BENCH_CHUNKS", 2000)
	const perDoc = 50
	docs := (chunks + perDoc - 1) / perDoc
	var total time.Duration
	seen := 0
	for i := 0; b.Loop(); i++ {
		var msgs []kafka.Message
		for d := range docs {
			texts := make([]string, perDoc)
			for j := range texts {
				texts[j] = benchText(d*perDoc + j)
			}
			dd := doc{tenant: "bench", id: fmt.Sprintf("doc-%d-%d", i, d), version: 1, groups: []string{"staff"}, texts: texts}
			for _, c := range dd.chunks() {
				msgs = append(msgs, message(b, h.topics.ChunksEmbedded, "bench", c))
			}
		}
		begin := time.Now()
		cluster.Produce(b, msgs...)
		seen += docs
		eventually.NoError(b, "documents indexed", 10*time.Minute, func() error {
			if n := len(h.indexedEvents()); n < seen {
				return fmt.Errorf("%d of %d", n, seen)
			}
			return nil
		})
		total += time.Since(begin)
	}
	b.ReportMetric(float64(b.N*docs*perDoc)/total.Seconds(), "chunks/s")
}

// BenchmarkQueryLatency measures one query at a time over a corpus of
// RETRIEVE_BENCH_CORPUS chunks (default 2000), hybrid when
// RETRIEVE_BENCH_DENSE=1: "client" calls the service (one Qdrant query
// through the official client), "kafka" publishes query.embedded and waits
// for query.retrieved. Reported: p50 and p99 in milliseconds.
func BenchmarkQueryLatency(b *testing.B) {
	h := start(b)
	corpus := benchInt("RETRIEVE_BENCH_CORPUS", 2000)
	dense := os.Getenv("RETRIEVE_BENCH_DENSE") == "1"
	const perDoc = 50
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 { // index in parallel, like partitions
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := w; d*perDoc < corpus; d += 4 {
				texts := make([]string, perDoc)
				for j := range texts {
					texts[j] = benchText(d*perDoc + j)
				}
				dd := doc{tenant: "bench", id: fmt.Sprintf("doc-%d", d), version: 1, groups: []string{"staff"}, texts: texts, dense: dense}
				for _, c := range dd.chunks() {
					if _, err := h.svc.IndexChunk(context.Background(), c); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatalf("index corpus: %v", err)
	}
	mkQuery := func(i int) events.QueryEmbedded {
		text := benchText(1_000_000 + i)[:60]
		q := query("bench", []string{"staff"}, text, 5)
		if dense {
			q.Dense = denseOf(text)
		}
		return q
	}

	b.Run("client", func(b *testing.B) {
		var lat []time.Duration
		for i := 0; b.Loop(); i++ {
			q := mkQuery(i)
			begin := time.Now()
			res, err := h.svc.Retrieve(context.Background(), q)
			lat = append(lat, time.Since(begin))
			if err != nil || len(res.Results) == 0 {
				b.Fatalf("Retrieve = %d results, %v", len(res.Results), err)
			}
		}
		reportPercentiles(b, lat)
	})

	b.Run("kafka", func(b *testing.B) {
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers: cluster.Brokers(), GroupID: cluster.Group(b), Topic: h.topics.QueriesRetrieved,
			MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 50 * time.Millisecond, StartOffset: kafka.FirstOffset,
		})
		defer r.Close()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		arrived := make(chan string, 1024)
		go func() {
			for {
				m, err := r.FetchMessage(ctx)
				if err != nil {
					return
				}
				arrived <- string(m.Key)
			}
		}()
		pub := newBenchWriter()
		defer pub.Close()
		var lat []time.Duration
		timeout := time.After(10 * time.Minute)
		for i := 0; b.Loop(); i++ {
			q := mkQuery(i)
			msg := message(b, h.topics.QueriesEmbedded, "bench", q)
			begin := time.Now()
			if err := pub.WriteMessages(ctx, msg); err != nil {
				b.Fatal(err)
			}
		wait:
			for {
				select {
				case k := <-arrived:
					if k == q.RequestID {
						break wait
					}
				case <-timeout:
					b.Fatal("timed out waiting for query.retrieved")
				}
			}
			lat = append(lat, time.Since(begin))
		}
		reportPercentiles(b, lat)
	})
}

func newBenchWriter() *kafka.Writer {
	return &kafka.Writer{
		Addr:         kafka.TCP(cluster.Brokers()...),
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: time.Millisecond,
	}
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50_ms")
	b.ReportMetric(pct(0.99), "p99_ms")
}

// BenchmarkIndexDirect measures IndexChunk without Kafka: RETRIEVE_BENCH_WORKERS
// goroutines (default 3, like partitions) each index whole documents of 50
// chunks in order, RETRIEVE_BENCH_CHUNKS chunks per iteration. Reported:
// chunks/s.
func BenchmarkIndexDirect(b *testing.B) {
	h := start(b)
	chunks := benchInt("RETRIEVE_BENCH_CHUNKS", 2000)
	workers := benchInt("RETRIEVE_BENCH_WORKERS", 3)
	const perDoc = 50
	docs := (chunks + perDoc - 1) / perDoc
	var total time.Duration
	for i := 0; b.Loop(); i++ {
		begin := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for d := w; d < docs; d += workers {
					texts := make([]string, perDoc)
					for j := range texts {
						texts[j] = benchText(d*perDoc + j)
					}
					dd := doc{tenant: "bench", id: fmt.Sprintf("doc-%d-%d", i, d), version: 1, texts: texts}
					for _, c := range dd.chunks() {
						if _, err := h.svc.IndexChunk(context.Background(), c); err != nil {
							errs <- err
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		total += time.Since(begin)
		close(errs)
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*docs*perDoc)/total.Seconds(), "chunks/s")
}
