package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tributary-rag/tributary/pkg/daemon/daemontest"
	"github.com/tributary-rag/tributary/pkg/eventually"
)

// Pipeline benchmarks on the whole dev stack (extractive answers, so model
// time is about zero and ask-to-first-token is the pipeline's own
// overhead: WebSocket, edge, five Kafka hops, moderation, embedding,
// retrieval). Run:
//
//	cd cmd/tributary && go test -run '^$' -bench Pipeline -benchtime 1x -count 3 .
//
// Results go to bench/sections/pipeline.md.

// benchCorpus ingests docs documents of about chunksPerDoc chunks each as
// tenant A and waits until all are indexed; it returns the chunks indexed
// and the time from the first upload to the last document indexed.
func benchCorpus(b testing.TB, url, prefix string, docs, chunksPerDoc int) (int, time.Duration) {
	b.Helper()
	ctx := context.Background()
	type doc struct {
		id      string
		version int
		chunks  int
	}
	out := make([]doc, docs)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, docs)
	sem := make(chan struct{}, 8)
	for i := range docs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			var text strings.Builder
			fmt.Fprintf(&text, "# Benchmark document %d\n\n", i)
			for c := range chunksPerDoc {
				// About one chunk (500 runes) per paragraph.
				for s := range 8 {
					fmt.Fprintf(&text, "Paragraph %d of document %d says that widget %d-%d-%d weighs %d grams. ", c, i, i, c, s, (i*31+c*7+s)%997)
				}
				text.WriteString("\n\n")
			}
			body, _ := json.Marshal(map[string]any{"document_id": fmt.Sprintf("%s-%d", prefix, i), "title": fmt.Sprintf("Benchmark %d", i),
				"content_type": "text/markdown", "content": text.String()})
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/documents", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+keyA)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err
				return
			}
			var res ingestResult
			err = decodeAPIResponse(resp, &res)
			resp.Body.Close()
			if err != nil {
				errs <- err
				return
			}
			out[i] = doc{id: res.DocumentID, version: res.Version}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatalf("upload: %v", err)
	}
	up := uploader{base: url, key: keyA, client: http.DefaultClient}
	pending := out
	chunks := 0
	eventually.NoError(b, "every document indexed", 5*time.Minute, func() error {
		var next []doc
		for _, d := range pending {
			info, err := up.document(ctx, d.id)
			if err != nil {
				b.Fatalf("document %s: %v", d.id, err)
			}
			if info.Status != statusIndexed {
				next = append(next, d)
			}
		}
		if pending = next; len(pending) > 0 {
			return fmt.Errorf("%d documents not indexed", len(pending))
		}
		return nil
	})
	elapsed := time.Since(start)
	for _, d := range out {
		var info struct {
			ChunkCount int `json:"chunk_count"`
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/v1/documents/"+d.id, nil)
		req.Header.Set("Authorization", "Bearer "+keyA)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_ = decodeAPIResponse(resp, &info)
		resp.Body.Close()
		chunks += info.ChunkCount
	}
	return chunks, elapsed
}

// firstTokens runs clients connections, each asking n questions one after
// another on its own connection, and returns every ask-to-first-token time.
// Before its first question and after each answer a client waits a random
// think time, uniform in [0, think) (0: asks again at once).
func firstTokens(b testing.TB, url string, clients, n int, think time.Duration) []time.Duration {
	b.Helper()
	u, err := chatURL(url)
	if err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	var all []time.Duration
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := http.Header{}
			h.Set("Authorization", "Bearer "+keyA)
			conn, _, err := (&websocket.Dialer{Subprotocols: []string{chatSubprotocol}}).Dial(u, h)
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Minute))
			if think > 0 {
				// Clients arrive at random, not all in the same instant.
				time.Sleep(rand.N(think))
			}
			for i := range n {
				id := fmt.Sprintf("c%d-%d", c, i)
				q := fmt.Sprintf("How many grams does widget %d-%d-%d weigh?", i%20, i%5, c%8)
				start := time.Now()
				if err := conn.WriteJSON(map[string]any{"type": "ask", "id": id, "question": q}); err != nil {
					errs <- err
					return
				}
				var first time.Duration
				for {
					var m chatMessage
					if err := conn.ReadJSON(&m); err != nil {
						errs <- err
						return
					}
					if m.Type == "token" && first == 0 {
						first = time.Since(start)
					}
					if m.Type == "done" {
						if first == 0 {
							errs <- fmt.Errorf("%s: done (%s) without tokens", id, m.FinishReason)
							return
						}
						break
					}
				}
				mu.Lock()
				all = append(all, first)
				mu.Unlock()
				if think > 0 {
					time.Sleep(rand.N(think))
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatalf("client: %v", err)
	}
	return all
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p * float64(len(s)-1))
	return s[i]
}

// BenchmarkPipeline runs the stack as `tributary dev` does: the broker's
// log on disk through the page cache, as Kafka's default.
func BenchmarkPipeline(b *testing.B) {
	benchPipeline(b, devOptions{DataDir: b.TempDir(), SkipSample: true})
}

// BenchmarkPipelineFsyncBroker is the same with `--broker-fsync`, to show
// what an fsync per produce costs.
func BenchmarkPipelineFsyncBroker(b *testing.B) {
	benchPipeline(b, devOptions{DataDir: b.TempDir(), SkipSample: true, BrokerFsync: true})
}

func benchPipeline(b *testing.B, opts devOptions) {
	logs := &daemontest.Buffer{}
	opts.Logs = logs
	dev := startTestDevOpts(b, opts, logs)
	defer dev.stop()

	// Warm up every consumer (group joins) before measuring.
	benchCorpus(b, dev.url, "warmup", 2, 2)
	firstTokens(b, dev.url, 4, 5, 0)
	runs := 0
	b.Run("ingest-to-indexed", func(b *testing.B) {
		for range b.N {
			runs++ // new document ids each run: the same ones would be "unchanged"
			chunks, elapsed := benchCorpus(b, dev.url, fmt.Sprintf("bench%d", runs), 200, 10)
			b.ReportMetric(float64(chunks)/elapsed.Seconds(), "chunks/s")
			b.ReportMetric(float64(chunks), "chunks")
		}
	})
	// Back to back (think 0) is a saturation test: every client asks again
	// the moment its answer is done, so 32 clients keep 32 questions and
	// their streaming answers in the pipeline at all times. With a think
	// time (uniform 0-1 s, about 55 questions/s from 32 clients — far more
	// than 32 people type) it is the latency a busy deployment sees.
	for _, load := range []struct {
		clients int
		think   time.Duration
	}{{1, 0}, {32, 0}, {32, time.Second}} {
		name := fmt.Sprintf("first-token/clients=%d", load.clients)
		if load.think > 0 {
			name += fmt.Sprintf("/think=0-%v", load.think)
		}
		b.Run(name, func(b *testing.B) {
			for range b.N {
				perClient := 200 / load.clients
				if perClient < 10 {
					perClient = 10
				}
				ds := firstTokens(b, dev.url, load.clients, perClient, load.think)
				b.ReportMetric(float64(percentile(ds, 0.5).Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(percentile(ds, 0.99).Microseconds())/1000, "p99-ms")
				b.ReportMetric(float64(len(ds)), "asks")
			}
		})
	}
}
