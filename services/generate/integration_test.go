package generate

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatest"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
	"github.com/tributary-rag/tributary/pkg/tracecontext"
)

var cluster *kafkatest.Cluster

func TestMain(m *testing.M) { os.Exit(kafkatest.Main(m, &cluster)) }

// query is one QueryRetrieved event to publish and what to expect.
type query struct {
	q           events.QueryRetrieved
	correlation string
	trace       tracecontext.TraceParent
	wantIn      string // a fact the answer must contain
	wantCite    string // chunk id of the first citation ("" for none)
	wantMode    string
}

func (qr query) message(t *testing.T, topic string) kafka.Message {
	t.Helper()
	env := events.NewEnvelope(context.Background(), events.TypeQueryRetrieved, "tributary/retrieve")
	env.TenantID = qr.q.TenantID
	env.CorrelationID = qr.correlation
	env.TraceParent = qr.trace.String()
	msg, err := events.MarshalWith(env, qr.q)
	if err != nil {
		t.Fatalf("marshal query: %v", err)
	}
	msg.Topic = topic
	return msg
}

// answerOf collects the messages of one request, in topic order.
func answerOf(msgs []kafka.Message, requestID string) []kafka.Message {
	var out []kafka.Message
	for _, m := range msgs {
		if string(m.Key) == requestID {
			out = append(out, m)
		}
	}
	return out
}

func TestKafkaAnswers(t *testing.T) {
	prefix := cluster.Prefix(t)
	topics := cluster.CreatePrefixTopics(t, prefix, 3)
	brokers := cluster.Brokers()

	pub := kafkatransport.NewPublisher(brokers, kafkatransport.PublisherSource(EventSource))
	t.Cleanup(func() {
		if err := pub.Close(); err != nil {
			t.Errorf("close publisher: %v", err)
		}
	})
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	var svc Service = NewService(Extractive{}, NewKafkaEmitter(pub, topics.AnswersGenerated), Config{})
	svc = LoggingMiddleware(logger)(svc)
	sub := NewAnswerSubscriber(brokers, cluster.Group(t), topics.QueriesRetrieved, pub, MakeEndpoints(svc),
		kafkatransport.SubscriberRetry(3, 10*time.Millisecond, 50*time.Millisecond),
		kafkatransport.SubscriberLogger(logger))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sub.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && err != context.Canceled {
				t.Errorf("subscriber: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("subscriber did not stop")
		}
	})

	refund := chunk(1, "Returns", "Our store opened in 2004. Customers may request a refund within 30 days of delivery.", 2)
	leave := chunk(2, "休假制度", "公司成立于二零零四年。正式员工每年享有十五天带薪年假。", 3)
	queries := []query{
		{
			q: events.QueryRetrieved{Query: events.Query{RequestID: "req-en", TenantID: "acme", Question: "How many days to request a refund?"},
				Results: []events.RetrievedChunk{chunk(0, "Shipping", "Orders ship within two business days.", 3), refund}},
			correlation: "corr-en", trace: tracecontext.New(),
			wantIn: "refund within 30 days", wantCite: refund.ChunkID, wantMode: ModeExtractive,
		},
		{
			q: events.QueryRetrieved{Query: events.Query{RequestID: "req-zh", TenantID: "globex", Question: "年假有多少天？"},
				Results: []events.RetrievedChunk{leave}},
			correlation: "corr-zh", trace: tracecontext.New(),
			wantIn: "十五天带薪年假", wantCite: leave.ChunkID, wantMode: ModeExtractive,
		},
		{
			q:           events.QueryRetrieved{Query: events.Query{RequestID: "req-none", TenantID: "acme", Question: "未知的问题？"}},
			correlation: "corr-none", trace: tracecontext.New(),
			wantIn: "未查询到相关知识", wantMode: ModeNoContext,
		},
	}
	// The expected number of events: the deltas of the answer the
	// extractive backend gives, plus the completed event.
	want := 0
	for _, qr := range queries {
		p := BuildPrompt(qr.q.Question, qr.q.Results, PromptOptions{})
		text := extract(p, 3, 0.5)
		if text == "" {
			text = Refusal(p.Lang)
		}
		want += len(StreamPieces(text)) + 1
	}
	var in []kafka.Message
	for _, qr := range queries {
		in = append(in, qr.message(t, topics.QueriesRetrieved))
	}
	// A poison message: its payload claims another tenant than its header.
	bad := queries[0].message(t, topics.QueriesRetrieved)
	bad.Value = []byte(strings.Replace(string(bad.Value), `"tenant_id":"acme"`, `"tenant_id":"evil"`, 1))
	bad.Key = []byte("req-bad")
	in = append(in, bad)
	cluster.Produce(t, in...)

	out := cluster.ReadN(t, topics.AnswersGenerated, want, 30*time.Second)
	if len(out) != want {
		t.Errorf("answers topic has %d events, want %d", len(out), want)
	}
	validator, err := events.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	firstIDs := map[string][]string{}
	for _, qr := range queries {
		rid := qr.q.RequestID
		msgs := answerOf(out, rid)
		if len(msgs) < 2 {
			t.Fatalf("%s: %d events", rid, len(msgs))
		}
		var text strings.Builder
		for i, m := range msgs {
			env, p, err := events.Decode(m)
			if err != nil {
				t.Fatalf("%s event %d: %v", rid, i, err)
			}
			firstIDs[rid] = append(firstIDs[rid], env.ID)
			if err := validator.Validate(env.Type, m.Value); err != nil {
				t.Errorf("%s event %d does not match its schema: %v", rid, i, err)
			}
			if env.TenantID != qr.q.TenantID || kafkatest.Header(m, events.HeaderTenantID) != qr.q.TenantID {
				t.Errorf("%s event %d: tenantid %q, want %q", rid, i, env.TenantID, qr.q.TenantID)
			}
			if env.CorrelationID != qr.correlation {
				t.Errorf("%s event %d: correlationid %q, want %q", rid, i, env.CorrelationID, qr.correlation)
			}
			tp, err := tracecontext.Parse(kafkatest.Header(m, events.HeaderTraceParent))
			if err != nil || tp.TraceID != qr.trace.TraceID {
				t.Errorf("%s event %d: traceparent %q, want trace %s", rid, i, kafkatest.Header(m, events.HeaderTraceParent), qr.trace.TraceIDString())
			}
			if env.Source != EventSource {
				t.Errorf("%s event %d: source %q", rid, i, env.Source)
			}
			last := i == len(msgs)-1
			switch p := p.(type) {
			case *events.AnswerDelta:
				if last {
					t.Errorf("%s: last event is a delta", rid)
				}
				if p.Seq != i {
					t.Errorf("%s: delta %d has seq %d (gap or reorder)", rid, i, p.Seq)
				}
				if env.ID != DeltaID(qr.q.TenantID, rid, p.Seq) {
					t.Errorf("%s: delta %d ce_id %s is not deterministic", rid, i, env.ID)
				}
				text.WriteString(p.Text)
			case *events.AnswerCompleted:
				if !last {
					t.Fatalf("%s: completed event at %d of %d", rid, i, len(msgs))
				}
				if env.ID != CompletedID(qr.q.TenantID, rid) {
					t.Errorf("%s: completed ce_id %s is not deterministic", rid, env.ID)
				}
				var c Completed
				if err := json.Unmarshal(m.Value, &c); err != nil {
					t.Fatalf("%s: completed: %v", rid, err)
				}
				if c.Text != text.String() || c.Deltas != i || c.FinishReason != FinishStop || c.Mode != qr.wantMode ||
					c.PromptVersion != PromptVersion || c.Timings == nil || c.Usage == nil || c.Usage.CompletionTokens != i {
					t.Errorf("%s: completed = %+v (deltas streamed %d, text %q)", rid, c, i, text.String())
				}
				if !strings.Contains(c.Text, qr.wantIn) {
					t.Errorf("%s: answer %q lacks %q", rid, c.Text, qr.wantIn)
				}
				switch {
				case qr.wantCite == "" && len(c.Citations) != 0:
					t.Errorf("%s: citations %+v, want none", rid, c.Citations)
				case qr.wantCite != "" && (len(c.Citations) == 0 || c.Citations[0].ChunkID != qr.wantCite):
					t.Errorf("%s: citations %+v, want first %s", rid, c.Citations, qr.wantCite)
				}
			default:
				t.Errorf("%s event %d: unexpected %T", rid, i, p)
			}
		}
	}
	dlq := cluster.ReadN(t, events.DLQ(topics.QueriesRetrieved), 1, 30*time.Second)
	if len(dlq) != 1 || string(dlq[0].Key) != "req-bad" {
		t.Errorf("dead letters = %d (first key %q), want the poison query", len(dlq), string(dlq[0].Key))
	}

	// Redelivery: the same query again yields the same event ids, so
	// downstream consumers drop the duplicates.
	cluster.Produce(t, queries[0].message(t, topics.QueriesRetrieved))
	n := len(firstIDs["req-en"])
	out = cluster.ReadN(t, topics.AnswersGenerated, want+n, 30*time.Second)
	again := answerOf(out, "req-en")
	if len(again) != 2*n {
		t.Fatalf("after redelivery req-en has %d events, want %d", len(again), 2*n)
	}
	for i, m := range again[n:] {
		if id := kafkatest.Header(m, events.HeaderID); id != firstIDs["req-en"][i] {
			t.Errorf("redelivered event %d: ce_id %s, first delivery had %s", i, id, firstIDs["req-en"][i])
		}
	}
}
