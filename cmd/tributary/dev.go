package main

import (
	"context"
	"crypto/rand"
	goembed "embed"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/tributary-rag/tributary/pkg/apikey"
	"github.com/tributary-rag/tributary/pkg/broker"
	"github.com/tributary-rag/tributary/pkg/daemon"
	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
	"github.com/tributary-rag/tributary/pkg/vectordb"
	"github.com/tributary-rag/tributary/services/audit"
	"github.com/tributary-rag/tributary/services/edge"
	"github.com/tributary-rag/tributary/services/embed"
	"github.com/tributary-rag/tributary/services/generate"
	"github.com/tributary-rag/tributary/services/ingest"
	"github.com/tributary-rag/tributary/services/moderate"
	"github.com/tributary-rag/tributary/services/retrieve"
)

// sampleCorpus is the small corpus `tributary dev` loads on first start.
//
//go:embed sample/*.md
var sampleCorpus goembed.FS

// Layout of the dev data directory.
const (
	devBrokerDir  = "broker"
	devVectorDir  = "vectors"
	devIngestDir  = "ingest"
	devAuditDir   = "audit"
	devKeyFile    = "api-keys"
	devKafkaUsers = "kafka-users"
	devSampleMark = "sample-loaded"
	// devTenant is the tenant of the generated key and of the sample corpus.
	devTenant = "default"
	// devReplica names the in-process edge replica (its consumer groups).
	devReplica = "dev"
)

// devOptions configure the dev stack.
type devOptions struct {
	// HTTPAddr is the one listen address of every HTTP route.
	HTTPAddr string
	// DataDir holds the broker, vector store, ingest state, audit log and
	// keys.
	DataDir string
	// APIKeys is TRIBUTARY_API_KEYS; empty generates (or reloads) a key.
	APIKeys string
	// TopicPrefix starts every topic name.
	TopicPrefix string
	// LogLevel filters the services' JSON logs on Logs.
	LogLevel slog.Level
	// Logs receives the services' logs.
	Logs io.Writer
	// SkipSample leaves the sample corpus out.
	SkipSample bool
	// Partitions of the topics created at start (default 3).
	Partitions int
	// BrokerFsync makes the broker fsync every write before acknowledging
	// it (see broker.Config.Fsync).
	BrokerFsync bool
	// Services are every service's own settings (nil: the defaults).
	Services *devServices
	// TracerProvider starts every service's spans (nil: tracing off).
	// runDev makes one from the OTEL_* variables.
	TracerProvider trace.TracerProvider
}

// devServices are the settings of every service in the stack. Each
// service owns its settings: dev registers them under the same flag names
// as the service's own binary, and wires each service with its own Wire.
type devServices struct {
	Retrieve retrieve.Settings
	Ingest   ingest.Settings
	Embed    embed.Settings
	Generate generate.Settings
	Moderate moderate.Settings
	Audit    audit.Settings
	Edge     edge.Settings
}

func defaultDevServices() *devServices {
	s := &devServices{
		Retrieve: retrieve.DefaultSettings(),
		Ingest:   ingest.DefaultSettings(),
		Embed:    embed.DefaultSettings(),
		Generate: generate.DefaultSettings(),
		Moderate: moderate.DefaultSettings(),
		Audit:    audit.DefaultSettings().WithVaultEnv(os.Getenv), // VAULT_ADDR switches audit keys to Vault
		Edge:     edge.DefaultSettings(),
	}
	s.Edge.ReplicaID = devReplica
	return s
}

// devService is one service of the stack: its name (logger and errors),
// its data subdirectory (empty: none) and its settings.
type devService struct {
	name     string
	dataDir  string
	settings daemon.Settings
}

// list returns the services in wiring order: retrieve first, as it
// creates the collection the others' answers need.
func (s *devServices) list() []devService {
	return []devService{
		{"retrieve", "", &s.Retrieve},
		{"ingest", devIngestDir, &s.Ingest},
		{"embed", "", &s.Embed},
		{"generate", "", &s.Generate},
		{"moderate", "", &s.Moderate},
		{"audit", devAuditDir, &s.Audit},
		{"edge", "", &s.Edge},
	}
}

// devStack is the whole suite in one process: start it with startDev, run
// it with Run.
type devStack struct {
	opts      devOptions
	logger    *slog.Logger
	ln        net.Listener
	key       string // the generated key, empty when APIKeys was given
	wiring    *daemon.Wiring
	ingestSvc ingest.Service
	backend   string
	brokerAdr string
	qdrantAdr string
}

// Addr is the address every HTTP route is served on.
func (d *devStack) Addr() string { return d.ln.Addr().String() }

// runDev implements `tributary dev`.
func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("dev", flag.ContinueOnError)
	fset.SetOutput(stderr)
	httpAddr := fset.String("http", envOr("TRIBUTARY_HTTP_ADDR", "127.0.0.1:8080"), "listen address of every HTTP route (documents, chat, audit export, health, metrics)")
	dataDir := fset.String("data-dir", "tributary-data", "directory of all durable state (broker, vectors, documents, audit, keys)")
	keys := fset.String("api-keys", "", "API keys key:tenant:g1|g2, comma-separated (empty: generate one, kept in the data dir)")
	prefix := fset.String("topic-prefix", events.DefaultPrefix, "prefix of every topic name")
	logLevel := fset.String("log-level", "warn", "log level of the services: debug, info, warn or error")
	noSample := fset.Bool("no-sample", false, "do not load the sample corpus on first start")
	brokerFsync := fset.Bool("broker-fsync", false, "make the embedded broker fsync every write (default: like Kafka, the page cache; a killed process loses nothing, a machine crash may)")
	services := defaultDevServices()
	for _, s := range services.list() {
		s.settings.Register(fset)
	}
	if err := daemon.ParseFlags(fset, args, os.Getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		fmt.Fprintf(stderr, "dev: %v\n", err)
		return errUsage
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "dev: bad --log-level %q\n", *logLevel)
		return errUsage
	}
	var p daemon.Problems
	for _, s := range services.list() {
		s.settings.Check(&p)
	}
	if err := p.Err(); err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	tracing, err := daemon.TracingFromEnv(os.Getenv)
	if err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	tp, shutdownTracing, err := tracing.Provider(ctx, "tributary-dev")
	if err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := shutdownTracing(sctx); err != nil {
			fmt.Fprintf(stderr, "dev: tracing shutdown: %v\n", err)
		}
	}()
	d, err := startDev(ctx, devOptions{
		HTTPAddr: *httpAddr, DataDir: *dataDir, APIKeys: *keys, TopicPrefix: *prefix, LogLevel: lvl, Logs: stderr,
		SkipSample: *noSample, BrokerFsync: *brokerFsync, Services: services, TracerProvider: tp,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "tributary dev: serving on http://%s (generation: %s, data: %s)\n", d.Addr(), d.backend, *dataDir)
	fmt.Fprintf(stdout, "  Kafka broker %s, Qdrant gRPC %s (loopback only)\n", d.brokerAdr, d.qdrantAdr)
	if d.key != "" {
		fmt.Fprintf(stdout, "API key (tenant %q, groups staff, compliance): %s\n", devTenant, d.key)
		fmt.Fprintf(stdout, "  export TRIBUTARY_API_KEY=%s TRIBUTARY_SERVER=http://%s\n", d.key, d.Addr())
	}
	return d.Run(ctx)
}

// startDev starts the broker and the vector store, wires every service
// with its own Wire and listens on opts.HTTPAddr; Run serves until ctx is
// done. On error everything started is stopped again.
func startDev(ctx context.Context, opts devOptions) (_ *devStack, err error) {
	if opts.DataDir == "" {
		return nil, errors.New("dev: no data directory")
	}
	if opts.TopicPrefix == "" {
		opts.TopicPrefix = events.DefaultPrefix
	}
	if opts.Partitions <= 0 {
		opts.Partitions = 3
	}
	if opts.Logs == nil {
		opts.Logs = io.Discard
	}
	if opts.Services == nil {
		opts.Services = defaultDevServices()
	}
	d := &devStack{opts: opts, wiring: daemon.NewWiring()}
	w := d.wiring
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	for _, sub := range []string{"", devBrokerDir, devVectorDir, devIngestDir, devAuditDir} {
		if err := os.MkdirAll(filepath.Join(opts.DataDir, sub), 0o750); err != nil {
			return nil, fmt.Errorf("dev: data directory: %w", err)
		}
	}
	d.logger = daemon.NewLogger(opts.Logs, opts.LogLevel, "dev")

	keySpec := opts.APIKeys
	if keySpec == "" {
		keySpec, d.key, err = devKey(filepath.Join(opts.DataDir, devKeyFile))
		if err != nil {
			return nil, err
		}
	}
	keys, err := apikey.Parse(keySpec)
	if err != nil {
		return nil, fmt.Errorf("dev: api keys: %w", err)
	}

	// Broker and vector store on loopback ports, closed after the services.
	// Loopback is no boundary: the broker wants a login, and each service
	// has its own principal with least privilege (broker.ServiceAccess).
	topics := events.NewTopics(opts.TopicPrefix)
	users, err := broker.LoadUsers(filepath.Join(opts.DataDir, devKafkaUsers), topics, true)
	if err != nil {
		return nil, fmt.Errorf("dev: %w", err)
	}
	bcfg := broker.Config{Listen: "127.0.0.1:0", DataDir: filepath.Join(opts.DataDir, devBrokerDir), Partitions: opts.Partitions, Fsync: opts.BrokerFsync, Users: users}
	b, err := broker.Start(bcfg)
	if err != nil {
		return nil, fmt.Errorf("dev: %w", err)
	}
	w.OnClose(func() error { b.Close(); return nil })
	d.brokerAdr = b.Addr()
	brokers := []string{b.Addr()}
	// The store wants a key too; a fresh one each start, handed to retrieve.
	qdrantKey := "trb_" + rand.Text()
	opts.Services.Retrieve.QdrantAPIKey = qdrantKey
	if err := d.startVectorDB(qdrantKey); err != nil {
		return nil, err
	}

	admin, err := devLogin(users, broker.AdminUser)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	err = kafkatransport.EnsureTopics(pctx, brokers, admin, kafkatransport.TopicSpecs(opts.Partitions, 1, topics.All()...)...)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("dev: provision topics: %w", err)
	}

	reg := daemon.NewRegistry()
	kmetrics, err := kafkatransport.NewMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("dev: kafka metrics: %w", err)
	}
	for _, s := range opts.Services.list() {
		sec, err := devLogin(users, s.name)
		if err != nil {
			return nil, err
		}
		deps := daemon.Deps{
			Brokers: brokers, KafkaSecurity: sec, Topics: topics, Registry: reg, KafkaMetrics: kmetrics, Keys: keys, QdrantAddr: d.qdrantAdr,
			Logger: daemon.NewLogger(opts.Logs, opts.LogLevel, s.name), TracerProvider: opts.TracerProvider,
		}
		if s.dataDir != "" {
			deps.DataDir = filepath.Join(opts.DataDir, s.dataDir)
		}
		consumed, produced := len(w.Consumes()), len(w.Produces())
		if s.name == "ingest" {
			// The sample corpus goes in through the service itself.
			d.ingestSvc, err = opts.Services.Ingest.WireService(ctx, w, deps)
		} else {
			err = s.settings.Wire(ctx, w, deps)
		}
		if err != nil {
			return nil, fmt.Errorf("dev: %s: %w", s.name, err)
		}
		if err := broker.ServiceAccess(topics)[s.name].Covers(w.Consumes()[consumed:], w.Produces()[produced:]); err != nil {
			return nil, fmt.Errorf("dev: %s's kafka principal: %w", s.name, err)
		}
	}
	if v, ok := w.Described("backend"); ok {
		d.backend = fmt.Sprint(v)
	}

	checks := append([]daemon.Check{daemon.KafkaCheck(brokers, admin, topics.All()...)}, w.Checks()...)
	d.ln, err = net.Listen("tcp", opts.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("dev: listen: %w", err)
	}
	w.Serve(daemon.NewHTTPServer("", daemon.NewHTTPHandler(w.Routes(), reg, checks...)), d.ln)
	if !opts.SkipSample {
		w.Group.Add("sample-corpus", d.loadSample)
	}
	return d, nil
}

// startVectorDB opens the embedded store and serves Qdrant's gRPC API to
// callers with key, on a loopback port until the stack closes.
func (d *devStack) startVectorDB(key string) error {
	vlog := daemon.NewLogger(d.opts.Logs, d.opts.LogLevel, "vectordb")
	store, err := vectordb.Open(filepath.Join(d.opts.DataDir, devVectorDir), vectordb.WithLogger(vlog))
	if err != nil {
		return fmt.Errorf("dev: open vector store: %w", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = store.Close()
		return fmt.Errorf("dev: vector store listen: %w", err)
	}
	d.qdrantAdr = lis.Addr().String()
	sctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	access := vectordb.Access{Keys: []string{key}}
	go func() { done <- vectordb.Serve(sctx, store, lis, vlog, 5*time.Second, access.ServerOptions(nil)...) }()
	d.wiring.OnClose(func() error {
		stop()
		err := <-done
		if cerr := store.Close(); cerr != nil && err == nil {
			err = cerr
		}
		return err
	})
	return nil
}

// Run serves until ctx is done (or a part fails), then stops every
// service, the vector store and the broker.
func (d *devStack) Run(ctx context.Context) error {
	err := d.wiring.Group.Run(ctx, d.logger)
	if cerr := d.close(); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

// close closes the services, the vector store and the broker, once.
func (d *devStack) close() error {
	err := d.wiring.Close()
	if d.ln != nil {
		_ = d.ln.Close()
	}
	return err
}

// loadSample ingests the sample corpus once per data directory, then waits
// for the stack to stop (a group part that returns stops the group).
func (d *devStack) loadSample(ctx context.Context) error {
	mark := filepath.Join(d.opts.DataDir, devSampleMark)
	if _, err := os.Stat(mark); err == nil {
		<-ctx.Done()
		return nil
	}
	entries, err := fs.ReadDir(sampleCorpus, "sample")
	if err != nil {
		return fmt.Errorf("sample corpus: %w", err)
	}
	p := ingest.Principal{Tenant: devTenant, Name: "sample-corpus"}
	loaded := true
	for _, e := range entries {
		b, err := sampleCorpus.ReadFile(path.Join("sample", e.Name()))
		if err != nil {
			return fmt.Errorf("sample corpus: %w", err)
		}
		id := "sample-" + strings.TrimSuffix(e.Name(), ".md")
		_, err = d.ingestSvc.Ingest(ctx, p, ingest.Document{
			ID: id, ContentType: "text/markdown", Filename: e.Name(), Content: b, Source: "tributary sample corpus",
		})
		if err != nil {
			// Not fatal: the suite runs without its samples.
			d.logger.Warn("sample corpus: ingest", "document_id", id, "error", err.Error())
			loaded = false
		}
	}
	if loaded {
		if err := os.WriteFile(mark, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o640); err != nil {
			d.logger.Warn("sample corpus: write marker", "error", err.Error())
		}
	}
	<-ctx.Done()
	return nil
}

// devLogin returns the Kafka login of user name.
func devLogin(users []broker.User, name string) (kafkatransport.Security, error) {
	pass, ok := broker.Password(users, name)
	if !ok {
		return kafkatransport.Security{}, fmt.Errorf("dev: no kafka user %q in %s", name, devKafkaUsers)
	}
	m, err := kafkatransport.NewSASL(kafkatransport.MechanismSCRAMSHA512, name, pass)
	if err != nil {
		return kafkatransport.Security{}, fmt.Errorf("dev: kafka login: %w", err)
	}
	return kafkatransport.Security{SASL: m}, nil
}

// devKey returns the key spec kept in file, generating a key for tenant
// "default" with the groups staff and compliance when the file is missing.
// key is the plain key to print.
func devKey(file string) (spec, key string, err error) {
	b, err := os.ReadFile(file)
	switch {
	case err == nil:
		spec = strings.TrimSpace(string(b))
		key, _, _ = strings.Cut(spec, ":")
		return spec, key, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", "", fmt.Errorf("dev: read api key: %w", err)
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", "", fmt.Errorf("dev: generate api key: %w", err)
	}
	key = "trb_" + base64.RawURLEncoding.EncodeToString(raw)
	spec = key + ":" + devTenant + ":staff|compliance"
	if err := writeFileSync(file, []byte(spec+"\n"), 0o600); err != nil {
		return "", "", fmt.Errorf("dev: save api key: %w", err)
	}
	return spec, key, nil
}

// writeFileSync writes a new file and fsyncs it.
func writeFileSync(name string, b []byte, perm os.FileMode) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// statusIndexed is the status GET /v1/documents/{id} reports once every
// chunk of the current version is in the vector store.
const statusIndexed = ingest.StatusIndexed
