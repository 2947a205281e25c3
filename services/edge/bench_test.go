package edge

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/apikey"
	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
)

// benchEdge serves the edge over pub on an httptest server and returns its
// service, endpoints and chat URL.
func benchEdge(b *testing.B, pub Publisher, topic string) (Service, Endpoints, string) {
	b.Helper()
	keys, err := apikey.Parse(aliceKey + ":acme:eng")
	if err != nil {
		b.Fatal(err)
	}
	svc := NewService(pub, Config{QueriesTopic: topic, AnswerTimeout: time.Hour})
	e := MakeEndpoints(svc)
	h := NewWSHandler(e, WSConfig{Keys: keys, MaxInFlight: 1 << 20})
	srv := httptest.NewServer(NewHTTPHandler(h))
	b.Cleanup(func() {
		h.Close()
		srv.Close()
	})
	return svc, e, "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/chat"
}

func benchDial(b *testing.B, url string) *websocket.Conn {
	b.Helper()
	conn, _, err := websocket.DefaultDialer.Dial(url, http.Header{"Authorization": {"Bearer " + aliceKey}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = conn.Close() })
	return conn
}

type nopPublisher struct{}

func (nopPublisher) Publish(context.Context, string, ...events.Payload) error { return nil }

// BenchmarkTokenOverhead measures what the edge adds per token: decoding
// the answer.delta Kafka message, routing it through the reorder buffer,
// encoding the token and writing it to the WebSocket, and the client
// reading and decoding it. Kafka's own fetch is not included. One op is one
// token, sent and received before the next.
func BenchmarkTokenOverhead(b *testing.B) {
	_, e, url := benchEdge(b, nopPublisher{}, "q")
	conn := benchDial(b, url)
	if err := conn.WriteJSON(map[string]any{"type": "ask", "id": "b", "question": "?"}); err != nil {
		b.Fatal(err)
	}
	var acc serverMsg
	if err := conn.ReadJSON(&acc); err != nil || acc.Type != TypeAccepted {
		b.Fatalf("accepted: %+v %v", acc, err)
	}
	ctx := context.Background()
	msgs := make([]kafka.Message, b.N)
	for i := range msgs {
		m, err := events.Marshal(ctx, "tributary/moderate", events.AnswerDelta{RequestID: acc.RequestID, TenantID: "acme", Seq: i, Text: " token"})
		if err != nil {
			b.Fatal(err)
		}
		msgs[i] = m
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		req, err := decodeOrSkip(ctx, msgs[i])
		if err != nil {
			b.Fatal(err)
		}
		resp, err := e.Deliver(ctx, req)
		if err != nil || resp.(DeliverResponse).Outcome != Delivered {
			b.Fatalf("deliver: %+v %v", resp, err)
		}
		var m serverMsg
		if err := conn.ReadJSON(&m); err != nil || m.Seq == nil || *m.Seq != i {
			b.Fatalf("token %d: %+v %v", i, m, err)
		}
	}
}

// BenchmarkAskAccepted measures ask → accepted over WebSocket with the
// question published to the test cluster (kfake in process, acks from all
// replicas), for 1 and 32 concurrent clients. It reports the p50 and p99
// latency of an ask.
func BenchmarkAskAccepted(b *testing.B) {
	for _, kafkaOn := range []bool{true, false} {
		for _, clients := range []int{1, 32} {
			benchAsk(b, kafkaOn, clients)
		}
	}
}

// benchAsk runs one case of BenchmarkAskAccepted; without Kafka the
// question goes nowhere, which isolates the edge's own part.
func benchAsk(b *testing.B, kafkaOn bool, clients int) {
	name := fmt.Sprintf("publish=none/clients=%d", clients)
	if kafkaOn {
		name = fmt.Sprintf("publish=kafka/clients=%d", clients)
	}
	b.Run(name, func(b *testing.B) {
		var pub Publisher = nopPublisher{}
		topic := "q"
		if kafkaOn {
			topic = cluster.Topic(b, 3)
			kp := kafkatransport.NewPublisher(cluster.Brokers(), kafkatransport.PublisherSource(EventSource))
			b.Cleanup(func() { _ = kp.Close() })
			pub = kp
		}
		_, _, url := benchEdge(b, pub, topic)
		conns := make([]*websocket.Conn, clients)
		for i := range conns {
			conns[i] = benchDial(b, url)
		}
		// Warm up: metadata and connections.
		for _, c := range conns {
			if err := askOnce(c, "warm"); err != nil {
				b.Fatal(err)
			}
		}
		lat := make([][]time.Duration, clients)
		errs := make([]error, clients)
		b.ResetTimer()
		var wg sync.WaitGroup
		for ci, c := range conns {
			n := b.N / clients
			if ci < b.N%clients {
				n++
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range n {
					start := time.Now()
					if err := askOnce(c, fmt.Sprintf("a%d", i)); err != nil {
						errs[ci] = err
						return
					}
					lat[ci] = append(lat[ci], time.Since(start))
				}
			}()
		}
		wg.Wait()
		b.StopTimer()
		var all []time.Duration
		for ci := range lat {
			if errs[ci] != nil {
				b.Fatal(errs[ci])
			}
			all = append(all, lat[ci]...)
		}
		slices.Sort(all)
		if len(all) > 0 {
			b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50_ms")
			b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99_ms")
		}
	})
}

func askOnce(c *websocket.Conn, id string) error {
	if err := c.WriteJSON(map[string]any{"type": "ask", "id": id, "question": "What is the leave policy?"}); err != nil {
		return err
	}
	var m serverMsg
	if err := c.ReadJSON(&m); err != nil {
		return err
	}
	if m.Type != TypeAccepted || m.ID != id {
		return fmt.Errorf("got %+v, want accepted %s", m, id)
	}
	return nil
}
