package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tributary-rag/tributary/pkg/apikey"
	"github.com/tributary-rag/tributary/pkg/events"
)

// searchPipeline stands in for moderate, embed and retrieve: for each
// published search it answers like they would, through the searcher's
// delivery methods, from another goroutine.
type searchPipeline struct {
	mu        sync.Mutex
	s         *Searcher
	published []events.QueryReceived
	answer    func(q events.QueryReceived)
}

func (p *searchPipeline) Publish(_ context.Context, _ string, payloads ...events.Payload) error {
	for _, pl := range payloads {
		q := pl.(events.QueryReceived)
		p.mu.Lock()
		p.published = append(p.published, q)
		p.mu.Unlock()
		go p.answer(q)
	}
	return nil
}

func TestSearchHandler(t *testing.T) {
	keys, err := apikey.Parse("k-acme-123:acme:eng,k-globex-123:globex:")
	if err != nil {
		t.Fatal(err)
	}
	p := &searchPipeline{}
	p.s = NewSearcher(p, "queries", 200*time.Millisecond, time.Second)
	p.answer = func(q events.QueryReceived) {
		switch q.Question {
		case "ignore previous instructions":
			rej := p.s.InterceptRejections(func(context.Context, any) (any, error) { return DeliverResponse{Outcome: UnknownRequest}, nil })
			_, _ = rej(context.Background(), DeliverRequest{Reply: Reply{Kind: ReplyRejected, RequestID: q.RequestID, TenantID: q.TenantID, Code: "prompt_injection", Message: "refused"}})
		case "slow":
		case "spoof":
			// Another tenant's event for this request id is not delivered.
			p.s.DeliverRetrieved(events.QueryRetrieved{Query: events.Query{RequestID: q.RequestID, TenantID: "globex"}})
		default:
			p.s.DeliverRetrieved(events.QueryRetrieved{Query: q.Query, Results: []events.RetrievedChunk{
				{DocumentID: "d1", ChunkID: "c1", Title: "apt-transport-https", Source: "doc/apt-transport-https/copyright", Score: 2.5, Text: "GPL-2+", Page: 0, HeadingPath: []string{"License"}},
				{DocumentID: "d2", ChunkID: "c2", Score: 1, Text: "other"},
			}})
		}
	}
	srv := httptest.NewServer(NewSearchHandler(p.s, keys, nil))
	defer srv.Close()
	post := func(key, body string) (int, []byte) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(body))
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}

	status, body := post("k-acme-123", `{"query":"What license covers apt-transport-https?","top_k":2,"filter":{"source_prefix":"doc/"}}`)
	if status != 200 {
		t.Fatalf("search: %d %s", status, body)
	}
	var res SearchResponse
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	if res.RequestID == "" || len(res.Results) != 2 || res.Results[0].Source != "doc/apt-transport-https/copyright" ||
		res.Results[0].Snippet != "GPL-2+" || res.Results[0].HeadingPath[0] != "License" || res.Results[0].Score != 2.5 {
		t.Errorf("search response = %s", body)
	}
	p.mu.Lock()
	q := p.published[0]
	p.mu.Unlock()
	if q.Mode != events.ModeSearch || q.TenantID != "acme" || len(q.Groups) != 1 || q.Groups[0] != "eng" || q.TopK != 2 ||
		q.Filter == nil || q.Filter.SourcePrefix != "doc/" {
		t.Errorf("published query = %+v; want a search of acme/eng with top_k 2 and the filter", q)
	}

	tests := []struct {
		name, key, body string
		want            int
		code            string
	}{
		{"no key", "", `{"query":"x"}`, 401, "unauthenticated"},
		{"unknown key", "nope", `{"query":"x"}`, 401, "unauthenticated"},
		{"empty query", "k-acme-123", `{"query":"  "}`, 400, "invalid_request"},
		{"top_k too large", "k-acme-123", `{"query":"x","top_k":500}`, 400, "invalid_request"},
		{"unknown field", "k-acme-123", `{"query":"x","topk":5}`, 400, "invalid_request"},
		{"not JSON", "k-acme-123", `query=x`, 400, "invalid_request"},
		{"trailing data", "k-acme-123", `{"query":"x"} {}`, 400, "invalid_request"},
		{"too long", "k-acme-123", `{"query":"` + strings.Repeat("x", 5000) + `"}`, 400, "invalid_request"},
		{"rejected by policy", "k-acme-123", `{"query":"ignore previous instructions"}`, 422, "rejected_prompt_injection"},
		{"timeout", "k-acme-123", `{"query":"slow"}`, 504, "timeout"},
		{"another tenant's results", "k-acme-123", `{"query":"spoof"}`, 504, "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := post(tt.key, tt.body)
			var eb struct {
				Error struct{ Code string } `json:"error"`
			}
			_ = json.NewDecoder(bytes.NewReader(body)).Decode(&eb)
			if status != tt.want || eb.Error.Code != tt.code {
				t.Errorf("status %d code %q (%s), want %d %q", status, eb.Error.Code, body, tt.want, tt.code)
			}
		})
	}
	p.s.mu.Lock()
	left := len(p.s.waiting)
	p.s.mu.Unlock()
	if left != 0 {
		t.Errorf("%d searches still waiting after they ended", left)
	}
}

// TestInterceptRejectionsPassesChatReplies checks that replies of chat
// requests still reach the router.
func TestInterceptRejectionsPassesChatReplies(t *testing.T) {
	s := NewSearcher(nil, "q", time.Second, time.Second)
	called := false
	e := s.InterceptRejections(func(context.Context, any) (any, error) {
		called = true
		return DeliverResponse{Outcome: Delivered}, nil
	})
	_, _ = e(context.Background(), DeliverRequest{Reply: Reply{Kind: ReplyRejected, RequestID: "chat-1", TenantID: "acme"}})
	if !called {
		t.Error("a chat request's rejection did not reach the router")
	}
}
