package edge

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tributary-rag/tributary/pkg/apikey"
	"github.com/tributary-rag/tributary/pkg/keylimit"
)

// TestKeyLimits checks that one API key cannot take what every key
// shares: its connections are capped (429 before the upgrade) and its
// questions are rate limited across connections (error rate_limited with
// retry_after_ms), while another key is unaffected. It runs in a synctest
// bubble, so the rate refills on the bubble's clock.
func TestKeyLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		keys, err := apikey.Parse(aliceKey + ":acme:," + bobKey + ":globex:")
		if err != nil {
			t.Fatal(err)
		}
		h := NewWSHandler(MakeEndpoints(NewService(&recordingPublisher{}, Config{QueriesTopic: "q"})), WSConfig{
			Keys: keys, Conns: keylimit.NewSlots(2, 10), Asks: keylimit.NewRate(1, 2),
		})
		ln := newPipeListener()
		srv := &http.Server{Handler: NewHTTPHandler(h)}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ln) }()
		t.Cleanup(func() {
			h.Close()
			_ = srv.Close()
			if err := <-served; !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("Serve = %v", err)
			}
		})
		dialer := &websocket.Dialer{NetDialContext: ln.DialContext}
		dial := func(key string) (*websocket.Conn, *http.Response, error) {
			c, resp, err := dialer.Dial("ws://edge.test/v1/chat", http.Header{"Authorization": {"Bearer " + key}})
			if c != nil {
				t.Cleanup(func() { _ = c.Close() })
			}
			return c, resp, err
		}
		a1, _, err := dial(aliceKey)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := dial(aliceKey); err != nil {
			t.Fatal(err)
		}
		_, resp, err := dial(aliceKey)
		if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("third connection of a key: err %v, response %+v; want 429 with Retry-After", err, resp)
		}
		var body struct {
			Error struct{ Code string } `json:"error"`
		}
		b, _ := io.ReadAll(resp.Body)
		if json.Unmarshal(b, &body) != nil || body.Error.Code != CodeTooManyRequests {
			t.Errorf("429 body %s, want error code %s", b, CodeTooManyRequests)
		}
		if _, _, err := dial(bobKey); err != nil {
			t.Fatalf("another key was refused: %v", err)
		}

		ask := func(id string) serverMsg {
			t.Helper()
			if err := a1.WriteJSON(map[string]any{"type": "ask", "id": id, "question": "What is Aurora?"}); err != nil {
				t.Fatal(err)
			}
			var m serverMsg
			if err := a1.ReadJSON(&m); err != nil {
				t.Fatal(err)
			}
			return m
		}
		for _, id := range []string{"q1", "q2"} {
			if m := ask(id); m.Type != TypeAccepted {
				t.Fatalf("ask %s within the burst: %+v", id, m)
			}
		}
		m := ask("q3")
		if m.Type != TypeError || m.Code != CodeRateLimited || m.ID != "q3" {
			t.Fatalf("ask over the rate: %+v, want error %s", m, CodeRateLimited)
		}
		time.Sleep(time.Second)
		if m := ask("q3"); m.Type != TypeAccepted {
			t.Fatalf("the same id after the retry-after: %+v, want accepted", m)
		}
	})
}

func TestRateLimitedMessage(t *testing.T) {
	b, err := json.Marshal(Message{Type: TypeError, ID: "q", Code: CodeRateLimited, Message: "slow down", RetryAfter: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"error","id":"q","request_id":"","code":"rate_limited","message":"slow down","retry_after_ms":1500}`
	if string(b) != want {
		t.Errorf("marshal = %s, want %s", b, want)
	}
}
