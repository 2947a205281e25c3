//go:build containers

package composetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// loadEvery is the pace of the background load: one upload and one
// question each tick, at most loadInFlight commands running.
const (
	loadEvery    = 2 * time.Second
	loadInFlight = 8
)

// lingerAfterLoad is how long the load's WebSocket stays open after its
// last answer, so that a late duplicate still arrives and is counted.
const lingerAfterLoad = 5 * time.Second

// load uploads documents and asks questions through the published ports
// while faults happen, and records every outcome. Questions go over one
// long-lived chat WebSocket (a new one after the edge drops it) that
// records every frame, so an answer delivered twice is seen even after
// its first done.
type load struct {
	s       *stack
	dir     string
	stop    chan struct{}
	wg      sync.WaitGroup
	readers sync.WaitGroup

	mu       sync.Mutex
	windows  map[string][][2]time.Time // service -> when it was down
	docs     []string                  // ids of documents that got a 202
	rejected []attempt                 // uploads without a 202
	asks     []attempt
	conn     *websocket.Conn    // nil: dial on the next ask
	waiting  map[string]waiter  // ask id -> its outcome channel
	frames   map[string][]frame // ask id -> every frame received for it
}

// waiter is an ask in flight on conn.
type waiter struct {
	conn *websocket.Conn
	out  chan string
}

type attempt struct {
	start, end time.Time
	err        error
	out        string
}

var acceptedRE = regexp.MustCompile(`\t(src-[0-9a-f]+)\tv\d+\taccepted`)

func (s *stack) startLoad(ctx context.Context, dir string) *load {
	l := &load{s: s, dir: dir, stop: make(chan struct{}), windows: map[string][][2]time.Time{},
		waiting: map[string]waiter{}, frames: map[string][]frame{}}
	sem := make(chan struct{}, loadInFlight)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		tick := time.NewTicker(loadEvery)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-l.stop:
				return
			case <-tick.C:
			}
			for _, f := range []func(int){l.upload, l.ask} {
				select {
				case sem <- struct{}{}:
				case <-l.stop:
					return
				}
				l.wg.Add(1)
				go func() {
					defer l.wg.Done()
					defer func() { <-sem }()
					f(i)
				}()
			}
		}
	}()
	return l
}

func (l *load) upload(i int) {
	d := filepath.Join(l.dir, fmt.Sprint(i))
	a := attempt{start: time.Now()}
	// Not write: t.Fatal must not run outside the test's goroutine.
	if err := os.MkdirAll(d, 0o755); err != nil {
		a.err = err
	} else {
		a.err = os.WriteFile(filepath.Join(d, "load.txt"), []byte(fmt.Sprintf("Load document %d: the quartz%d gauge reads %d units.\n", i, i, i*7)), 0o644)
	}
	if a.err != nil {
		l.mu.Lock()
		l.rejected = append(l.rejected, a)
		l.mu.Unlock()
		return
	}
	a.out, a.err = l.s.run(context.Background(), l.s.cli, "ingest", d, "--server", l.s.ingest, "--api-key", l.s.keyAcme, "--timeout", "30s")
	a.end = time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if m := acceptedRE.FindStringSubmatch(a.out); m != nil {
		l.docs = append(l.docs, m[1])
	} else {
		l.rejected = append(l.rejected, a)
	}
}

// ask asks question i on the load's chat connection and waits for its
// done (a.err nil, a.out "done <finish_reason>"), a terminal error, the
// connection's end or answerBound.
func (l *load) ask(i int) {
	id := fmt.Sprintf("a%d", i)
	out := make(chan string, 1)
	a := attempt{start: time.Now()}
	a.err = l.send(id, fmt.Sprintf("What does the quartz%d gauge read?", i), out)
	if a.err == nil {
		select {
		case a.out = <-out:
			if !strings.HasPrefix(a.out, "done ") {
				a.err = fmt.Errorf("%s", a.out)
			}
		case <-time.After(answerBound):
			a.err = fmt.Errorf("no done within %v", answerBound)
		}
	}
	a.end = time.Now()
	l.mu.Lock()
	delete(l.waiting, id)
	l.asks = append(l.asks, a)
	l.mu.Unlock()
}

// send writes an ask on the current connection, dialing one if there is
// none, and registers out for its outcome.
func (l *load) send(id, question string, out chan string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		h := http.Header{"Authorization": {"Bearer " + l.s.keyAcme}}
		d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, Subprotocols: []string{"tributary.v1"}}
		conn, resp, err := d.Dial(strings.Replace(l.s.edge, "http://", "ws://", 1)+"/v1/chat", h)
		if err != nil {
			if resp != nil {
				resp.Body.Close()
			}
			return fmt.Errorf("connect: %w", err)
		}
		l.conn = conn
		l.readers.Add(1)
		go l.read(conn)
	}
	l.waiting[id] = waiter{conn: l.conn, out: out}
	_ = l.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := l.conn.WriteJSON(map[string]string{"type": "ask", "id": id, "question": question}); err != nil {
		delete(l.waiting, id)
		l.conn.Close()
		l.conn = nil
		return fmt.Errorf("send: %w", err)
	}
	return nil
}

// read records every frame of conn by ask id and hands each ask its
// outcome: done, an error after which no done follows, or the
// connection's end.
func (l *load) read(conn *websocket.Conn) {
	defer l.readers.Done()
	for {
		var f frame
		err := conn.ReadJSON(&f)
		l.mu.Lock()
		if err != nil {
			if l.conn == conn {
				l.conn = nil
			}
			for id, w := range l.waiting {
				if w.conn == conn {
					w.out <- "connection lost: " + err.Error()
					delete(l.waiting, id)
				}
			}
			l.mu.Unlock()
			conn.Close()
			return
		}
		l.frames[f.ID] = append(l.frames[f.ID], f)
		if w, ok := l.waiting[f.ID]; ok {
			switch {
			case f.Type == "done":
				w.out <- "done " + f.FinishReason
				delete(l.waiting, f.ID)
			case f.Type == "error" && f.Code != "timeout": // only timeout is followed by done
				w.out <- "error " + f.Code
				delete(l.waiting, f.ID)
			}
		}
		l.mu.Unlock()
	}
}

// down records that svc was down (killed, not yet healthy) from start to
// end: a request to it that overlaps that window may fail.
func (l *load) down(svc string, start, end time.Time) {
	l.mu.Lock()
	l.windows[svc] = append(l.windows[svc], [2]time.Time{start, end})
	l.mu.Unlock()
}

func (l *load) overlapsDown(a attempt, svcs ...string) bool {
	for _, svc := range svcs {
		for _, w := range l.windows[svc] {
			if a.start.Before(w[1]) && a.end.After(w[0]) {
				return true
			}
		}
	}
	return false
}

// stopAndCheck ends the load and checks it: every question finished
// within answerBound, except those the edge could not take (it or the
// broker was down); no answer delivered twice; uploads refused only while
// ingest or the broker was down; every 202'd document indexed, once.
func (l *load) stopAndCheck(ctx context.Context) {
	t := l.s.t
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	// Every ask has ended; late duplicates still arrive on the open
	// connection until it is closed.
	time.Sleep(lingerAfterLoad)
	l.mu.Lock()
	if l.conn != nil {
		l.conn.Close()
	}
	l.mu.Unlock()
	l.readers.Wait()
	for id, frames := range l.frames {
		if err := deliveredOnce(frames); err != nil {
			t.Errorf("ask %s delivered more than once: %v", id, err)
		}
	}
	if err := oneAskPerRequest(l.frames); err != nil {
		t.Error(err)
	}
	var frames int
	for _, f := range l.frames {
		frames += len(f)
	}
	var done, excused int
	var slowest time.Duration
	for _, a := range l.asks {
		d := a.end.Sub(a.start)
		slowest = max(slowest, d)
		switch {
		case a.err == nil:
			done++
		case l.overlapsDown(a, "edge", "broker"):
			excused++
		default:
			t.Errorf("question asked at %s did not finish within %v (took %v): %v\n%s", a.start.Format(time.TimeOnly), answerBound, d.Round(time.Millisecond), a.err, a.out)
		}
	}
	for _, a := range l.rejected {
		if !l.overlapsDown(a, "ingest", "broker") {
			t.Errorf("upload at %s refused while ingest and the broker were up: %v\n%s", a.start.Format(time.TimeOnly), a.err, a.out)
		}
	}
	deadline := time.Now().Add(answerBound)
	pending := append([]string{}, l.docs...)
	for len(pending) > 0 && time.Now().Before(deadline) {
		var still []string
		for _, id := range pending {
			if !l.indexed(ctx, id) {
				still = append(still, id)
			}
		}
		pending = still
		if len(pending) > 0 {
			time.Sleep(time.Second)
		}
	}
	if len(pending) > 0 {
		t.Errorf("%d of %d accepted documents not indexed %v after the load: %v", len(pending), len(l.docs), answerBound, pending)
	}
	if err := l.indexedOnce(ctx); err != nil {
		t.Error(err)
	}
	t.Logf("load: %d questions, %d done (slowest %v), %d not taken while edge or broker was down, %d frames checked for duplicates; %d uploads accepted and indexed, %d refused while ingest or broker was down",
		len(l.asks), done, slowest.Round(time.Millisecond), excused, frames, len(l.docs)-len(pending), len(l.rejected))
}

// indexed reports whether document id is indexed, from GET
// /v1/documents/{id} of the ingest container.
func (l *load) indexed(ctx context.Context, id string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.s.ingest+"/v1/documents/"+id, nil)
	if err != nil {
		return false
	}
	req.Header.Set("Authorization", "Bearer "+l.s.keyAcme)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var info struct {
		Status string `json:"status"`
	}
	return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&info) == nil && info.Status == "indexed"
}

// indexedOnce checks that each accepted document is in the vector store
// once: a load document is one chunk, so a search restricted to a batch
// of them must return each exactly once. A chunk indexed again under a
// new id (a replayed ingest or embed that made new chunk ids) would come
// back twice.
func (l *load) indexedOnce(ctx context.Context) error {
	const batch = 10
	var problems []string
	for from := 0; from < len(l.docs); from += batch {
		ids := l.docs[from:min(from+batch, len(l.docs))]
		body, _ := json.Marshal(map[string]any{"query": "What does the quartz gauge read in units?", "top_k": 50,
			"filter": map[string]any{"document_ids": ids}})
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.s.edge+"/v1/search", bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+l.s.keyAcme)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("search: %w", err)
		}
		var res struct {
			Results []struct {
				DocumentID string `json:"document_id"`
				ChunkID    string `json:"chunk_id"`
			} `json:"results"`
		}
		err = json.NewDecoder(resp.Body).Decode(&res)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil {
			return fmt.Errorf("search: %s: %v", resp.Status, err)
		}
		chunks := map[string][]string{}
		for _, r := range res.Results {
			chunks[r.DocumentID] = append(chunks[r.DocumentID], r.ChunkID)
		}
		for _, id := range ids {
			if len(chunks[id]) != 1 {
				problems = append(problems, fmt.Sprintf("%s: chunks %v", id, chunks[id]))
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("accepted documents not indexed exactly once (each is one chunk): %s", strings.Join(problems, "; "))
	}
	return nil
}
