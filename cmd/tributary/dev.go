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
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/tributary-rag/tributary/pkg/apikey"
	"github.com/tributary-rag/tributary/pkg/broker"
	"github.com/tributary-rag/tributary/pkg/chunk"
	"github.com/tributary-rag/tributary/pkg/daemon"
	"github.com/tributary-rag/tributary/pkg/docparse"
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
	// ModelPath, when set, generates with the native engine on this GGUF.
	ModelPath string
	// InferenceURL, when set, generates through this OpenAI-compatible
	// server (it wins over ModelPath).
	InferenceURL string
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
	// MaxTokens bounds a generated answer (default 512).
	MaxTokens int
	// BrokerFsync makes the broker fsync every write before acknowledging
	// it (see broker.Config.Fsync).
	BrokerFsync bool
}

// devStack is the whole suite in one process: start it with startDev, run
// it with Run.
type devStack struct {
	opts      devOptions
	logger    *slog.Logger
	ln        net.Listener
	key       string // the generated key, empty when APIKeys was given
	keys      *apikey.Set
	group     daemon.Group
	closers   []func() error
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
	dataDir := fset.String("data-dir", envOr("TRIBUTARY_DATA_DIR", "tributary-data"), "directory of all durable state (broker, vectors, documents, audit, keys)")
	model := fset.String("model", os.Getenv("TRIBUTARY_MODEL"), "GGUF file to generate with the native engine (empty: extractive answers, no model)")
	inferenceURL := fset.String("inference-url", os.Getenv("TRIBUTARY_INFERENCE_URL"), "OpenAI-compatible server to generate with (wins over --model)")
	keys := fset.String("api-keys", os.Getenv("TRIBUTARY_API_KEYS"), "API keys key:tenant:g1|g2, comma-separated (empty: generate one, kept in the data dir)")
	prefix := fset.String("topic-prefix", envOr("TRIBUTARY_TOPIC_PREFIX", events.DefaultPrefix), "prefix of every topic name")
	logLevel := fset.String("log-level", envOr("TRIBUTARY_LOG_LEVEL", "warn"), "log level of the services: debug, info, warn or error")
	noSample := fset.Bool("no-sample", false, "do not load the sample corpus on first start")
	brokerFsync := fset.Bool("broker-fsync", false, "make the embedded broker fsync every write (default: like Kafka, the page cache; a killed process loses nothing, a machine crash may)")
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if fset.NArg() > 0 {
		fmt.Fprintf(stderr, "dev: unexpected argument %q\n", fset.Arg(0))
		return errUsage
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "dev: bad --log-level %q\n", *logLevel)
		return errUsage
	}
	d, err := startDev(ctx, devOptions{
		HTTPAddr: *httpAddr, DataDir: *dataDir, ModelPath: *model, InferenceURL: *inferenceURL,
		APIKeys: *keys, TopicPrefix: *prefix, LogLevel: lvl, Logs: stderr, SkipSample: *noSample, BrokerFsync: *brokerFsync,
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

// startDev starts the broker and the vector store, wires every service and
// listens on opts.HTTPAddr; Run serves until ctx is done. On error
// everything started is stopped again.
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
	if opts.MaxTokens <= 0 {
		opts.MaxTokens = 512
	}
	if opts.Logs == nil {
		opts.Logs = io.Discard
	}
	d := &devStack{opts: opts}
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
	svcLogger := func(name string) *slog.Logger { return daemon.NewLogger(opts.Logs, opts.LogLevel, name) }

	// Keys.
	keySpec := opts.APIKeys
	if keySpec == "" {
		keySpec, d.key, err = devKey(filepath.Join(opts.DataDir, devKeyFile))
		if err != nil {
			return nil, err
		}
	}
	if d.keys, err = apikey.Parse(keySpec); err != nil {
		return nil, fmt.Errorf("dev: api keys: %w", err)
	}

	// Broker and vector store on loopback ports.
	bcfg := broker.Config{Listen: "127.0.0.1:0", DataDir: filepath.Join(opts.DataDir, devBrokerDir), Partitions: opts.Partitions, Fsync: opts.BrokerFsync}
	b, err := broker.Start(bcfg)
	if err != nil {
		return nil, fmt.Errorf("dev: %w", err)
	}
	d.closers = append(d.closers, func() error { b.Close(); return nil })
	d.brokerAdr = b.Addr()
	brokers := []string{b.Addr()}

	if err := d.startVectorDB(); err != nil {
		return nil, err
	}

	// Topics.
	topics := events.NewTopics(opts.TopicPrefix)
	specs := kafkatransport.TopicSpecs(opts.Partitions, 1, topics.All()...)
	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	err = kafkatransport.EnsureTopics(pctx, brokers, specs...)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("dev: provision topics: %w", err)
	}

	reg := daemon.NewRegistry()
	kmetrics, err := kafkatransport.NewMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("dev: kafka metrics: %w", err)
	}
	publisher := func(source string, extra ...kafkatransport.PublisherOption) *kafkatransport.Publisher {
		p := kafkatransport.NewPublisher(brokers, append([]kafkatransport.PublisherOption{
			kafkatransport.PublisherSource(source), kafkatransport.PublisherMetrics(kmetrics)}, extra...)...)
		d.closers = append(d.closers, p.Close)
		return p
	}
	subOpts := func(l *slog.Logger) []kafkatransport.SubscriberOption {
		return []kafkatransport.SubscriberOption{kafkatransport.SubscriberMetrics(kmetrics), kafkatransport.SubscriberLogger(l)}
	}

	// Retrieve.
	qc, err := retrieve.Dial(d.qdrantAdr)
	if err != nil {
		return nil, fmt.Errorf("dev: %w", err)
	}
	d.closers = append(d.closers, qc.Close)
	index := retrieve.NewIndex(qc, retrieve.DefaultCollection, retrieve.DefaultDenseSize)
	ectx, cancel := context.WithTimeout(ctx, time.Minute)
	err = index.Ensure(ectx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("dev: ensure collection: %w", err)
	}
	{
		l := svcLogger("retrieve")
		pub := publisher(retrieve.EventSource)
		m, err := retrieve.NewMetrics(reg)
		if err != nil {
			return nil, fmt.Errorf("dev: retrieve metrics: %w", err)
		}
		var svc retrieve.Service
		svc = retrieve.NewService(index, retrieve.NewKafkaEmitter(pub, topics.Documents))
		svc = retrieve.LoggingMiddleware(l)(svc)
		svc = retrieve.InstrumentingMiddleware(m)(svc)
		ep := retrieve.MakeEndpoints(svc)
		d.group.Add("retrieve-chunks", retrieve.NewChunksSubscriber(brokers, topics.ChunksEmbedded, pub, ep, subOpts(l)...).Run)
		d.group.Add("retrieve-documents", retrieve.NewDocumentsSubscriber(brokers, topics.Documents, pub, ep, subOpts(l)...).Run)
		d.group.Add("retrieve-queries", retrieve.NewQueriesSubscriber(brokers, topics.QueriesEmbedded, topics.QueriesRetrieved, pub, ep, subOpts(l)...).Run)
	}

	mux := http.NewServeMux()

	// Ingest.
	{
		l := svcLogger("ingest")
		store, err := ingest.OpenStore(filepath.Join(opts.DataDir, devIngestDir))
		if err != nil {
			return nil, fmt.Errorf("dev: %w", err)
		}
		d.closers = append(d.closers, store.Close)
		pub := publisher(ingest.EventSource)
		chunker, err := ingest.NewDocChunker(chunk.Options{Size: chunk.DefaultSize, Overlap: chunk.DefaultOverlap},
			docparse.Limits{MaxBytes: ingest.DefaultMaxDocumentSize, Timeout: docparse.DefaultTimeout})
		if err != nil {
			return nil, fmt.Errorf("dev: %w", err)
		}
		m, err := ingest.NewMetrics(reg)
		if err != nil {
			return nil, fmt.Errorf("dev: ingest metrics: %w", err)
		}
		var svc ingest.Service
		svc = ingest.NewService(store, chunker, ingest.NewKafkaEmitter(pub, opts.TopicPrefix))
		svc = ingest.LoggingMiddleware(l)(svc)
		svc = ingest.InstrumentingMiddleware(m)(svc)
		d.ingestSvc = svc
		ep := ingest.MakeEndpoints(svc)
		auth := ingest.AuthenticatorFunc(func(key string) (ingest.Principal, bool) {
			p, ok := d.keys.Lookup(key)
			return ingest.Principal{Tenant: p.Tenant, Groups: p.Groups, Name: p.Name}, ok
		})
		h := ingest.MakeHTTPHandler(ep, auth, l)
		mux.Handle("/v1/documents", h)
		mux.Handle("/v1/documents/", h)
		d.group.Add("ingest-requests", ingest.NewIngestSubscriber(brokers, topics.IngestRequests, pub, ep, subOpts(l)...).Run)
		// GET reports "indexed" from retrieve's document.indexed events.
		d.group.Add("ingest-documents", ingest.NewDocumentsSubscriber(brokers, "", topics.Documents, pub, ep, subOpts(l)...).Run)
	}

	// Embed.
	{
		l := svcLogger("embed")
		embedder, err := embed.NewSparse()
		if err != nil {
			return nil, fmt.Errorf("dev: embedder: %w", err)
		}
		m, err := embed.NewMetrics(reg)
		if err != nil {
			return nil, fmt.Errorf("dev: embed metrics: %w", err)
		}
		pub := publisher(embed.EventSource)
		var svc embed.Service
		svc = embed.NewService(embedder)
		svc = embed.LoggingMiddleware(l)(svc)
		svc = embed.InstrumentingMiddleware(m)(svc)
		ep := embed.MakeEndpoints(svc)
		validator, err := events.NewValidator()
		if err != nil {
			return nil, fmt.Errorf("dev: event schemas: %w", err)
		}
		d.group.Add("embed-chunks", embed.NewChunkSubscriber(brokers, topics, pub, ep, validator, subOpts(l)...).Run)
		d.group.Add("embed-queries", embed.NewQuerySubscriber(brokers, topics, pub, ep, validator, subOpts(l)...).Run)
	}

	// Generate.
	{
		l := svcLogger("generate")
		bcfg := generate.BackendConfig{InferenceURL: opts.InferenceURL, ModelPath: opts.ModelPath, InferenceTimeout: time.Minute, MaxTokens: opts.MaxTokens}
		backend, err := generate.OpenBackend(bcfg)
		if err != nil {
			return nil, fmt.Errorf("dev: open generation backend: %w", err)
		}
		d.closers = append(d.closers, backend.Close)
		d.backend = backend.Description
		scfg := generate.Config{
			MaxTokens: opts.MaxTokens,
			Prompt:    generate.PromptOptions{MaxSources: 8, MaxSourceRunes: 2000, MaxContextRunes: 12000},
		}
		if backend.Mode() != generate.ModeExtractive {
			scfg.Fallback = generate.Extractive{}
		}
		pub := publisher(generate.EventSource)
		m, err := generate.NewMetrics(reg)
		if err != nil {
			return nil, fmt.Errorf("dev: generate metrics: %w", err)
		}
		var svc generate.Service
		svc = generate.NewService(backend.Generator, generate.NewKafkaEmitter(pub, topics.AnswersGenerated), scfg)
		svc = generate.LoggingMiddleware(l)(svc)
		svc = generate.InstrumentingMiddleware(m)(svc)
		sub := generate.NewAnswerSubscriber(brokers, generate.KafkaGroup, topics.QueriesRetrieved, pub, generate.MakeEndpoints(svc),
			append(subOpts(l), kafkatransport.SubscriberDrainTimeout(30*time.Second))...)
		d.group.Add("generate", backend.Around(sub.Run))
	}

	// Moderate.
	{
		l := svcLogger("moderate")
		bundle, err := moderate.DefaultBundle()
		if err != nil {
			return nil, fmt.Errorf("dev: policy bundle: %w", err)
		}
		policy, err := moderate.NewPolicy(ctx, bundle, moderate.Limits{MaxQuestionRunes: 2000, MaxRedactions: 20})
		if err != nil {
			return nil, fmt.Errorf("dev: policy: %w", err)
		}
		pub := publisher(moderate.EventSource)
		m, err := moderate.NewMetrics(reg)
		if err != nil {
			return nil, fmt.Errorf("dev: moderate metrics: %w", err)
		}
		var svc moderate.Service
		svc = moderate.NewService(policy, moderate.Config{MaxSentenceRunes: moderate.DefaultMaxSentenceRunes, StateTTL: 10 * time.Minute})
		svc = moderate.LoggingMiddleware(l)(svc)
		svc = moderate.InstrumentingMiddleware(m)(svc)
		ep := moderate.MakeEndpoints(svc)
		d.group.Add("moderate-queries", moderate.NewQuerySubscriber(brokers, moderate.KafkaGroup, topics, pub, ep, subOpts(l)...).Run)
		d.group.Add("moderate-answers", moderate.NewAnswerSubscriber(brokers, moderate.KafkaGroup, topics, pub, ep, subOpts(l)...).Run)
	}

	// Audit.
	{
		l := svcLogger("audit")
		dir := filepath.Join(opts.DataDir, devAuditDir)
		keys, err := audit.LoadKeyFile(filepath.Join(dir, "audit.key"))
		if err != nil {
			return nil, fmt.Errorf("dev: %w", err)
		}
		alog, err := audit.Open(ctx, dir, keys, audit.WithLogger(l))
		if err != nil {
			return nil, fmt.Errorf("dev: %w", err)
		}
		d.closers = append(d.closers, alog.Close)
		m, err := audit.NewMetrics(reg)
		if err != nil {
			return nil, fmt.Errorf("dev: audit metrics: %w", err)
		}
		var svc audit.Service
		svc = audit.NewService(alog)
		svc = audit.LoggingMiddleware(l)(svc)
		svc = audit.InstrumentingMiddleware(m)(svc)
		ep := audit.MakeEndpoints(svc)
		auth := audit.AuthenticatorFunc(func(key string) (audit.Principal, bool) {
			p, ok := d.keys.Lookup(key)
			return audit.Principal{Tenant: p.Tenant, Groups: p.Groups, Name: p.Name}, ok
		})
		mux.Handle("/v1/audit/", audit.MakeHTTPHandler(ep, auth, l))
		d.group.Add("audit", audit.NewConsumer(audit.ConsumerConfig{Brokers: brokers, Topics: audit.Topics(opts.TopicPrefix)}, ep.Record, l).Run)
	}

	// Edge.
	answersGroup, rejectedGroup := edge.Groups(devReplica)
	var ws *edge.WSHandler
	{
		l := svcLogger("edge")
		pub := publisher(edge.EventSource)
		m, err := edge.NewMetrics(reg)
		if err != nil {
			return nil, fmt.Errorf("dev: edge metrics: %w", err)
		}
		var svc edge.Service
		svc = edge.NewService(pub, edge.Config{QueriesTopic: topics.QueriesReceived, Observer: m})
		svc = edge.LoggingMiddleware(l)(svc)
		svc = edge.InstrumentingMiddleware(m)(svc)
		ep := edge.MakeEndpoints(svc)
		d.group.Add("edge-answers", edge.NewReplySubscriber(brokers, answersGroup, topics.AnswersModerated, pub, ep, l, kafkatransport.SubscriberMetrics(kmetrics)).Run)
		d.group.Add("edge-rejected", edge.NewReplySubscriber(brokers, rejectedGroup, topics.QueriesRejected, pub, ep, l, kafkatransport.SubscriberMetrics(kmetrics)).Run)
		ws = edge.NewWSHandler(ep, edge.WSConfig{Keys: d.keys, Logger: l, Metrics: m})
		mux.Handle("GET /v1/chat", ws)
	}

	handler := daemon.NewHTTPHandler(mux, reg,
		daemon.KafkaCheck(brokers, topics.All()...),
		daemon.Check{Name: "qdrant", Run: index.Health},
		daemon.Check{Name: "consumers", Run: func(ctx context.Context) error {
			return edge.CheckGroups(ctx, brokers, answersGroup, rejectedGroup)
		}})
	d.ln, err = net.Listen("tcp", opts.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("dev: listen: %w", err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	// Shutdown does not close hijacked (WebSocket) connections.
	srv.RegisterOnShutdown(ws.Close)
	d.group.AddHTTP(srv, d.ln, 10*time.Second)
	if !opts.SkipSample {
		d.group.Add("sample-corpus", d.loadSample)
	}
	return d, nil
}

// startVectorDB opens the embedded store and serves Qdrant's gRPC API on a
// loopback port until the stack closes.
func (d *devStack) startVectorDB() error {
	var vlog log.Logger = log.NewJSONLogger(log.NewSyncWriter(d.opts.Logs))
	vlog = log.With(vlog, "ts", log.DefaultTimestampUTC, "service", "vectordb")
	switch {
	case d.opts.LogLevel <= slog.LevelDebug:
		vlog = level.NewFilter(vlog, level.AllowDebug())
	case d.opts.LogLevel <= slog.LevelInfo:
		vlog = level.NewFilter(vlog, level.AllowInfo())
	case d.opts.LogLevel <= slog.LevelWarn:
		vlog = level.NewFilter(vlog, level.AllowWarn())
	default:
		vlog = level.NewFilter(vlog, level.AllowError())
	}
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
	go func() { done <- vectordb.Serve(sctx, store, lis, vlog, 5*time.Second) }()
	d.closers = append(d.closers, func() error {
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
	err := d.group.Run(ctx, d.logger)
	if cerr := d.close(); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

// close runs the closers in reverse order, once.
func (d *devStack) close() error {
	var errs []error
	for i := len(d.closers) - 1; i >= 0; i-- {
		if err := d.closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	d.closers = nil
	if d.ln != nil {
		_ = d.ln.Close()
	}
	return errors.Join(errs...)
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
