package docparse

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// A goroutine cannot be stopped from outside, and the PDF library has loops
// that never check a context (a trailer whose /Prev points at its own xref
// spins forever). So a Pool parses documents in child processes: the running
// binary re-executed, which can be killed at the deadline and runs under
// CPU-time and memory rlimits in case the parent cannot kill it. A child
// serves parses one after another until it is killed or closed, so the
// start-up cost (milliseconds, far more under the race detector) is paid
// once per child, not per document.

// childEnv marks a process as a parse child; its value carries the child's
// memory limit ("mem=BYTES").
const childEnv = "TRIBUTARY_DOCPARSE_CHILD"

// childGuardArg is the one argument a child gets. RunChild ignores it; a
// binary that lacks the RunChild hook sees either an unknown flag (a main
// with flags exits) or, for a test binary, a pattern that runs no test, so a
// missing hook fails the probe in NewPool instead of running the program.
const childGuardArg = "-test.run=^$"

// Pool defaults.
const (
	// DefaultMaxMemory is a child's default memory limit (heap and other
	// private writable memory, RLIMIT_DATA).
	DefaultMaxMemory = 2 << 30
	// probeTimeout bounds NewPool's check that the binary serves children.
	probeTimeout = 30 * time.Second
	// stderrLimit is how much of a child's stderr is kept for its error.
	stderrLimit = 8 << 10
)

// PoolOptions configure a Pool. Zero fields take the documented defaults.
type PoolOptions struct {
	// Workers is the most child processes parsing at once; further parses
	// wait for a free slot (or their context). Default GOMAXPROCS.
	Workers int
	// MaxMemory bounds each child's memory in bytes: the child's Go memory
	// limit is set below it and the kernel refuses allocations past it
	// (RLIMIT_DATA). A parse that needs more fails with ErrTooLarge.
	// Default DefaultMaxMemory.
	MaxMemory int64
	// Executable is the binary to run as the child. Default: the running
	// binary (os.Executable). It must call RunChild first thing in main (in
	// a test binary, in TestMain).
	Executable string
}

// Pool parses documents in child processes, at most Workers at once. A
// parse that passes Limits.Timeout (or whose context ends) has its child
// killed and reaped before Parse returns; a child also ends itself when one
// parse uses more CPU time than the timeout (RLIMIT_CPU), and the kernel
// kills children whose parent dies. So no parse outlives its request. Pool is
// safe for concurrent use; Close ends its idle children.
type Pool struct {
	exe     string
	slots   chan struct{}
	idle    chan *worker
	mem     int64
	strict  bool          // tests: children neither recover panics nor stop at their own deadline
	started func(pid int) // tests: observes the child of each parse
}

// NewPool returns a Pool and checks, by parsing a short text in a child,
// that the binary serves parse children. That child stays as an idle worker.
func NewPool(ctx context.Context, opts PoolOptions) (*Pool, error) {
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.MaxMemory <= 0 {
		opts.MaxMemory = DefaultMaxMemory
	}
	if opts.MaxMemory < 64<<20 {
		return nil, fmt.Errorf("docparse pool: memory limit %d bytes is below 64 MiB", opts.MaxMemory)
	}
	if opts.Executable == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("docparse pool: %w", err)
		}
		opts.Executable = exe
	}
	p := &Pool{
		exe:   opts.Executable,
		slots: make(chan struct{}, opts.Workers),
		idle:  make(chan *worker, opts.Workers),
		mem:   opts.MaxMemory,
	}
	probe := Input{Data: []byte("probe"), ContentType: "text/plain"}
	d, err := p.Parse(ctx, probe, Limits{Timeout: probeTimeout})
	if err != nil || d.Text() != "probe" {
		p.Close()
		return nil, fmt.Errorf("docparse pool: %s does not serve parse children (it must call docparse.RunChild first in main): %v", p.exe, err)
	}
	return p, nil
}

// Close ends the idle children. Parses still running finish; their
// children end when they return. Close always returns nil.
func (p *Pool) Close() error {
	for {
		select {
		case w := <-p.idle:
			w.close()
		default:
			return nil
		}
	}
}

// Parse detects the format of in and parses it in a child process, with
// the same results as the package-level Parse. It returns ErrTimeout when
// lim.Timeout passes or ctx ends (the child is killed and reaped before
// Parse returns), ErrTooLarge when the child runs out of memory, and an
// error matching ErrUnreadable when the child crashes. Time spent waiting
// for a free worker counts against ctx only.
func (p *Pool) Parse(ctx context.Context, in Input, lim Limits) (Document, error) {
	lim = lim.withDefaults()
	if int64(len(in.Data)) > lim.MaxBytes {
		return Document{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(in.Data), lim.MaxBytes)
	}
	f, err := Detect(in)
	if err != nil {
		return Document{}, err
	}
	return p.parse(ctx, f, in, lim)
}

// childRequest is what the parent sends a child on its stdin.
type childRequest struct {
	Format Format
	Input  Input
	Limits Limits
	Strict bool
}

// childResponse is what a child writes to its stdout.
type childResponse struct {
	Doc     Document
	ErrKind string // key of errorKinds; empty on success
	ErrMsg  string
}

// errorKinds lists the errors a child reports, most specific first.
var errorKinds = []struct {
	name string
	err  error
}{
	{"timeout", ErrTimeout},
	{"notext", ErrNoText},
	{"zipbomb", ErrZipBomb},
	{"toolarge", ErrTooLarge},
	{"unsupported", ErrUnsupportedType},
	{"unreadable", ErrUnreadable},
}

// childError is an error reported by a child: its message, matching the
// sentinel error of its kind.
type childError struct {
	msg  string
	kind error
}

func (e *childError) Error() string { return e.msg }
func (e *childError) Unwrap() error { return e.kind }

// errChildCrashed means a child exited without a response (a runtime crash
// or, in strict mode, a parser panic). It matches ErrUnreadable.
var errChildCrashed = fmt.Errorf("%w: parser crashed", ErrUnreadable)

func (p *Pool) parse(ctx context.Context, f Format, in Input, lim Limits) (Document, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return Document{}, fmt.Errorf("parse %s: waiting for a parser: %w", f, ErrTimeout)
	}
	defer func() { <-p.slots }()

	ctx, cancel := context.WithTimeout(ctx, lim.Timeout)
	defer cancel()
	w, err := p.worker()
	if err != nil {
		return Document{}, fmt.Errorf("parse %s: start parser: %w", f, err)
	}
	if p.started != nil {
		p.started(w.cmd.Process.Pid)
	}
	replies := make(chan reply, 1)
	go func() {
		var r reply
		if r.err = w.enc.Encode(childRequest{Format: f, Input: in, Limits: lim, Strict: p.strict}); r.err == nil {
			r.err = w.dec.Decode(&r.resp)
		}
		replies <- r
	}()
	var r reply
	select {
	case r = <-replies:
	case <-ctx.Done():
		w.kill()
		return Document{}, fmt.Errorf("parse %s: %w", f, ErrTimeout)
	}
	if r.err != nil {
		// The child died mid-parse, or wrote garbage: explain it by how it
		// ended, once it is reaped.
		select {
		case <-w.exited:
			w.kill() // closes its pipe
		case <-time.After(time.Second):
			w.kill()
			return Document{}, fmt.Errorf("parse %s: %w: bad response from parser: %v", f, errChildCrashed, r.err)
		}
		return Document{}, childFailure(f, w.waitErr, w.stderr.String(), p.mem)
	}
	resp := r.resp
	if resp.ErrKind == "timeout" {
		// The child's own timer fired; a parser goroutine may still run
		// in it (the child exits after answering).
		w.kill()
	} else {
		p.release(w)
	}
	if resp.ErrKind != "" {
		for _, k := range errorKinds {
			if k.name == resp.ErrKind {
				return Document{}, &childError{msg: resp.ErrMsg, kind: k.err}
			}
		}
		return Document{}, &childError{msg: resp.ErrMsg, kind: ErrUnreadable}
	}
	return resp.Doc, nil
}

// reply is a child's answer to one request, or why there is none.
type reply struct {
	resp childResponse
	err  error
}

// worker returns an idle child that is still running, or starts one.
func (p *Pool) worker() (*worker, error) {
	for {
		select {
		case w := <-p.idle:
			select {
			case <-w.exited:
				w.kill() // died while idle (killed from outside): close its pipe
				continue
			default:
				return w, nil
			}
		default:
			return p.startWorker()
		}
	}
}

// release returns w to the idle workers, or ends it when they are full.
func (p *Pool) release(w *worker) {
	select {
	case p.idle <- w:
	default:
		w.close()
	}
}

// worker is one child process serving parses over its stdin and stdout.
type worker struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	stdout  *os.File // read end of the child's stdout
	enc     *gob.Encoder
	dec     *gob.Decoder
	stderr  *prefixBuffer
	exited  chan struct{} // closed once the child is reaped
	waitErr error         // how it ended; read after exited is closed
}

func (p *Pool) startWorker() (*worker, error) {
	cmd := exec.Command(p.exe, childGuardArg)
	// GOMAXPROCS=1 keeps one child to about one core. The environment is
	// otherwise empty: a parser needs no credentials.
	cmd.Env = []string{childEnv + "=mem=" + strconv.FormatInt(p.mem, 10), "GOMAXPROCS=1"}
	if dir := os.Getenv("GOCOVERDIR"); dir != "" {
		cmd.Env = append(cmd.Env, "GOCOVERDIR="+dir)
	}
	w := &worker{cmd: cmd, stderr: &prefixBuffer{max: stderrLimit}, exited: make(chan struct{})}
	cmd.Stderr = w.stderr
	cmd.SysProcAttr = childProcAttr()
	cmd.WaitDelay = time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	// An os.Pipe rather than StdoutPipe: Wait, which runs from the start,
	// would close StdoutPipe's end before a last response is read.
	stdout, child, err := os.Pipe()
	if err != nil {
		_ = stdin.Close()
		return nil, err
	}
	cmd.Stdout = child
	err = cmd.Start()
	_ = child.Close()
	if err != nil {
		_ = stdin.Close()
		_ = stdout.Close()
		return nil, err
	}
	w.stdin, w.stdout, w.enc, w.dec = stdin, stdout, gob.NewEncoder(stdin), gob.NewDecoder(stdout)
	go func() {
		w.waitErr = cmd.Wait()
		close(w.exited)
	}()
	return w, nil
}

// kill ends the child at once, waits until it is reaped and closes its
// pipe.
func (w *worker) kill() {
	_ = w.cmd.Process.Kill()
	<-w.exited
	_ = w.stdout.Close()
}

// close asks the child to exit (end of its input) without waiting.
func (w *worker) close() {
	_ = w.stdin.Close()
	_ = w.stdout.Close()
}

// childFailure explains a child that exited without a response.
func childFailure(f Format, werr error, stderr string, mem int64) error {
	if strings.Contains(stderr, "out of memory") || strings.Contains(stderr, "cannot allocate memory") {
		return fmt.Errorf("parse %s: %w: parsing needs more than %d bytes of memory", f, ErrTooLarge, mem)
	}
	var ee *exec.ExitError
	if errors.As(werr, &ee) && killedByCPULimit(ee) {
		return fmt.Errorf("parse %s: %w (cpu time)", f, ErrTimeout)
	}
	return fmt.Errorf("parse %s: %w: %v: %s", f, errChildCrashed, werr, firstLine(stderr))
}

// firstLine returns the first non-empty line of s, at most 200 bytes: the
// panic or fatal error, without the stack.
func firstLine(s string) string {
	for l := range strings.Lines(s) {
		if l = strings.TrimSpace(l); l != "" {
			if len(l) > 200 {
				l = l[:200]
			}
			return l
		}
	}
	return ""
}

// prefixBuffer keeps the first max bytes written to it.
type prefixBuffer struct {
	buf bytes.Buffer
	max int
}

func (b *prefixBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (b *prefixBuffer) String() string { return b.buf.String() }

// RunChild serves parses when this process was started by a Pool, and
// reports whether it was: then the caller must exit with code at once.
// Call it first thing in main, and in TestMain of every test package that
// parses through a Pool:
//
//	if code, ok := docparse.RunChild(); ok {
//		os.Exit(code)
//	}
func RunChild() (code int, ok bool) {
	spec, ok := os.LookupEnv(childEnv)
	if !ok {
		return 0, false
	}
	// Responses go to the real stdout; anything else printed there would
	// corrupt them.
	out := os.Stdout
	os.Stdout = os.Stderr
	if err := serveChild(spec, os.Stdin, out); err != nil {
		fmt.Fprintf(os.Stderr, "docparse child: %v\n", err)
		return 2, true
	}
	return 0, true
}

// exitCPULimit is a child's exit code when a parse used up its CPU time.
const exitCPULimit = 3

// serveChild applies the memory limit in spec ("mem=BYTES"), then answers
// requests from r on w until r ends.
func serveChild(spec string, r io.Reader, w io.Writer) error {
	var mem int64
	for field := range strings.FieldsSeq(spec) {
		if v, ok := strings.CutPrefix(field, "mem="); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				return fmt.Errorf("bad limit %q", field)
			}
			mem = n
		}
	}
	if mem == 0 {
		return fmt.Errorf("limits %q lack mem", spec)
	}
	// The Go runtime collects harder as the heap nears its limit; the
	// kernel's limit sits above it for what the runtime does not count.
	debug.SetMemoryLimit(mem / 4 * 3)
	if err := setMemoryLimit(mem); err != nil {
		return err
	}
	stop, err := exitOnCPULimit()
	if err != nil {
		return err
	}
	defer stop()
	dec, enc := gob.NewDecoder(r), gob.NewEncoder(w)
	for {
		var req childRequest
		if err := dec.Decode(&req); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("read request: %w", err)
		}
		lim := req.Limits.withDefaults()
		// The parent kills this process at the deadline; the CPU limit is
		// the backstop should it fail to.
		if err := limitCPU(lim.Timeout + time.Second); err != nil {
			return err
		}
		var (
			doc Document
			err error
		)
		if req.Strict {
			doc, err = parseFormatStrict(req.Format, req.Input, lim)
		} else {
			doc, err = parseAs(context.Background(), req.Format, req.Input, lim)
		}
		var resp childResponse
		if err != nil {
			resp.ErrKind, resp.ErrMsg = "unreadable", err.Error()
			for _, k := range errorKinds {
				if errors.Is(err, k.err) {
					resp.ErrKind = k.name
					break
				}
			}
		} else {
			resp.Doc = doc
		}
		if err := enc.Encode(resp); err != nil {
			return fmt.Errorf("write response: %w", err)
		}
		if resp.ErrKind == "timeout" {
			return nil // an abandoned parse may still be running here
		}
	}
}

// parseFormatStrict parses in as f without recovering panics and without a
// deadline of its own, so that fuzzing through a Pool sees a panic as a
// crash and a hang as the Pool's timeout.
func parseFormatStrict(f Format, in Input, lim Limits) (Document, error) {
	doc, err := parseFormat(context.Background(), f, in, lim)
	if err != nil {
		return Document{}, fmt.Errorf("parse %s: %w", f, err)
	}
	doc.Format = f
	if len(doc.Blocks) == 0 {
		return Document{}, fmt.Errorf("parse %s: %w", f, ErrNoText)
	}
	return doc, nil
}
