//go:build containers

package composetest

import (
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
)

// loadEvery is the pace of the background load: one upload and one
// question each tick, at most loadInFlight commands running.
const (
	loadEvery    = 2 * time.Second
	loadInFlight = 8
)

// load uploads documents and asks questions through the published ports
// while faults happen, and records every outcome.
type load struct {
	s    *stack
	dir  string
	stop chan struct{}
	wg   sync.WaitGroup

	mu       sync.Mutex
	windows  map[string][][2]time.Time // service -> when it was down
	docs     []string                  // ids of documents that got a 202
	rejected []attempt                 // uploads without a 202
	asks     []attempt
}

type attempt struct {
	start, end time.Time
	err        error
	out        string
}

var acceptedRE = regexp.MustCompile(`\t(src-[0-9a-f]+)\tv\d+\taccepted`)

func (s *stack) startLoad(ctx context.Context, dir string) *load {
	l := &load{s: s, dir: dir, stop: make(chan struct{}), windows: map[string][][2]time.Time{}}
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

func (l *load) ask(i int) {
	a := attempt{start: time.Now()}
	a.out, a.err = l.s.run(context.Background(), l.s.cli, "ask", fmt.Sprintf("What does the quartz%d gauge read?", i),
		"--server", l.s.edge, "--api-key", l.s.keyAcme, "--timeout", answerBound.String())
	a.end = time.Now()
	l.mu.Lock()
	l.asks = append(l.asks, a)
	l.mu.Unlock()
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
// broker was down); uploads refused only while ingest or the broker was
// down; every 202'd document indexed.
func (l *load) stopAndCheck(ctx context.Context) {
	t := l.s.t
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	var done, excused int
	var slowest time.Duration
	for _, a := range l.asks {
		d := a.end.Sub(a.start)
		slowest = max(slowest, d)
		switch {
		case a.err == nil && strings.Contains(a.out, "· request "):
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
	t.Logf("load: %d questions, %d done (slowest %v), %d not taken while edge or broker was down; %d uploads accepted and indexed, %d refused while ingest or broker was down",
		len(l.asks), done, slowest.Round(time.Millisecond), excused, len(l.docs)-len(pending), len(l.rejected))
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
