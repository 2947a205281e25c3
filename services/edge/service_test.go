package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tributary-rag/tributary/pkg/apikey"
	"github.com/tributary-rag/tributary/pkg/events"
)

// recordingPublisher remembers what was published, or fails with err.
type recordingPublisher struct {
	mu   sync.Mutex
	got  []events.Payload
	ctxs []context.Context
	err  error
}

func (p *recordingPublisher) Publish(ctx context.Context, _ string, payloads ...events.Payload) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	p.got = append(p.got, payloads...)
	p.ctxs = append(p.ctxs, ctx)
	return nil
}

// bufferSink collects messages as their wire text.
type bufferSink struct {
	mu     sync.Mutex
	msgs   []string
	refuse bool
}

func (s *bufferSink) Send(m Message) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refuse {
		return false
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err) // a test sink: MarshalJSON never fails for these messages
	}
	s.msgs = append(s.msgs, string(b))
	return true
}

func (s *bufferSink) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.msgs, "\n")
}

var alice = apikey.Principal{Tenant: "acme", Groups: []string{"eng"}, Name: "key-alice"}

func TestRouterOrdersAndDedupes(t *testing.T) {
	delta := func(seq int) Reply {
		return Reply{Kind: ReplyDelta, TenantID: "acme", Seq: seq, Text: fmt.Sprintf("t%d", seq)}
	}
	completed := Reply{Kind: ReplyCompleted, TenantID: "acme", FinishReason: "stop", Deltas: 3,
		Citations: []events.Citation{{N: 2, DocumentID: "d1", ChunkID: "c1", Title: "T", Score: 0.5, Snippet: "s"}}}
	tok := func(seq int) string {
		return fmt.Sprintf(`{"type":"token","id":"q","request_id":"RID","seq":%d,"text":"t%d"}`, seq, seq)
	}
	accepted := `{"type":"accepted","id":"q","request_id":"RID"}`
	cites := `{"type":"citations","id":"q","request_id":"RID","citations":[{"n":2,"document_id":"d1","chunk_id":"c1","title":"T","score":0.5,"snippet":"s"}]}`
	done := `{"type":"done","id":"q","request_id":"RID","finish_reason":"stop"}`
	tests := []struct {
		name     string
		replies  []Reply
		want     []string
		outcomes []string
	}{
		{"in order", []Reply{delta(0), delta(1), delta(2), completed},
			[]string{accepted, tok(0), tok(1), tok(2), cites, done},
			[]string{Delivered, Delivered, Delivered, Delivered}},
		{"reversed with duplicates", []Reply{delta(2), delta(1), delta(2), delta(0), delta(0), completed, delta(1)},
			[]string{accepted, tok(0), tok(1), tok(2), cites, done},
			[]string{Delivered, Delivered, Duplicate, Delivered, Duplicate, Delivered, UnknownRequest}},
		{"completed before the last delta", []Reply{delta(0), completed, delta(2), completed, delta(1)},
			[]string{accepted, tok(0), tok(1), tok(2), cites, done},
			[]string{Delivered, Delivered, Delivered, Duplicate, Delivered}},
		{"other tenant", []Reply{{Kind: ReplyDelta, TenantID: "globex", Seq: 0, Text: "x"}},
			[]string{accepted},
			[]string{TenantMismatch}},
		{"rejected", []Reply{{Kind: ReplyRejected, TenantID: "acme", Code: "prompt_injection", Message: "no"}, delta(0)},
			[]string{accepted, `{"type":"done","id":"q","request_id":"RID","finish_reason":"refused","code":"prompt_injection","message":"no"}`},
			[]string{Delivered, UnknownRequest}},
		{"far ahead", []Reply{delta(10000)},
			[]string{accepted},
			[]string{OutOfWindow}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub := &recordingPublisher{}
			svc := NewService(pub, Config{QueriesTopic: "q", AnswerTimeout: time.Minute})
			sink := &bufferSink{}
			rid, err := svc.Ask(t.Context(), Question{ID: "q", Question: "why?", Principal: alice}, sink)
			if err != nil {
				t.Fatalf("Ask: %v", err)
			}
			var outcomes []string
			for _, r := range tt.replies {
				r.RequestID = rid
				o, err := svc.Deliver(t.Context(), r)
				if err != nil {
					t.Fatalf("Deliver(%+v): %v", r, err)
				}
				outcomes = append(outcomes, o)
			}
			want := strings.ReplaceAll(strings.Join(tt.want, "\n"), "RID", rid)
			if got := sink.text(); got != want {
				t.Errorf("messages:\n%s\nwant:\n%s", got, want)
			}
			if fmt.Sprint(outcomes) != fmt.Sprint(tt.outcomes) {
				t.Errorf("outcomes = %v, want %v", outcomes, tt.outcomes)
			}
		})
	}
}

func TestRouterPublishesQuery(t *testing.T) {
	pub := &recordingPublisher{}
	svc := NewService(pub, Config{QueriesTopic: "q"})
	rid, err := svc.Ask(t.Context(), Question{ID: "c1", Question: "how?", ConversationID: "conv", TopK: 3, Principal: alice}, &bufferSink{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pub.got) != 1 {
		t.Fatalf("published %d events, want 1", len(pub.got))
	}
	q, ok := pub.got[0].(events.QueryReceived)
	want := events.Query{RequestID: rid, TenantID: "acme", Groups: []string{"eng"}, Question: "how?", ConversationID: "conv", TopK: 3, Principal: "key-alice"}
	if !ok || fmt.Sprint(q.Query) != fmt.Sprint(want) {
		t.Fatalf("published %#v, want %#v", pub.got[0], want)
	}
	if ctx := pub.ctxs[0]; events.Tenant(ctx) != "acme" || events.CorrelationID(ctx) != rid {
		t.Errorf("publish context tenant %q correlation %q", events.Tenant(ctx), events.CorrelationID(ctx))
	}
}

func TestRouterPublishFailure(t *testing.T) {
	pub := &recordingPublisher{err: errors.New("broker down")}
	svc := NewService(pub, Config{QueriesTopic: "q"})
	sink := &bufferSink{}
	rid, err := svc.Ask(t.Context(), Question{ID: "c1", Question: "how?", Principal: alice}, sink)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Ask error = %v, want ErrUnavailable", err)
	}
	if got := sink.text(); got != "" {
		t.Errorf("sink got %q, want nothing", got)
	}
	if o, _ := svc.Deliver(t.Context(), Reply{Kind: ReplyDelta, RequestID: rid, TenantID: "acme"}); o != UnknownRequest {
		t.Errorf("Deliver after failed ask = %s, want %s", o, UnknownRequest)
	}
}

// TestRouterTimeoutAndCancel runs in a synctest bubble, so the answer
// timeout runs on the bubble's fake clock.
func TestRouterTimeoutAndCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc := NewService(&recordingPublisher{}, Config{QueriesTopic: "q", AnswerTimeout: 50 * time.Millisecond})
		sink := &bufferSink{}
		rid, err := svc.Ask(t.Context(), Question{ID: "slow", Question: "?", Principal: alice}, sink)
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf(`{"type":"accepted","id":"slow","request_id":"%[1]s"}
{"type":"error","id":"slow","request_id":"%[1]s","code":"timeout","message":"no answer within 50ms"}
{"type":"done","id":"slow","request_id":"%[1]s","finish_reason":"error"}`, rid)
		// In the bubble the timeout fires when the fake clock reaches 50ms.
		time.Sleep(50 * time.Millisecond)
		synctest.Wait()
		if got := sink.text(); got != want {
			t.Fatalf("after timeout:\n%s\nwant:\n%s", got, want)
		}

		sink2 := &bufferSink{}
		rid2, err := svc.Ask(t.Context(), Question{ID: "c", Question: "?", Principal: alice}, sink2)
		if err != nil {
			t.Fatal(err)
		}
		if !svc.Cancel(t.Context(), rid2) {
			t.Fatal("Cancel = false, want true")
		}
		if svc.Cancel(t.Context(), rid2) {
			t.Error("second Cancel = true, want false")
		}
		if !strings.HasSuffix(sink2.text(), `"finish_reason":"cancelled"}`) {
			t.Errorf("after cancel: %s", sink2.text())
		}
		if o, _ := svc.Deliver(t.Context(), Reply{Kind: ReplyDelta, RequestID: rid2, TenantID: "acme"}); o != UnknownRequest {
			t.Errorf("Deliver after cancel = %s, want %s", o, UnknownRequest)
		}
	})
}

func TestRouterRefusingSinkAbandons(t *testing.T) {
	svc := NewService(&recordingPublisher{}, Config{QueriesTopic: "q"})
	sink := &bufferSink{}
	rid, err := svc.Ask(t.Context(), Question{ID: "c", Question: "?", Principal: alice}, sink)
	if err != nil {
		t.Fatal(err)
	}
	sink.refuse = true
	if o, _ := svc.Deliver(t.Context(), Reply{Kind: ReplyDelta, RequestID: rid, TenantID: "acme"}); o != Delivered {
		t.Fatalf("Deliver = %s", o)
	}
	if o, _ := svc.Deliver(t.Context(), Reply{Kind: ReplyDelta, RequestID: rid, TenantID: "acme", Seq: 1}); o != UnknownRequest {
		t.Errorf("Deliver after the sink refused = %s, want %s", o, UnknownRequest)
	}
}

func TestDecodeClientMessage(t *testing.T) {
	tests := []struct {
		in      string
		want    ClientMessage
		wantErr error
	}{
		{`{"type":"ask","id":"c1","question":"hi","conversation_id":"x","top_k":5}`, ClientMessage{Type: "ask", ID: "c1", Question: "hi", ConversationID: "x", TopK: 5}, nil},
		{`{"type":"cancel","id":"c1"}`, ClientMessage{Type: "cancel", ID: "c1"}, nil},
		{`{"type":"ask","id":"c1","question":"hi","future":true}`, ClientMessage{Type: "ask", ID: "c1", Question: "hi"}, nil},
		{`not json`, ClientMessage{}, ErrBadMessage},
		{`{"type":"ask","id":"c1","question":"hi"} {}`, ClientMessage{ID: "c1"}, ErrBadMessage},
		{`{"type":"hello","id":"c1"}`, ClientMessage{ID: "c1"}, ErrBadMessage},
		{`{"type":"cancel","id":"c1"} ]`, ClientMessage{ID: "c1"}, ErrBadMessage},
		{"{\"type\":\"cancel\",\"id\":\"c1\"}\n ", ClientMessage{Type: "cancel", ID: "c1"}, nil},
		{`{"type":"ask","id":7}`, ClientMessage{}, ErrBadMessage},
		{`{"id":"c1"}`, ClientMessage{ID: "c1"}, ErrInvalidRequest},
		{`{"type":"ask","id":"","question":"hi"}`, ClientMessage{Type: "ask"}, ErrInvalidRequest},
		{`{"type":"ask","id":"c1","question":"  "}`, ClientMessage{Type: "ask", ID: "c1"}, ErrInvalidRequest},
		{`{"type":"ask","id":"c1","question":"hi","top_k":101}`, ClientMessage{Type: "ask", ID: "c1"}, ErrInvalidRequest},
		{`{"type":"ask","id":"c1","question":"hi","top_k":-1}`, ClientMessage{Type: "ask", ID: "c1"}, ErrInvalidRequest},
		{`{"type":"ask","id":"c1","question":"` + strings.Repeat("a", 65) + `"}`, ClientMessage{Type: "ask", ID: "c1"}, ErrInvalidRequest},
		{`{"type":"cancel","id":"c1","question":"hi"}`, ClientMessage{Type: "cancel", ID: "c1"}, ErrInvalidRequest},
		{`{"type":"cancel","id":"` + strings.Repeat("é", 100) + `"}`, ClientMessage{Type: "cancel", ID: strings.Repeat("é", 64)}, ErrInvalidRequest},
	}
	for _, tt := range tests {
		got, err := DecodeClientMessage([]byte(tt.in), 64)
		if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
			t.Errorf("DecodeClientMessage(%q) error = %v, want %v", tt.in, err, tt.wantErr)
		}
		if got != tt.want {
			t.Errorf("DecodeClientMessage(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func FuzzDecodeClientMessage(f *testing.F) {
	for _, s := range []string{
		`{"type":"ask","id":"c1","question":"What is our leave policy?","conversation_id":"x","top_k":5}`,
		`{"type":"cancel","id":"c1"}`,
		`{"type":"ask","id":"\u00e9\ud800","question":"年假怎么算？"}`,
		`{"type":"ask","id":"c1","question":"hi"}{"x":1}`,
		`[1,2,3]`, `null`, `{"type":null}`, "\xff\xfe",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeClientMessage(data, 1024)
		if len(m.ID) > MaxIDBytes {
			t.Fatalf("id of %d bytes", len(m.ID))
		}
		if err == nil {
			if (m.Type != TypeAsk && m.Type != TypeCancel) || m.ID == "" || len(m.Question) > 1024 || m.TopK < 0 || m.TopK > MaxTopK {
				t.Fatalf("accepted %+v", m)
			}
			if m.Type == TypeAsk && strings.TrimSpace(m.Question) == "" {
				t.Fatalf("accepted an empty question: %+v", m)
			}
		} else if !errors.Is(err, ErrBadMessage) && !errors.Is(err, ErrInvalidRequest) {
			t.Fatalf("error %v wraps neither sentinel", err)
		}
		// Whatever came in, the reply that echoes the id is valid JSON.
		reply, merr := json.Marshal(Message{Type: TypeError, ID: m.ID, Code: CodeBadMessage, Message: fmt.Sprint(err)})
		if merr != nil || !json.Valid(reply) {
			t.Fatalf("reply %q: %v", reply, merr)
		}
	})
}
