package edge

import (
	"context"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/tributary-rag/tributary/pkg/auditevent"
	"github.com/tributary-rag/tributary/pkg/daemon"
	"github.com/tributary-rag/tributary/pkg/keylimit"
)

// Settings are the edge's own settings, next to the shared daemon.Config.
// Its main and tributary dev both register them (Register), check them
// (Check) and wire the service with them (Wire).
type Settings struct {
	// ReplicaID names this replica's consumer groups (see Groups).
	ReplicaID string
	// AllowedOrigins are the comma-separated Origin values accepted on
	// /v1/chat (empty: any).
	AllowedOrigins string
	WS             WSConfig
	Service        Config
	// ShutdownDrain is how long shutdown waits for HTTP requests.
	ShutdownDrain time.Duration
	// ConnsPerKey and Conns bound the WebSocket connections of one API
	// key and of all keys (0: no bound).
	ConnsPerKey, Conns int
	// AsksPerSecond and AskBurst bound the questions of one API key, over
	// all its connections (0: no bound).
	AsksPerSecond float64
	AskBurst      int
	// SearchTimeout bounds a POST /v1/search from publish to results.
	SearchTimeout time.Duration
}

// DefaultSettings returns the defaults of every setting; the replica id
// is the host name.
func DefaultSettings() Settings {
	return Settings{
		ReplicaID:     defaultReplicaID(),
		WS:            WSConfig{MaxMessageBytes: 32 << 10, MaxInFlight: 8, SendBuffer: 1024, WriteWait: 10 * time.Second, PongWait: 60 * time.Second},
		Service:       Config{AnswerTimeout: 60 * time.Second, PublishTimeout: 10 * time.Second},
		ShutdownDrain: daemon.DefaultDrain,
		ConnsPerKey:   256,
		Conns:         10000,
		AsksPerSecond: 10,
		AskBurst:      20,
		SearchTimeout: 30 * time.Second,
	}
}

var replicaPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

func defaultReplicaID() string {
	h, err := os.Hostname()
	if err != nil || !replicaPattern.MatchString(h) {
		return "edge"
	}
	return h
}

// Register registers a flag for every setting on fs, with s's values as
// the defaults.
func (s *Settings) Register(fs *flag.FlagSet) {
	fs.StringVar(&s.ReplicaID, "replica-id", s.ReplicaID, "this replica's id; its consumer groups are edge-<id>.answers and edge-<id>.rejected (default: the host name)")
	fs.StringVar(&s.AllowedOrigins, "allowed-origins", s.AllowedOrigins, "comma-separated Origin values accepted on /v1/chat (empty: any)")
	fs.Int64Var(&s.WS.MaxMessageBytes, "max-message-bytes", s.WS.MaxMessageBytes, "largest client message; larger closes the connection with 1009")
	fs.IntVar(&s.WS.MaxInFlight, "max-in-flight", s.WS.MaxInFlight, "asks in flight per connection")
	fs.IntVar(&s.WS.SendBuffer, "send-buffer", s.WS.SendBuffer, "messages queued per connection before a slow client is disconnected")
	fs.DurationVar(&s.WS.WriteWait, "write-wait", s.WS.WriteWait, "longest write to a client")
	fs.DurationVar(&s.WS.PongWait, "pong-wait", s.WS.PongWait, "longest silence from a client; pings every 9/10 of it")
	fs.DurationVar(&s.Service.AnswerTimeout, "answer-timeout", s.Service.AnswerTimeout, "longest wait for the next answer event of a request")
	fs.DurationVar(&s.Service.PublishTimeout, "publish-timeout", s.Service.PublishTimeout, "longest wait to publish a question")
	fs.DurationVar(&s.ShutdownDrain, "shutdown-drain", s.ShutdownDrain, "how long shutdown waits for HTTP requests")
	fs.IntVar(&s.ConnsPerKey, "max-connections-per-key", s.ConnsPerKey, "WebSocket connections one API key may hold; more get 429 (0: no limit)")
	fs.IntVar(&s.Conns, "max-connections", s.Conns, "WebSocket connections of all keys together (0: no limit)")
	fs.Float64Var(&s.AsksPerSecond, "asks-per-second", s.AsksPerSecond, "questions per second one API key may ask over all its connections; more get error rate_limited (0: no limit)")
	fs.IntVar(&s.AskBurst, "ask-burst", s.AskBurst, "questions one API key may ask at once above its rate")
	fs.DurationVar(&s.SearchTimeout, "search-timeout", s.SearchTimeout, "longest wait for the results of a POST /v1/search")
}

// Check records in p each setting out of range.
func (s Settings) Check(p *daemon.Problems) {
	if !replicaPattern.MatchString(s.ReplicaID) {
		p.Addf("replica-id", "%q must be 1-100 characters of [A-Za-z0-9._-]", s.ReplicaID)
	}
	if s.ConnsPerKey < 0 || s.Conns < 0 || (s.Conns > 0 && s.ConnsPerKey > s.Conns) {
		p.Addf("max-connections-per-key", "must be between 0 and --max-connections")
	}
	if s.AsksPerSecond < 0 || s.AskBurst < 1 {
		p.Addf("asks-per-second", "the rate must not be negative and the burst must be at least 1")
	}
	if s.WS.MaxMessageBytes < 256 || s.WS.MaxMessageBytes > 1<<20 {
		p.Addf("max-message-bytes", "must be between 256 and 1048576")
	}
	if s.WS.MaxInFlight <= 0 {
		p.Addf("max-in-flight", "must be positive")
	}
	if s.WS.SendBuffer <= 0 {
		p.Addf("send-buffer", "must be positive")
	}
	if s.WS.WriteWait <= 0 {
		p.Addf("write-wait", "must be positive")
	}
	if s.WS.PongWait < time.Second {
		p.Addf("pong-wait", "must be at least 1s")
	}
	if s.Service.AnswerTimeout <= 0 {
		p.Addf("answer-timeout", "must be positive")
	}
	if s.Service.PublishTimeout <= 0 {
		p.Addf("publish-timeout", "must be positive")
	}
	if s.SearchTimeout <= 0 {
		p.Addf("search-timeout", "must be positive")
	}
}

// Wire adds the service, its onion, GET /v1/chat and its reply
// subscribers to w.
func (s Settings) Wire(_ context.Context, w *daemon.Wiring, d daemon.Deps) error {
	for _, o := range strings.Split(s.AllowedOrigins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			s.WS.AllowedOrigins = append(s.WS.AllowedOrigins, o)
		}
	}
	metrics, err := NewMetrics(d.Registry)
	if err != nil {
		return fmt.Errorf("edge metrics: %w", err)
	}
	pub := d.Publisher(w, EventSource)
	s.Service.QueriesTopic = d.Topics.QueriesReceived
	s.Service.Observer = metrics
	var svc Service
	svc = NewService(pub, s.Service)
	svc = LoggingMiddleware(d.Logger)(svc)
	svc = InstrumentingMiddleware(metrics)(svc)
	svc = TracingMiddleware(d.TracerProvider)(svc)
	endpoints := MakeEndpoints(svc)
	searcher := NewSearcher(pub, d.Topics.QueriesReceived, s.SearchTimeout, s.Service.PublishTimeout)
	endpoints.Deliver = searcher.InterceptRejections(endpoints.Deliver)

	t := d.Topics
	answersGroup, rejectedGroup := Groups(s.ReplicaID)
	retrievedGroup := SearchGroup(s.ReplicaID)
	w.Group.Add("answers-moderated", NewReplySubscriber(d.Brokers, answersGroup, t.AnswersModerated, pub, endpoints, d.Logger, d.SubscriberOptions()...).Run)
	w.Group.Add("queries-rejected", NewReplySubscriber(d.Brokers, rejectedGroup, t.QueriesRejected, pub, endpoints, d.Logger, d.SubscriberOptions()...).Run)
	// Search results come from moderation, redacted, never straight from
	// retrieval.
	w.Group.Add("searches-moderated", NewRetrievedSubscriber(d.Brokers, retrievedGroup, t.SearchesModerated, pub, searcher, d.Logger, d.SubscriberOptions()...).Run)
	audit := auditevent.New(pub, t.AuditEvents, EventSource, d.Logger)
	search := NewSearchHandler(searcher, d.Keys, d.Logger)
	search.Audit = audit
	w.Handle("POST /v1/search", search)

	s.WS.Keys = d.Keys
	s.WS.Logger = d.Logger
	s.WS.Metrics = metrics
	s.WS.Conns = keylimit.NewSlots(s.ConnsPerKey, s.Conns)
	s.WS.Asks = keylimit.NewRate(s.AsksPerSecond, s.AskBurst)
	s.WS.Audit = audit
	ws := NewWSHandler(endpoints, s.WS)
	w.Handle("GET /v1/chat", ws)
	page := NewPageHandler()
	w.Handle("GET /{$}", page)
	w.Handle("GET "+PagePrefix, page)
	// Shutdown does not close hijacked (WebSocket) connections.
	w.OnShutdown(ws.Close)
	w.Drain(s.ShutdownDrain)
	w.Topics([]string{t.QueriesRejected, t.AnswersModerated, t.SearchesModerated}, t.QueriesReceived, t.AuditEvents)
	w.Check(daemon.Check{Name: "consumers", Run: func(ctx context.Context) error {
		return CheckGroups(ctx, d.Brokers, d.KafkaSecurity, answersGroup, rejectedGroup)
	}})
	w.Describe("replica_id", s.ReplicaID, "groups", []string{answersGroup, rejectedGroup})
	return nil
}
