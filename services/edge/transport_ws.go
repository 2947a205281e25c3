package edge

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tributary-rag/tributary/pkg/apikey"
	"github.com/tributary-rag/tributary/pkg/auditevent"
	"github.com/tributary-rag/tributary/pkg/keylimit"
)

// Subprotocol is the WebSocket subprotocol the edge speaks. A browser that
// sends its API key in Sec-WebSocket-Protocol must offer it too (browsers
// fail a handshake in which the server picks none of the offered
// protocols); the server never echoes the key protocol.
const Subprotocol = "tributary.v1"

// KeyProtocolPrefix starts the Sec-WebSocket-Protocol entry that carries an
// API key from a browser: "tributary.key." + base64url(key) without padding.
const KeyProtocolPrefix = "tributary.key."

// WSConfig tunes the WebSocket transport. Zero values take the documented
// defaults.
type WSConfig struct {
	// Keys authenticate clients.
	Keys *apikey.Set
	// MaxMessageBytes is the largest client message; a larger one closes
	// the connection with 1009 (message too big). Default 32 KiB.
	MaxMessageBytes int64
	// MaxInFlight is how many asks one connection may have in flight;
	// another gets error too_many_requests. Default 8.
	MaxInFlight int
	// WriteWait bounds each write to the client; a client that does not
	// take a message in time is disconnected. Default 10s.
	WriteWait time.Duration
	// PongWait is how long the connection may stay silent (no message, no
	// pong); pings go out every 9/10 of it. Default 60s.
	PongWait time.Duration
	// SendBuffer is how many messages may wait for a connection's writer;
	// a client that falls further behind is disconnected (slow_consumer).
	// Default 1024.
	SendBuffer int
	// AllowedOrigins, when not empty, are the only Origin header values
	// accepted (requests without Origin, from non-browser clients, pass).
	// Empty allows every origin: authentication is by explicit key, never
	// by cookie, so a cross-site page cannot ride on a user's credentials.
	AllowedOrigins []string
	// Logger logs connections (default: discard).
	Logger *slog.Logger
	// Metrics records connections (may be nil).
	Metrics *Metrics
	// Conns bounds the connections of one key and of all keys; a
	// connection over either gets 429 before the upgrade (nil: none).
	Conns *keylimit.Slots
	// Asks bounds the questions per second of one key across all its
	// connections; one over gets error rate_limited (nil: none).
	Asks *keylimit.Rate
	// Audit records refused connections (nil: none).
	Audit *auditevent.Recorder
}

// WSHandler serves GET /v1/chat. Each connection has exactly one reader
// goroutine (the handler's own) and one writer goroutine, as in gorilla's
// chat example; replies reach the writer through a bounded queue, so a slow
// client never blocks the Kafka consumer or other clients.
type WSHandler struct {
	e        Endpoints
	cfg      WSConfig
	upgrader websocket.Upgrader

	mu     sync.Mutex
	conns  map[*wsConn]struct{}
	closed bool
}

// NewWSHandler returns the chat handler over endpoints e.
func NewWSHandler(e Endpoints, cfg WSConfig) *WSHandler {
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = 32 << 10
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 8
	}
	if cfg.WriteWait <= 0 {
		cfg.WriteWait = 10 * time.Second
	}
	if cfg.PongWait <= 0 {
		cfg.PongWait = 60 * time.Second
	}
	if cfg.SendBuffer <= 0 {
		cfg.SendBuffer = 1024
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Keys == nil {
		cfg.Keys = &apikey.Set{}
	}
	h := &WSHandler{e: e, cfg: cfg, conns: map[*wsConn]struct{}{}}
	h.upgrader = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   4096,
		WriteBufferSize:  4096,
		Subprotocols:     []string{Subprotocol},
		CheckOrigin:      h.checkOrigin,
		Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
			writeError(w, status, "bad_handshake", reason.Error())
		},
	}
	return h
}

// NewHTTPHandler returns the edge's routes: GET /v1/chat.
func NewHTTPHandler(ws *WSHandler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /v1/chat", ws)
	return mux
}

func (h *WSHandler) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || len(h.cfg.AllowedOrigins) == 0 {
		return true
	}
	for _, o := range h.cfg.AllowedOrigins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

// KeyFromRequest returns the API key of an upgrade request: the
// Authorization Bearer token, or else a Sec-WebSocket-Protocol entry
// KeyProtocolPrefix + base64url(key). Query parameters are never read: URLs
// end up in access logs, proxies and browser history.
func KeyFromRequest(r *http.Request) string {
	if k := apikey.BearerToken(r.Header.Get("Authorization")); k != "" {
		return k
	}
	for _, p := range websocket.Subprotocols(r) {
		enc, ok := strings.CutPrefix(p, KeyProtocolPrefix)
		if !ok {
			continue
		}
		k, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(enc, "="))
		if err == nil {
			return string(k)
		}
	}
	return ""
}

// ServeHTTP authenticates the request (401 before any upgrade), upgrades
// it and runs the connection until it closes.
func (h *WSHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, ok := h.cfg.Keys.Lookup(KeyFromRequest(r))
	if !ok {
		h.cfg.Metrics.authFailed()
		h.cfg.Logger.WarnContext(r.Context(), "chat: unauthenticated", "remote", r.RemoteAddr)
		h.cfg.Audit.AuthFailed(r, "chat.connect")
		apikey.WriteUnauthenticated(w)
		return
	}
	release, ok := h.cfg.Conns.Acquire(p.Name)
	if !ok {
		h.cfg.Logger.WarnContext(r.Context(), "chat: connection limit", "tenant", p.Tenant, "principal", p.Name)
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusTooManyRequests, CodeTooManyRequests, "too many connections for this API key")
		return
	}
	defer release()
	ws, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	c := &wsConn{
		h:         h,
		ws:        ws,
		principal: p,
		send:      make(chan Message, h.cfg.SendBuffer),
		closed:    make(chan struct{}),
		inflight:  map[string]string{},
		closeCode: websocket.CloseNormalClosure,
	}
	if !h.add(c) {
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "shutting down"), time.Now().Add(time.Second))
		_ = ws.Close()
		return
	}
	defer h.remove(c)
	h.cfg.Metrics.connected(1)
	defer h.cfg.Metrics.connected(-1)
	ctx := apikey.WithPrincipal(r.Context(), p)
	h.cfg.Logger.DebugContext(ctx, "chat: connected", "tenant", p.Tenant, "principal", p.Name)
	c.run(ctx)
	h.cfg.Metrics.disconnected(c.reason)
	h.cfg.Logger.DebugContext(ctx, "chat: disconnected", "tenant", p.Tenant, "principal", p.Name, "reason", c.reason)
}

func (h *WSHandler) add(c *wsConn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.conns[c] = struct{}{}
	return true
}

func (h *WSHandler) remove(c *wsConn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.conns, c)
}

// Close closes every connection with 1001 (going away) and refuses new
// ones; http.Server.Shutdown does not close hijacked connections, so call
// it from Server.RegisterOnShutdown.
func (h *WSHandler) Close() {
	h.mu.Lock()
	h.closed = true
	conns := make([]*wsConn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		c.kill("shutdown", websocket.CloseGoingAway, "server shutting down")
	}
}

// wsConn is one client connection. Its reader runs in the handler's
// goroutine, its writer in one more; the Service calls Send from the Kafka
// consumer's goroutines.
type wsConn struct {
	h         *WSHandler
	ws        *websocket.Conn
	principal apikey.Principal
	send      chan Message
	closed    chan struct{}

	once      sync.Once
	reason    string // why it closed; written once, before closed is closed
	closeCode int
	closeText string

	mu       sync.Mutex
	inflight map[string]string // client id → request id ("" while asking)
}

// kill marks the connection closed; the writer sends the close frame and
// closes the socket, which ends the reader.
func (c *wsConn) kill(reason string, code int, text string) {
	c.once.Do(func() {
		c.reason, c.closeCode, c.closeText = reason, code, text
		close(c.closed)
	})
}

// Send implements Sink: it queues m for the writer and never blocks. A
// done message frees its id's in-flight slot.
func (c *wsConn) Send(m Message) bool {
	select {
	case <-c.closed:
		return false
	default:
	}
	if m.Type == TypeDone {
		c.mu.Lock()
		delete(c.inflight, m.ID)
		c.mu.Unlock()
	}
	select {
	case c.send <- m:
		return true
	default:
		c.kill("slow_consumer", websocket.ClosePolicyViolation, "client too slow")
		return false
	}
}

func (c *wsConn) run(ctx context.Context) {
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop()
	}()
	c.readLoop(ctx)
	<-writerDone
	// Forget what is still in flight: its answers have nowhere to go.
	c.mu.Lock()
	ids := make([]string, 0, len(c.inflight))
	for _, rid := range c.inflight {
		if rid != "" {
			ids = append(ids, rid)
		}
	}
	c.inflight = map[string]string{}
	c.mu.Unlock()
	for _, rid := range ids {
		_, _ = c.h.e.Abandon(ctx, AbandonRequest{RequestID: rid})
	}
}

func (c *wsConn) readLoop(ctx context.Context) {
	cfg := c.h.cfg
	c.ws.SetReadLimit(cfg.MaxMessageBytes)
	_ = c.ws.SetReadDeadline(time.Now().Add(cfg.PongWait))
	c.ws.SetPongHandler(func(string) error {
		return c.ws.SetReadDeadline(time.Now().Add(cfg.PongWait))
	})
	for {
		typ, data, err := c.ws.ReadMessage()
		if err != nil {
			switch {
			case errors.Is(err, websocket.ErrReadLimit):
				// gorilla has sent 1009 already. Read and discard what the
				// client is still sending for a moment before closing, or
				// the unread bytes make the close a TCP reset that can
				// overtake the close frame.
				c.kill("too_large", websocket.CloseMessageTooBig, "")
				nc := c.ws.NetConn()
				_ = nc.SetReadDeadline(time.Now().Add(time.Second))
				_, _ = io.Copy(io.Discard, io.LimitReader(nc, 4*cfg.MaxMessageBytes))
				_ = c.ws.Close()
			case websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived):
				c.kill("client", websocket.CloseNormalClosure, "")
			default:
				c.kill("read_error", websocket.CloseNormalClosure, "")
			}
			return
		}
		_ = c.ws.SetReadDeadline(time.Now().Add(cfg.PongWait))
		if typ != websocket.TextMessage {
			c.Send(Message{Type: TypeError, Code: CodeBadMessage, Message: "messages must be JSON text frames"})
			continue
		}
		m, err := DecodeClientMessage(data, int(cfg.MaxMessageBytes))
		if err != nil {
			code := CodeInvalidRequest
			if errors.Is(err, ErrBadMessage) {
				code = CodeBadMessage
			}
			c.h.cfg.Metrics.asked("invalid")
			c.Send(Message{Type: TypeError, ID: m.ID, Code: code, Message: err.Error()})
			continue
		}
		switch m.Type {
		case TypeAsk:
			c.ask(ctx, m)
		case TypeCancel:
			c.cancel(ctx, m)
		}
	}
}

func (c *wsConn) ask(ctx context.Context, m ClientMessage) {
	c.mu.Lock()
	_, dup := c.inflight[m.ID]
	full := len(c.inflight) >= c.h.cfg.MaxInFlight
	if !dup && !full {
		c.inflight[m.ID] = "" // reserved while asking
	}
	c.mu.Unlock()
	switch {
	case dup:
		c.h.cfg.Metrics.asked("duplicate_id")
		c.Send(Message{Type: TypeError, ID: m.ID, Code: CodeDuplicateID, Message: "an ask with this id is in flight"})
		return
	case full:
		c.h.cfg.Metrics.asked("too_many_requests")
		c.Send(Message{Type: TypeError, ID: m.ID, Code: CodeTooManyRequests, Message: "too many asks in flight on this connection"})
		return
	}
	if ok, wait := c.h.cfg.Asks.Allow(c.principal.Name); !ok {
		c.mu.Lock()
		delete(c.inflight, m.ID)
		c.mu.Unlock()
		c.h.cfg.Metrics.asked("rate_limited")
		c.Send(Message{Type: TypeError, ID: m.ID, Code: CodeRateLimited, Message: "too many questions for this API key", RetryAfter: wait})
		return
	}
	resp, err := c.h.e.Ask(ctx, AskRequest{
		Question: Question{ID: m.ID, Question: m.Question, ConversationID: m.ConversationID, TopK: m.TopK, Principal: c.principal},
		Sink:     c,
	})
	var ar AskResponse
	if err == nil {
		ar, _ = resp.(AskResponse)
		err = ar.Err
	}
	c.mu.Lock()
	if err != nil {
		delete(c.inflight, m.ID)
	} else if _, ok := c.inflight[m.ID]; ok {
		// Still in flight (its done may already have been sent).
		c.inflight[m.ID] = ar.RequestID
	}
	c.mu.Unlock()
	if err != nil {
		c.Send(Message{Type: TypeError, ID: m.ID, RequestID: ar.RequestID, Code: CodeUnavailable, Message: "the question could not be submitted; try again"})
	}
}

func (c *wsConn) cancel(ctx context.Context, m ClientMessage) {
	c.mu.Lock()
	rid, ok := c.inflight[m.ID]
	c.mu.Unlock()
	if !ok || rid == "" {
		c.Send(Message{Type: TypeError, ID: m.ID, Code: CodeUnknownID, Message: "no ask with this id is in flight"})
		return
	}
	resp, err := c.h.e.Cancel(ctx, CancelRequest{RequestID: rid})
	if cr, _ := resp.(CancelResponse); err != nil || !cr.InFlight {
		c.Send(Message{Type: TypeError, ID: m.ID, RequestID: rid, Code: CodeUnknownID, Message: "the ask has already finished"})
	}
}

// writeLoop is the connection's only writer: replies, pings, and the close
// frame.
func (c *wsConn) writeLoop() {
	cfg := c.h.cfg
	ping := time.NewTicker(cfg.PongWait * 9 / 10)
	defer ping.Stop()
	defer func() {
		if c.reason != "too_large" { // the reader closes after draining
			_ = c.ws.Close()
		}
	}()
	for {
		select {
		case m := <-c.send:
			b, err := json.Marshal(m)
			if err != nil {
				c.kill("write_error", websocket.CloseInternalServerErr, "")
				return
			}
			_ = c.ws.SetWriteDeadline(time.Now().Add(cfg.WriteWait))
			if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
				c.kill("write_error", websocket.CloseNormalClosure, "")
				return
			}
		case <-ping.C:
			_ = c.ws.SetWriteDeadline(time.Now().Add(cfg.WriteWait))
			if err := c.ws.WriteMessage(websocket.PingMessage, nil); err != nil {
				c.kill("write_error", websocket.CloseNormalClosure, "")
				return
			}
		case <-c.closed:
			if c.reason != "write_error" && c.reason != "too_large" {
				_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(c.closeCode, c.closeText), time.Now().Add(time.Second))
			}
			return
		}
	}
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}
