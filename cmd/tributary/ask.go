package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// chatSubprotocol is the edge's WebSocket subprotocol.
const chatSubprotocol = "tributary.v1"

// chatMessage is one server message of the /v1/chat protocol.
type chatMessage struct {
	Type         string         `json:"type"`
	ID           string         `json:"id"`
	RequestID    string         `json:"request_id"`
	Seq          int            `json:"seq"`
	Text         string         `json:"text"`
	Citations    []chatCitation `json:"citations"`
	FinishReason string         `json:"finish_reason"`
	Code         string         `json:"code"`
	Message      string         `json:"message"`
	RetryAfterMS int64          `json:"retry_after_ms"`
}

// finalErrors are the error codes after which no done follows: the ask
// was not taken (docs/edge.md, "Writing a client").
var finalErrors = map[string]bool{
	"rate_limited": true, "unavailable": true, "too_many_requests": true,
	"duplicate_id": true, "invalid_request": true, "bad_message": true,
}

// chatCitation is one source of an answer; N is the number the answer
// text's [n] markers use for it.
type chatCitation struct {
	N          int     `json:"n"`
	DocumentID string  `json:"document_id"`
	ChunkID    string  `json:"chunk_id"`
	Title      string  `json:"title"`
	Score      float64 `json:"score"`
	Snippet    string  `json:"snippet"`
	Page       int     `json:"page,omitempty"`
}

// askResult is everything one question got back.
type askResult struct {
	RequestID    string
	Seqs         []int // seq of every token, in arrival order
	Text         string
	Citations    []chatCitation
	FinishReason string
	Code         string // the done message's code (a refusal's reason)
	Errors       []chatMessage
	// FirstToken is the time from sending the ask to the first token
	// (zero without tokens).
	FirstToken time.Duration
}

// askRequest is one question to ask.
type askRequest struct {
	Server   string // base URL: http(s)://host:port
	APIKey   string
	Question string
	TopK     int
}

// chatURL turns a server base URL into the chat WebSocket URL.
func chatURL(server string) (string, error) {
	u, err := url.Parse(strings.TrimRight(server, "/"))
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("bad server URL %q", server)
	}
	switch u.Scheme {
	case "http", "ws":
		u.Scheme = "ws"
	case "https", "wss":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("bad server URL %q: want http(s)://host:port", server)
	}
	u.Path = strings.TrimRight(u.Path, "/") + "/v1/chat"
	return u.String(), nil
}

// ask opens a chat connection, asks one question and reads until done,
// calling onToken with each token's text as it arrives (may be nil).
func ask(ctx context.Context, r askRequest, onToken func(string)) (askResult, error) {
	var res askResult
	u, err := chatURL(r.Server)
	if err != nil {
		return res, err
	}
	h := http.Header{}
	h.Set("Authorization", "Bearer "+r.APIKey)
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, Subprotocols: []string{chatSubprotocol}}
	conn, resp, err := d.DialContext(ctx, u, h)
	if err != nil {
		if resp != nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			_ = resp.Body.Close()
			return res, fmt.Errorf("connect %s: %s: %s", u, resp.Status, strings.TrimSpace(string(body)))
		}
		return res, fmt.Errorf("connect %s: %w", u, err)
	}
	defer conn.Close()
	// Unblock the read when ctx ends.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
	defer stop()

	msg := map[string]any{"type": "ask", "id": "q1", "question": r.Question}
	if r.TopK > 0 {
		msg["top_k"] = r.TopK
	}
	start := time.Now()
	if err := conn.WriteJSON(msg); err != nil {
		return res, fmt.Errorf("send question: %w", err)
	}
	var text strings.Builder
	for {
		var m chatMessage
		if err := conn.ReadJSON(&m); err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			return res, fmt.Errorf("read answer: %w", err)
		}
		if m.RequestID != "" {
			res.RequestID = m.RequestID
		}
		switch m.Type {
		case "token":
			if len(res.Seqs) == 0 {
				res.FirstToken = time.Since(start)
			}
			res.Seqs = append(res.Seqs, m.Seq)
			text.WriteString(m.Text)
			if onToken != nil {
				onToken(m.Text)
			}
		case "citations":
			res.Citations = m.Citations
		case "error":
			if !finalErrors[m.Code] {
				res.Errors = append(res.Errors, m)
				continue
			}
			if m.Code != "rate_limited" && m.Code != "unavailable" {
				return res, fmt.Errorf("ask refused: %s: %s", m.Code, m.Message)
			}
			// Not asked: wait as the server says (unavailable: a moment)
			// and ask again on the same connection.
			wait := max(time.Duration(m.RetryAfterMS)*time.Millisecond, 100*time.Millisecond)
			select {
			case <-ctx.Done():
				return res, fmt.Errorf("ask not taken (%s) before the deadline: %w", m.Code, ctx.Err())
			case <-time.After(wait):
			}
			start = time.Now()
			if err := conn.WriteJSON(msg); err != nil {
				return res, fmt.Errorf("send question: %w", err)
			}
		case "done":
			res.Text = text.String()
			res.FinishReason = m.FinishReason
			res.Code = m.Code
			_ = conn.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			return res, nil
		}
	}
}

// runAsk implements `tributary ask "question" --server URL`.
func runAsk(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("ask", flag.ContinueOnError)
	fset.SetOutput(stderr)
	server := fset.String("server", envOr("TRIBUTARY_SERVER", "http://127.0.0.1:8080"), "base URL of the edge or of `tributary dev` (env TRIBUTARY_SERVER)")
	key := fset.String("api-key", os.Getenv("TRIBUTARY_API_KEY"), "API key (env TRIBUTARY_API_KEY)")
	topK := fset.Int("top-k", 0, "sources to retrieve (0: the server's default)")
	timeout := fset.Duration("timeout", 2*time.Minute, "longest wait for the whole answer")
	fset.Usage = func() {
		fmt.Fprintln(stderr, `usage: tributary ask "question" [--server URL] [--api-key KEY] [--top-k N]`)
		fset.PrintDefaults()
	}
	// Allow the question before or after the flags.
	question, err := parseInterspersed(fset, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	q := strings.TrimSpace(strings.Join(question, " "))
	if q == "" || *key == "" || *topK < 0 {
		fset.Usage()
		if *key == "" {
			fmt.Fprintln(stderr, "ask: an API key is required (--api-key or TRIBUTARY_API_KEY)")
		}
		return errUsage
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	res, err := ask(ctx, askRequest{Server: *server, APIKey: *key, Question: q, TopK: *topK}, func(t string) {
		fmt.Fprint(stdout, t)
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	printAnswerTail(stdout, res)
	for _, e := range res.Errors {
		fmt.Fprintf(stderr, "error %s: %s\n", e.Code, e.Message)
	}
	return nil
}

// printAnswerTail prints an answer's sources and finish reason.
func printAnswerTail(w io.Writer, res askResult) {
	if len(res.Citations) > 0 {
		fmt.Fprintln(w, "\nSources:")
		for i, c := range res.Citations {
			title := c.Title
			if title == "" {
				title = c.DocumentID
			}
			n := c.N
			if n == 0 { // an answer whose producer did not number its citations
				n = i + 1
			}
			fmt.Fprintf(w, "  [%d] %s (document %s, score %.3f)\n", n, title, c.DocumentID, c.Score)
			if s := strings.Join(strings.Fields(c.Snippet), " "); s != "" {
				fmt.Fprintf(w, "      %s\n", clipRunes(s, 160))
			}
		}
	}
	reason := res.FinishReason
	if res.Code != "" {
		reason += " (" + res.Code + ")"
	}
	fmt.Fprintf(w, "\n[%s · request %s]\n", reason, res.RequestID)
}

// clipRunes shortens s to at most n runes, marking the cut with "…".
func clipRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
