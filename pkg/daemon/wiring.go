package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/tributary-rag/tributary/pkg/apikey"
	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
)

// DefaultDrain is how long shutdown waits for open HTTP requests unless a
// service asks for longer (Wiring.Drain).
const DefaultDrain = 10 * time.Second

// Deps are what a service's wiring takes from outside: a service's main
// builds them for that one service (Serve), tributary dev once for every
// service in the process, with a logger and data directory of each's own.
type Deps struct {
	// Brokers are the Kafka bootstrap addresses.
	Brokers []string
	// KafkaSecurity is how the service's Kafka clients authenticate.
	KafkaSecurity kafkatransport.Security
	// Topics names every topic under the deployment's prefix.
	Topics events.Topics
	// Registry takes the service's collectors.
	Registry prometheus.Registerer
	// KafkaMetrics are the Kafka client metrics, registered once per
	// registry.
	KafkaMetrics *kafkatransport.Metrics
	// Logger is the service's logger.
	Logger *slog.Logger
	// Keys are the accepted API keys; never nil.
	Keys *apikey.Set
	// DataDir holds the service's durable state.
	DataDir string
	// QdrantAddr is the host:port of Qdrant's gRPC API.
	QdrantAddr string
	// TracerProvider starts the service's OpenTelemetry spans: one per
	// process, shut down when it exits. Nil or the no-op provider: tracing
	// off.
	TracerProvider trace.TracerProvider
}

// Publisher returns a publisher for events from source, with d's metrics,
// closed when w closes.
func (d Deps) Publisher(w *Wiring, source string, opts ...kafkatransport.PublisherOption) *kafkatransport.Publisher {
	p := kafkatransport.NewPublisher(d.Brokers, append([]kafkatransport.PublisherOption{
		kafkatransport.PublisherSource(source), kafkatransport.PublisherMetrics(d.KafkaMetrics),
		kafkatransport.PublisherSecurity(d.KafkaSecurity), kafkatransport.PublisherTracer(d.TracerProvider)}, opts...)...)
	w.OnClose(p.Close)
	return p
}

// SubscriberOptions returns d's metrics, logger, Kafka security and tracer
// provider as subscriber options, followed by extra.
func (d Deps) SubscriberOptions(extra ...kafkatransport.SubscriberOption) []kafkatransport.SubscriberOption {
	return append([]kafkatransport.SubscriberOption{
		kafkatransport.SubscriberMetrics(d.KafkaMetrics), kafkatransport.SubscriberLogger(d.Logger),
		kafkatransport.SubscriberSecurity(d.KafkaSecurity), kafkatransport.SubscriberTracer(d.TracerProvider)}, extra...)
}

// Wiring collects what services' wire functions build: the run group's
// parts, HTTP routes, readiness checks, the topics they read and write, and
// what to close after the group stops. One Wiring holds one service in its
// own process, or every service in tributary dev. The zero value is not
// ready; use NewWiring. Not safe for concurrent use.
type Wiring struct {
	// Group runs the long-lived parts.
	Group Group

	mux        *http.ServeMux
	checks     []Check
	consumes   []string
	produces   []string
	closers    []func() error
	onShutdown []func()
	drain      time.Duration
	attrs      []any
}

// NewWiring returns an empty Wiring.
func NewWiring() *Wiring {
	return &Wiring{mux: http.NewServeMux()}
}

// Handle serves pattern (http.ServeMux syntax) with h.
func (w *Wiring) Handle(pattern string, h http.Handler) { w.mux.Handle(pattern, h) }

// Routes is every route registered with Handle.
func (w *Wiring) Routes() http.Handler { return w.mux }

// Check adds a readiness check.
func (w *Wiring) Check(c Check) { w.checks = append(w.checks, c) }

// Checks are the readiness checks added so far.
func (w *Wiring) Checks() []Check { return w.checks }

// Topics records the topics a service consumes (created with their
// dead-letter topics) and those it only produces.
func (w *Wiring) Topics(consumes []string, produces ...string) {
	w.consumes = append(w.consumes, consumes...)
	w.produces = append(w.produces, produces...)
}

// TopicSpecs returns the recorded topics to create, with t's settings.
// A topic both consumed and produced is created once, with its DLQ.
func (w *Wiring) TopicSpecs(t TopicFlags) []kafkatransport.TopicSpec {
	var plain []string
	for _, p := range w.produces {
		if !slices.Contains(w.consumes, p) && !slices.Contains(plain, p) {
			plain = append(plain, p)
		}
	}
	return t.Specs(w.consumes, plain...)
}

// Consumes and Produces return the topics recorded so far (copies).
func (w *Wiring) Consumes() []string { return slices.Clone(w.consumes) }

// Produces: see Consumes.
func (w *Wiring) Produces() []string { return slices.Clone(w.produces) }

// TopicNames returns every recorded topic once, consumed first.
func (w *Wiring) TopicNames() []string {
	var names []string
	for _, n := range append(slices.Clone(w.consumes), w.produces...) {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return names
}

// OnClose runs fn when Close is called, in reverse order of
// registration (the last opened closes first).
func (w *Wiring) OnClose(fn func() error) { w.closers = append(w.closers, fn) }

// OnShutdown runs fn when the HTTP server shuts down: Shutdown does not
// close hijacked (WebSocket) connections.
func (w *Wiring) OnShutdown(fn func()) { w.onShutdown = append(w.onShutdown, fn) }

// Describe adds key/value pairs to the "starting" log line of the
// service's own process.
func (w *Wiring) Describe(kv ...any) { w.attrs = append(w.attrs, kv...) }

// Described returns the value last given for key with Describe.
func (w *Wiring) Described(key string) (any, bool) {
	for i := len(w.attrs) - 2; i >= 0; i -= 2 {
		if w.attrs[i] == key {
			return w.attrs[i+1], true
		}
	}
	return nil, false
}

// Drain makes shutdown wait d for open HTTP requests (the longest asked
// for, DefaultDrain when none asks).
func (w *Wiring) Drain(d time.Duration) { w.drain = max(w.drain, d) }

// Serve adds srv to the group, on ln (nil: srv.Addr), with the shutdown
// hooks and drain the services asked for.
func (w *Wiring) Serve(srv *http.Server, ln net.Listener) {
	for _, fn := range w.onShutdown {
		srv.RegisterOnShutdown(fn)
	}
	drain := w.drain
	if drain == 0 {
		drain = DefaultDrain
	}
	w.Group.AddHTTP(srv, ln, drain)
}

// Close closes what the services opened, last first, once.
func (w *Wiring) Close() error {
	var errs []error
	for i := len(w.closers) - 1; i >= 0; i-- {
		if err := w.closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	w.closers = nil
	return errors.Join(errs...)
}

// WireFunc builds one service into w from d.
type WireFunc func(ctx context.Context, w *Wiring, d Deps) error

// Serve runs the service name as its own process from the shared settings
// cfg: it builds the Deps, wires the service with wire, creates its topics
// as t says, serves its routes next to /healthz, /readyz (Kafka and the
// service's own checks) and /metrics on cfg.HTTPAddr, and runs until ctx
// ends or a part fails.
func Serve(ctx context.Context, name string, cfg Config, t TopicFlags, stderr io.Writer, wire WireFunc) error {
	logger := NewLogger(stderr, cfg.LogLevel, name)
	reg := NewRegistry()
	km, err := kafkatransport.NewMetrics(reg)
	if err != nil {
		return fmt.Errorf("kafka metrics: %w", err)
	}
	tp, shutdownTracing, err := cfg.Tracing.Provider(ctx, "tributary-"+name)
	if err != nil {
		return err
	}
	defer func() {
		// After the service stopped: flush the spans not yet exported.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := shutdownTracing(sctx); err != nil {
			logger.Error("tracing shutdown", "error", err.Error())
		}
	}()
	d := Deps{
		Brokers: cfg.KafkaBrokers, KafkaSecurity: cfg.KafkaSecurity, Topics: events.NewTopics(cfg.TopicPrefix), Registry: reg, KafkaMetrics: km,
		Logger: logger, Keys: cfg.APIKeys, DataDir: cfg.DataDir, QdrantAddr: cfg.QdrantAddr, TracerProvider: tp,
	}
	w := NewWiring()
	defer func() {
		// The service has stopped: a close error no longer changes what
		// it did, but an operator should see it.
		if cerr := w.Close(); cerr != nil {
			logger.Error("close", "error", cerr.Error())
		}
	}()
	if err := wire(ctx, w, d); err != nil {
		return err
	}
	if err := t.Provision(ctx, logger, cfg.KafkaBrokers, cfg.KafkaSecurity, w.TopicSpecs(t)...); err != nil {
		return err
	}
	checks := append([]Check{KafkaCheck(cfg.KafkaBrokers, cfg.KafkaSecurity, w.TopicNames()...)}, w.Checks()...)
	w.Serve(NewHTTPServer(cfg.HTTPAddr, NewHTTPHandler(w.Routes(), reg, checks...)), nil)
	logger.Info(name+" starting", append([]any{"http_addr", cfg.HTTPAddr, "kafka_brokers", cfg.KafkaBrokers,
		"topic_prefix", d.Topics.Prefix}, w.attrs...)...)
	return w.Group.Run(ctx, logger)
}

// Settings are a service's own settings, next to the shared Config: its
// main and tributary dev both register them on their flag set, check them
// and wire the service with them, so a new setting is added in one place.
// A *T with Register on the pointer and Check and Wire on T satisfies it.
type Settings interface {
	// Register registers a flag for every setting on fs, with the current
	// values as defaults.
	Register(fs *flag.FlagSet)
	// Check records in p each setting out of range.
	Check(p *Problems)
	// Wire builds the service into w from d.
	Wire(ctx context.Context, w *Wiring, d Deps) error
}

// RunService is the whole of a service's run function: it parses args
// (falling back to getenv) into the shared Config (requiring need), s and
// the topic flags, reports every bad setting at once, and then Serves the
// service.
//
//	func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
//		s := generate.DefaultSettings()
//		return daemon.RunService(ctx, "generate", daemon.NeedKafka, &s, args, getenv, stderr)
//	}
func RunService(ctx context.Context, name string, need Need, s Settings, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := NewFlagSet(name, stderr)
	s.Register(fs)
	var topics TopicFlags
	topics.Register(fs)
	cfg, err := ParseConfig(fs, args, getenv, need)
	if err != nil {
		return err
	}
	var p Problems
	s.Check(&p)
	topics.Check(&p)
	if err := p.Err(); err != nil {
		return err
	}
	return Serve(ctx, name, cfg, topics, stderr, s.Wire)
}
