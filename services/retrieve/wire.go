package retrieve

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/tributary-rag/tributary/pkg/daemon"
)

// Settings are the retrieve service's own settings, next to the shared
// daemon.Config. Its main and tributary dev both register them (Register),
// check them (Check) and wire the service with them (Wire).
type Settings struct {
	// Collection is the Qdrant collection of the chunks.
	Collection string
	// DenseSize is the size of the dense vectors, fixed at creation.
	DenseSize int
	// TopK is the results per query that names none; MaxTopK the most.
	TopK, MaxTopK int
}

// DefaultSettings returns the defaults of every setting.
func DefaultSettings() Settings {
	return Settings{Collection: DefaultCollection, DenseSize: DefaultDenseSize, TopK: DefaultTopK, MaxTopK: MaxTopK}
}

// Register registers a flag for every setting on fs, with s's values as
// the defaults.
func (s *Settings) Register(fs *flag.FlagSet) {
	fs.StringVar(&s.Collection, "collection", s.Collection, "Qdrant collection of the chunks")
	fs.IntVar(&s.DenseSize, "dense-size", s.DenseSize, "size of the dense vectors (fixed when the collection is created)")
	fs.IntVar(&s.TopK, "top-k", s.TopK, "results per query when the query names none")
	fs.IntVar(&s.MaxTopK, "max-top-k", s.MaxTopK, "most results per query")
}

var collectionRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)

// Check records in p each setting out of range.
func (s Settings) Check(p *daemon.Problems) {
	if !collectionRE.MatchString(s.Collection) {
		p.Addf("collection", "must be 1-255 characters of [A-Za-z0-9_-]")
	}
	if s.DenseSize <= 0 || s.DenseSize > 65536 {
		p.Addf("dense-size", "must be between 1 and 65536")
	}
	if s.MaxTopK <= 0 || s.MaxTopK > 1000 {
		p.Addf("max-top-k", "must be between 1 and 1000")
	}
	if s.TopK <= 0 || s.TopK > s.MaxTopK {
		p.Addf("top-k", "must be between 1 and the max-top-k")
	}
}

// Wire connects to Qdrant at d.QdrantAddr, creates the collection (waiting
// up to a minute for Qdrant to come up), and adds the service, its onion
// and its subscribers to w.
func (s Settings) Wire(ctx context.Context, w *daemon.Wiring, d daemon.Deps) error {
	client, err := Dial(d.QdrantAddr)
	if err != nil {
		return err
	}
	w.OnClose(client.Close)
	index := NewIndex(client, s.Collection, s.DenseSize)
	if err := retry(ctx, d.Logger, "ensure collection", index.Ensure); err != nil {
		return err
	}
	metrics, err := NewMetrics(d.Registry)
	if err != nil {
		return fmt.Errorf("retrieve metrics: %w", err)
	}
	pub := d.Publisher(w, EventSource)
	var svc Service
	svc = NewService(index, NewKafkaEmitter(pub, d.Topics.Documents), WithTopK(s.TopK, s.MaxTopK))
	svc = LoggingMiddleware(d.Logger)(svc)
	svc = InstrumentingMiddleware(metrics)(svc)
	endpoints := MakeEndpoints(svc)

	t := d.Topics
	w.Group.Add("chunks-embedded", NewChunksSubscriber(d.Brokers, t.ChunksEmbedded, pub, endpoints, d.SubscriberOptions()...).Run)
	w.Group.Add("documents", NewDocumentsSubscriber(d.Brokers, t.Documents, pub, endpoints, d.SubscriberOptions()...).Run)
	w.Group.Add("queries-embedded", NewQueriesSubscriber(d.Brokers, t.QueriesEmbedded, t.QueriesRetrieved, pub, endpoints, d.SubscriberOptions()...).Run)
	w.Topics([]string{t.ChunksEmbedded, t.Documents, t.QueriesEmbedded}, t.QueriesRetrieved)
	w.Check(daemon.Check{Name: "qdrant", Run: index.Health})
	w.Describe("qdrant_addr", d.QdrantAddr, "collection", s.Collection, "dense_size", s.DenseSize)
	return nil
}

// retry runs fn until it succeeds, for up to a minute, so that the service
// may start together with its vector store.
func retry(ctx context.Context, logger *slog.Logger, what string, fn func(context.Context) error) error {
	deadline := time.Now().Add(time.Minute)
	for attempt := 1; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := fn(cctx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("%s: %w", what, err)
		}
		logger.Warn(what+": not ready, retrying", "attempt", attempt, "error", err.Error())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
