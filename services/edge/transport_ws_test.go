package edge

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tributary-rag/tributary/pkg/apikey"
)

// pipeListener is a net.Listener whose connections are in-memory pipes
// (net.Pipe) made by its DialContext, so that a server and its clients can
// run inside a synctest bubble: blocking on a TCP socket is not durably
// blocking, and would keep the bubble's clock from advancing.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

// DialContext connects to the listener, whatever network and address.
func (l *pipeListener) DialContext(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// TestPingPong checks liveness: a client that answers pings stays
// connected through several pong waits of silence; one that does not is
// dropped after about one. It runs in a synctest bubble over in-memory
// connections, so the pong waits pass on the bubble's fake clock.
func TestPingPong(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
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
		ln := newPipeListener()
		srv := &http.Server{Handler: NewHTTPHandler(h)}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ln) }()
		t.Cleanup(func() {
			h.Close()
			if err := srv.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if err := <-served; !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("Serve = %v, want %v", err, http.ErrServerClosed)
			}
		})
		dialer := &websocket.Dialer{NetDialContext: ln.DialContext}
		dial := func() *websocket.Conn {
			c, _, err := dialer.Dial("ws://edge.test/v1/chat", http.Header{"Authorization": {"Bearer " + aliceKey}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close() })
			return c
		}

		start := time.Now()
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
		if d := time.Since(start); d < pongWait || d >= 2*pongWait {
			t.Errorf("the mute client was dropped after %v, want about %v", d, pongWait)
		}
		// Silence on the bubble's clock: only pings and pongs go by.
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
	})
}
