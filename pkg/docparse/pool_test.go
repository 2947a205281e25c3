package docparse

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// prevLoopPDF is 553 bytes whose trailer's /Prev points at its own xref
// table: the PDF library follows that chain forever.
func prevLoopPDF(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/xref-prev-self.pdf")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// runawayPDF is prevLoopPDF with a comment inside its /Prev entry, which
// the PDF lexer skips but checkXrefChain does not read: the library loops,
// re-reading the file, until reads fail.
func runawayPDF(t testing.TB) []byte {
	return bytes.Replace(prevLoopPDF(t), []byte("/Prev 360"), []byte("/Prev %x\n360"), 1)
}

// newStrictPool returns a Pool whose children run parses with no deadline
// of their own, so that only the Pool's kill (or the CPU limit) stops them.
func newStrictPool(t testing.TB, opts PoolOptions) *Pool {
	p := newTestPool(t, opts)
	p.strict = true
	return p
}

func newTestPool(t testing.TB, opts PoolOptions) *Pool {
	t.Helper()
	p, err := NewPool(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// cpuTime returns this process's user+system CPU time (not its children's).
func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestPoolMatchesParse(t *testing.T) {
	p := newTestPool(t, PoolOptions{Workers: 2})
	inputs := []Input{
		{Data: makePDF("Report", true, pdfPage{"Hello world.", "", "Next."}, pdfPage{"Two"}), FileName: "r.pdf"},
		{Data: []byte("# Guide\n\nIntro.\n\n## Setup\n\nRun it.\n"), FileName: "g.md"},
		{Data: []byte("name,city\nAlice,Paris\n"), ContentType: "text/csv"},
	}
	for _, in := range inputs {
		want, err := Parse(t.Context(), in, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.Parse(t.Context(), in, Limits{})
		if err != nil {
			t.Fatalf("Pool.Parse(%q): %v", in.FileName+in.ContentType, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Pool.Parse(%q) = %+v, want %+v", in.FileName+in.ContentType, got, want)
		}
	}
	// Typed errors cross the process boundary with their message.
	tests := []struct {
		in   Input
		want error
	}{
		{Input{Data: []byte("{broken\n"), FileName: "x.jsonl"}, ErrUnreadable},
		{Input{Data: []byte(" \n"), ContentType: "text/plain"}, ErrNoText},
		{Input{Data: []byte("%PDF-1.4 garbage"), FileName: "x.pdf"}, ErrUnreadable},
		{Input{Data: []byte("x"), ContentType: "image/png"}, ErrUnsupportedType},
	}
	for _, tt := range tests {
		_, want := Parse(t.Context(), tt.in, Limits{})
		_, err := p.Parse(t.Context(), tt.in, Limits{})
		if !errors.Is(err, tt.want) || err.Error() != want.Error() {
			t.Errorf("Pool.Parse(%q) = %v, want %v (%v)", tt.in.Data, err, want, tt.want)
		}
	}
}

// TestLoopingPDF is the requirement: the 553-byte PDF whose /Prev points
// at its own xref gets ErrUnreadable (422) within the parse limit, in
// process and through a Pool, and the process is idle in the second after.
func TestLoopingPDF(t *testing.T) {
	p := newTestPool(t, PoolOptions{})
	const limit = 2 * time.Second
	for name, parse := range map[string]func(context.Context, Input, Limits) (Document, error){"Parse": Parse, "Pool.Parse": p.Parse} {
		start := time.Now()
		_, err := parse(t.Context(), Input{Data: prevLoopPDF(t), FileName: "loop.pdf"}, Limits{Timeout: limit})
		if !errors.Is(err, ErrUnreadable) || time.Since(start) > limit {
			t.Errorf("%s = %v after %v, want ErrUnreadable within %v", name, err, time.Since(start), limit)
		}
	}
	before := cpuTime(t)
	time.Sleep(time.Second)
	if used := cpuTime(t) - before; used > 150*time.Millisecond {
		t.Errorf("process used %v of CPU in the second after, want idle", used)
	}
}

// TestParseStopsReadingLoops: a loop in the PDF library that the xref check
// misses still stops at the deadline in process, since its reads fail.
func TestParseStopsReadingLoops(t *testing.T) {
	start := time.Now()
	_, err := Parse(t.Context(), Input{Data: runawayPDF(t), FileName: "loop.pdf"}, Limits{Timeout: 500 * time.Millisecond})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Parse = %v, want ErrTimeout", err)
	}
	time.Sleep(100 * time.Millisecond) // the abandoned goroutine's next read fails
	before := cpuTime(t)
	time.Sleep(500 * time.Millisecond)
	if used := cpuTime(t) - before; used > 100*time.Millisecond {
		t.Errorf("process used %v of CPU after Parse returned after %v, want idle", used, time.Since(start))
	}
}

// TestPoolKillsRunawayParse: a child that does not stop by itself is killed
// at the deadline and reaped before Parse returns ErrTimeout, and the
// process is idle in the second after.
func TestPoolKillsRunawayParse(t *testing.T) {
	var mu sync.Mutex
	var pids []int
	p := newStrictPool(t, PoolOptions{Workers: 2})
	p.started = func(pid int) { mu.Lock(); pids = append(pids, pid); mu.Unlock() }
	const limit = 2 * time.Second
	start := time.Now()
	_, err := p.Parse(t.Context(), Input{Data: runawayPDF(t), FileName: "loop.pdf"}, Limits{Timeout: limit})
	took := time.Since(start)
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, ErrUnreadable) {
		t.Fatalf("Parse = %v, want ErrTimeout", err)
	}
	if took > limit+500*time.Millisecond {
		t.Errorf("Parse returned after %v, limit %v", took, limit)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(pids) != 1 {
		t.Fatalf("ran %d parses, want 1", len(pids))
	}
	if err := syscall.Kill(pids[0], 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("child %d still exists after Parse returned (kill 0: %v)", pids[0], err)
	}
	before := cpuTime(t)
	time.Sleep(time.Second)
	if used := cpuTime(t) - before; used > 150*time.Millisecond {
		t.Errorf("process used %v of CPU in the second after the timeout, want idle", used)
	}
}

// TestChildCPULimit checks the backstop: a child whose parent does not kill
// it ends itself at its CPU limit (the parse's timeout plus a second).
func TestChildCPULimit(t *testing.T) {
	var req bytes.Buffer
	// Strict mode parses with no deadline, so the loop holds the child.
	if err := gob.NewEncoder(&req).Encode(childRequest{Format: FormatPDF, Input: Input{Data: runawayPDF(t)}, Limits: Limits{Timeout: time.Millisecond}, Strict: true}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], childGuardArg)
	cmd.Env = []string{childEnv + "=mem=1073741824", "GOMAXPROCS=1"}
	cmd.Stdin = &req
	err := cmd.Run()
	var ee *exec.ExitError
	if ctx.Err() != nil || !errors.As(err, &ee) || !killedByCPULimit(ee) {
		t.Fatalf("child ran to %v (ctx %v), want ended at its CPU limit", err, ctx.Err())
	}
}

// TestPoolReusesChildren checks that a child serves one parse after
// another, and that a child that timed out is not reused.
func TestPoolReusesChildren(t *testing.T) {
	p := newTestPool(t, PoolOptions{Workers: 1})
	var pids []int
	p.started = func(pid int) { pids = append(pids, pid) }
	in := Input{Data: []byte("hello"), ContentType: "text/plain"}
	for range 3 {
		if _, err := p.Parse(t.Context(), in, Limits{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.Parse(t.Context(), Input{Data: runawayPDF(t), FileName: "loop.pdf"}, Limits{Timeout: 300 * time.Millisecond}); !errors.Is(err, ErrTimeout) {
		t.Fatalf("Parse(loop.pdf) = %v, want ErrTimeout", err)
	}
	if _, err := p.Parse(t.Context(), in, Limits{}); err != nil {
		t.Fatal(err)
	}
	if len(pids) != 5 || pids[0] != pids[1] || pids[1] != pids[2] || pids[2] != pids[3] || pids[4] == pids[3] {
		t.Errorf("children of the parses: %v, want the same for the first four and a new one after the timeout", pids)
	}
}

func TestPoolMemoryLimit(t *testing.T) {
	if raceEnabled {
		t.Skip("the race runtime alone outgrows a small memory limit")
	}
	p := newTestPool(t, PoolOptions{Workers: 1, MaxMemory: 256 << 20})
	// Each line is its own block: 8 Mi blocks far outgrow 256 MiB.
	data := bytes.Repeat([]byte("a b\n\n"), 8<<20)
	_, err := p.Parse(t.Context(), Input{Data: data, ContentType: "text/plain"}, Limits{Timeout: 20 * time.Second})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Parse = %v, want ErrTooLarge", err)
	}
}

func TestPoolBoundsWorkers(t *testing.T) {
	p := newStrictPool(t, PoolOptions{Workers: 1})
	var mu sync.Mutex
	spawned := 0
	p.started = func(int) { mu.Lock(); spawned++; mu.Unlock() }
	done := make(chan error, 1)
	go func() {
		_, err := p.Parse(t.Context(), Input{Data: runawayPDF(t), FileName: "loop.pdf"}, Limits{Timeout: 1500 * time.Millisecond})
		done <- err
	}()
	for {
		mu.Lock()
		n := spawned
		mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err := p.Parse(ctx, Input{Data: []byte("hi"), ContentType: "text/plain"}, Limits{})
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "waiting") {
		t.Errorf("second Parse with the only worker busy = %v, want ErrTimeout while waiting", err)
	}
	if err := <-done; !errors.Is(err, ErrTimeout) {
		t.Errorf("first Parse = %v, want ErrTimeout", err)
	}
	if spawned != 1 {
		t.Errorf("ran %d parses, want 1", spawned)
	}
	// The slot is free again.
	if _, err := p.Parse(t.Context(), Input{Data: []byte("hi"), ContentType: "text/plain"}, Limits{}); err != nil {
		t.Errorf("Parse after the slot freed: %v", err)
	}
}

func TestPoolCancel(t *testing.T) {
	p := newStrictPool(t, PoolOptions{})
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := p.Parse(ctx, Input{Data: runawayPDF(t), FileName: "loop.pdf"}, Limits{Timeout: time.Minute})
	if !errors.Is(err, ErrTimeout) || time.Since(start) > 2*time.Second {
		t.Errorf("Parse with a cancelled context = %v after %v, want ErrTimeout at once", err, time.Since(start))
	}
}

func TestNewPoolRefusesBinaryWithoutHook(t *testing.T) {
	exe, err := exec.LookPath("true")
	if err != nil {
		t.Skip("no true(1)")
	}
	if _, err := NewPool(t.Context(), PoolOptions{Executable: exe}); err == nil || !strings.Contains(err.Error(), "RunChild") {
		t.Errorf("NewPool(true) = %v, want an error naming RunChild", err)
	}
	if _, err := NewPool(t.Context(), PoolOptions{MaxMemory: 1 << 20}); err == nil {
		t.Error("NewPool with 1 MiB of memory succeeded")
	}
}

func BenchmarkPoolParse(b *testing.B) {
	p := newTestPool(b, PoolOptions{})
	in := Input{Data: makePDF("Report", true, pdfPage{"Hello world.", "", "Next."}), FileName: "r.pdf"}
	for b.Loop() {
		if _, err := p.Parse(b.Context(), in, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseInProcess(b *testing.B) {
	in := Input{Data: makePDF("Report", true, pdfPage{"Hello world.", "", "Next."}), FileName: "r.pdf"}
	for b.Loop() {
		if _, err := Parse(b.Context(), in, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestCheckXrefChain(t *testing.T) {
	section := func(prev string) string {
		return "xref\n0 1\n0000000000 65535 f \ntrailer\n<< /Size 1" + prev + " >>\n"
	}
	tests := []struct {
		name string
		data string
		loop bool
	}{
		{"no startxref", "%PDF-1.4\n", false},
		{"one section", "%PDF-1.4\n" + section("") + "startxref\n9\n%%EOF", false},
		{"self", "%PDF-1.4\n" + section(" /Prev 9") + "startxref\n9\n%%EOF", true},
		{"chain", "%PDF-1.4\n" + section("") + "startxref\n9\n%%EOF\n" + section(" /Prev 9") + "startxref\n78\n%%EOF", false},
		{"two-cycle", "%PDF-1.4\n" + section(" /Prev 87") + "startxref\n9\n%%EOF\n" + section(" /Prev 9") + "startxref\n87\n%%EOF", true},
		{"stream", "%PDF-1.5\n1 0 obj\n<< /Type /XRef /Prev 9 >>\nstream\nendstream\nstartxref\n9\n%%EOF", true},
		{"offset past end", "%PDF-1.4\nstartxref\n999999999999999999\n%%EOF", false},
	}
	for _, tt := range tests {
		err := checkXrefChain([]byte(tt.data))
		if loop := errors.Is(err, ErrUnreadable); loop != tt.loop {
			t.Errorf("%s: checkXrefChain = %v, want loop %v", tt.name, err, tt.loop)
		}
	}
}

// BenchmarkPoolStart measures starting a child: NewPool starts one and
// parses a probe in it.
func BenchmarkPoolStart(b *testing.B) {
	for b.Loop() {
		p, err := NewPool(b.Context(), PoolOptions{Workers: 1})
		if err != nil {
			b.Fatal(err)
		}
		p.Close()
	}
}

// BenchmarkPoolParseLarge parses 1 MiB of Markdown in a child and in
// process: the difference is the cost of sending input and document.
func BenchmarkPoolParseLarge(b *testing.B) {
	var md strings.Builder
	for i := 0; md.Len() < 1<<20; i++ {
		fmt.Fprintf(&md, "## Section %d\n\nSome text of section %d, long enough to fill a line or two.\n\n", i, i)
	}
	in := Input{Data: []byte(md.String()), FileName: "big.md"}
	p := newTestPool(b, PoolOptions{})
	b.Run("pool", func(b *testing.B) {
		b.SetBytes(int64(len(in.Data)))
		for b.Loop() {
			if _, err := p.Parse(b.Context(), in, Limits{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("in-process", func(b *testing.B) {
		b.SetBytes(int64(len(in.Data)))
		for b.Loop() {
			if _, err := Parse(b.Context(), in, Limits{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
