package edge

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tributary-rag/tributary/pkg/apikey"
)

// TestPingPong checks liveness: a client that answers pings stays
// connected through several pong waits of silence; one that does not is
// dropped after about one.
func TestPingPong(t *testing.T) {
	keys, err := apikey.Parse(aliceKey + ":acme:")
	if err != nil {
		t.Fatal(err)
	}
	metrics, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	const pongWait = 600 * time.Millisecond
	h := NewWSHandler(MakeEndpoints(NewService(&recordingPublisher{}, Config{QueriesTopic: "q"})),
		WSConfig{Keys: keys, PongWait: pongWait, Metrics: metrics})
	srv := httptest.NewServer(NewHTTPHandler(h))
	t.Cleanup(func() {
		h.Close()
		srv.Close()
	})
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/chat"
	dial := func() *websocket.Conn {
		c, _, err := websocket.DefaultDialer.Dial(url, http.Header{"Authorization": {"Bearer " + aliceKey}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}

	alive, mute := dial(), dial()
	var pings atomic.Int32
	alive.SetPingHandler(func(data string) error {
		pings.Add(1)
		return alive.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	mute.SetPingHandler(func(string) error { return nil })

	muteErr := make(chan error, 1)
	go func() {
		_ = mute.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _, err := mute.ReadMessage()
		muteErr <- err
	}()
	type result struct {
		m   serverMsg
		err error
	}
	aliveMsg := make(chan result, 1)
	go func() {
		var m serverMsg
		_ = alive.SetReadDeadline(time.Now().Add(20 * time.Second))
		err := alive.ReadJSON(&m)
		aliveMsg <- result{m, err}
	}()

	select {
	case err := <-muteErr:
		if err == nil {
			t.Fatal("the mute client read a message")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the client that never answers pings is still connected")
	}
	time.Sleep(3 * pongWait)
	if err := alive.WriteJSON(map[string]any{"type": "ask", "id": "still-here", "question": "?"}); err != nil {
		t.Fatalf("ask after %v of silence: %v", 3*pongWait, err)
	}
	r := <-aliveMsg
	if r.err != nil || r.m.Type != TypeAccepted || r.m.ID != "still-here" {
		t.Fatalf("after silence: %+v %v", r.m, r.err)
	}
	if n := pings.Load(); n < 3 {
		t.Errorf("%d pings, want at least 3", n)
	}
	if n := testutil.ToFloat64(metrics.disconnects.WithLabelValues("read_error")); n != 1 {
		t.Errorf("read_error disconnects = %v, want 1", n)
	}

	// Shutdown closes the remaining connection with 1001 and refuses new
	// ones.
	h.Close()
	_ = alive.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err = alive.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
		t.Errorf("read after shutdown: %v, want close 1001", err)
	}
	late := dial()
	_ = late.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := late.ReadMessage(); !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
		t.Errorf("connection after shutdown: %v, want close 1001", err)
	}
}
