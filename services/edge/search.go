package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-kit/kit/endpoint"
	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/apikey"
	"github.com/tributary-rag/tributary/pkg/auditevent"
	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
	"github.com/tributary-rag/tributary/pkg/tracecontext"
)

// Search limits.
const (
	DefaultSearchTopK = 10
	MaxSearchTopK     = 50
	maxSearchBody     = 64 << 10
	maxQueryRunes     = 4096
	maxFilterIDs      = 1000
)

// Search errors; the HTTP transport maps them to status codes.
var (
	// ErrBadSearch is a malformed search request (400).
	ErrBadSearch = errors.New("invalid search request")
	// ErrSearchTimeout is a search whose results did not come back in
	// time (504).
	ErrSearchTimeout = errors.New("search timed out")
)

// SearchRejectedError is a search the input policy refused (422).
type SearchRejectedError struct{ Code, Message string }

func (e *SearchRejectedError) Error() string {
	return fmt.Sprintf("search rejected: %s: %s", e.Code, e.Message)
}

// SearchRequest is the body of POST /v1/search.
type SearchRequest struct {
	Query  string              `json:"query"`
	TopK   int                 `json:"top_k,omitempty"`
	Filter *events.QueryFilter `json:"filter,omitempty"`
}

// SearchResult is one ranked chunk. Snippet is the chunk's own text (never
// the context that was indexed with it); title, snippet and heading path
// have passed moderation's output policy (personal data redacted).
type SearchResult struct {
	DocumentID  string   `json:"document_id"`
	ChunkID     string   `json:"chunk_id"`
	Title       string   `json:"title,omitempty"`
	Source      string   `json:"source,omitempty"`
	Score       float32  `json:"score"`
	Snippet     string   `json:"snippet"`
	Page        int      `json:"page,omitempty"`
	HeadingPath []string `json:"heading_path,omitempty"`
}

// SearchResponse is the answer of POST /v1/search, best first.
type SearchResponse struct {
	RequestID string         `json:"request_id"`
	Results   []SearchResult `json:"results"`
}

// Searcher answers searches through the question path: it publishes a
// query.received with mode "search" (so moderation, embedding, retrieval,
// tenancy and audit apply exactly as to a question) and waits for the
// query.retrieved event of that request id on searches.moderated: what
// retrieve found, with titles, snippets and headings passed through the
// output policy by moderate (personal data redacted). The edge never talks
// to the vector store, and never sees unmoderated results. Searcher is
// safe for concurrent use.
type Searcher struct {
	pub            Publisher
	topic          string
	timeout        time.Duration
	publishTimeout time.Duration

	mu      sync.Mutex
	waiting map[string]*searchWait
}

type searchWait struct {
	tenant string
	done   chan searchOutcome // buffered: delivery never blocks
}

type searchOutcome struct {
	results []events.RetrievedChunk
	err     error
}

// NewSearcher returns a Searcher that publishes to the queries.received
// topic and gives up on a search after timeout.
func NewSearcher(pub Publisher, queriesTopic string, timeout, publishTimeout time.Duration) *Searcher {
	return &Searcher{pub: pub, topic: queriesTopic, timeout: timeout, publishTimeout: publishTimeout, waiting: map[string]*searchWait{}}
}

// Search runs one search for p.
func (s *Searcher) Search(ctx context.Context, p apikey.Principal, req SearchRequest) (SearchResponse, error) {
	if err := checkSearch(&req); err != nil {
		return SearchResponse{}, err
	}
	requestID := events.NewID()
	w := &searchWait{tenant: p.Tenant, done: make(chan searchOutcome, 1)}
	// Wait before publishing: the results may come back before Publish
	// returns.
	s.mu.Lock()
	s.waiting[requestID] = w
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.waiting, requestID)
		s.mu.Unlock()
	}()

	ctx = events.WithTenant(ctx, p.Tenant)
	ctx = events.WithCorrelationID(ctx, requestID)
	if tp, ok := tracecontext.FromContext(ctx); ok {
		ctx = tracecontext.WithContext(ctx, tp.Child())
	} else {
		ctx = tracecontext.WithContext(ctx, tracecontext.New())
	}
	pctx, cancel := context.WithTimeout(ctx, s.publishTimeout)
	err := s.pub.Publish(pctx, s.topic, events.QueryReceived{Query: events.Query{
		RequestID: requestID,
		TenantID:  p.Tenant,
		Groups:    p.Groups,
		Question:  req.Query,
		TopK:      req.TopK,
		Principal: p.Name,
		Mode:      events.ModeSearch,
		Filter:    req.Filter,
	}})
	cancel()
	if err != nil {
		return SearchResponse{RequestID: requestID}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	timer := time.NewTimer(s.timeout)
	defer timer.Stop()
	select {
	case o := <-w.done:
		if o.err != nil {
			return SearchResponse{RequestID: requestID}, o.err
		}
		return SearchResponse{RequestID: requestID, Results: toResults(o.results)}, nil
	case <-timer.C:
		return SearchResponse{RequestID: requestID}, ErrSearchTimeout
	case <-ctx.Done():
		return SearchResponse{RequestID: requestID}, ctx.Err()
	}
}

func checkSearch(req *SearchRequest) error {
	req.Query = strings.TrimSpace(req.Query)
	switch {
	case req.Query == "":
		return fmt.Errorf("%w: query is required", ErrBadSearch)
	case !utf8.ValidString(req.Query) || utf8.RuneCountInString(req.Query) > maxQueryRunes:
		return fmt.Errorf("%w: query must be valid UTF-8 of at most %d characters", ErrBadSearch, maxQueryRunes)
	case req.TopK < 0 || req.TopK > MaxSearchTopK:
		return fmt.Errorf("%w: top_k must be between 1 and %d", ErrBadSearch, MaxSearchTopK)
	case req.Filter != nil && len(req.Filter.DocumentIDs) > maxFilterIDs:
		return fmt.Errorf("%w: filter.document_ids has more than %d ids", ErrBadSearch, maxFilterIDs)
	}
	if req.TopK == 0 {
		req.TopK = DefaultSearchTopK
	}
	return nil
}

func toResults(hits []events.RetrievedChunk) []SearchResult {
	out := make([]SearchResult, 0, len(hits))
	for _, h := range hits {
		out = append(out, SearchResult{
			DocumentID: h.DocumentID, ChunkID: h.ChunkID, Title: h.Title, Source: h.Source,
			Score: h.Score, Snippet: h.Text, Page: h.Page, HeadingPath: h.HeadingPath,
		})
	}
	return out
}

// deliver hands an outcome to the search waiting for requestID, if it is
// this replica's and of tenant, and reports whether it was.
func (s *Searcher) deliver(requestID, tenant string, o searchOutcome) string {
	s.mu.Lock()
	w, ok := s.waiting[requestID]
	s.mu.Unlock()
	switch {
	case !ok:
		return UnknownRequest
	case w.tenant != tenant:
		return TenantMismatch
	}
	select {
	case w.done <- o:
		return Delivered
	default:
		return Duplicate
	}
}

// DeliverRetrieved routes a query.retrieved event to its search.
func (s *Searcher) DeliverRetrieved(q events.QueryRetrieved) string {
	return s.deliver(q.RequestID, q.TenantID, searchOutcome{results: q.Results})
}

// InterceptRejections wraps the Deliver endpoint: a query.rejected of one
// of this replica's searches ends that search; every other reply goes on
// to next.
func (s *Searcher) InterceptRejections(next endpoint.Endpoint) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		if req, ok := request.(DeliverRequest); ok && req.Reply.Kind == ReplyRejected {
			err := &SearchRejectedError{Code: req.Reply.Code, Message: req.Reply.Message}
			if out := s.deliver(req.Reply.RequestID, req.Reply.TenantID, searchOutcome{err: err}); out != UnknownRequest {
				return DeliverResponse{Outcome: out}, nil
			}
		}
		return next(ctx, request)
	}
}

// SearchGroup returns the consumer group in which replica replicaID reads
// searches.moderated for its searches.
func SearchGroup(replicaID string) string { return GroupPrefix + replicaID + ".retrieved" }

// retrievedRequest is a decoded query.retrieved of a search.
type retrievedRequest struct{ q events.QueryRetrieved }

// NewRetrievedSubscriber returns the subscriber that reads the moderated
// search results (searches.moderated) in group and hands them to s. Like
// the answer subscribers it starts at the newest offset and skips what it
// cannot use: every replica reads every event and keeps its own.
func NewRetrievedSubscriber(brokers []string, group, topic string, pub kafkatransport.Producer, s *Searcher, logger *slog.Logger, opts ...kafkatransport.SubscriberOption) *kafkatransport.Subscriber {
	all := append([]kafkatransport.SubscriberOption{
		kafkatransport.SubscriberErrorPolicy(skipErrors),
		kafkatransport.SubscriberKeyConcurrency(kafkatransport.RequestLanes),
		kafkatransport.SubscriberLogger(logger),
		kafkatransport.SubscriberErrorHandler(errorLogger{logger: logger, topic: topic}),
		kafkatransport.SubscriberReaderConfig(func(rc *kafka.ReaderConfig) {
			rc.StartOffset = kafka.LastOffset
		}),
	}, opts...)
	e := func(_ context.Context, request any) (any, error) {
		switch r := request.(type) {
		case retrievedRequest:
			return DeliverResponse{Outcome: s.DeliverRetrieved(r.q)}, nil
		case undecodable:
			return DeliverResponse{Err: r.err}, nil
		}
		return DeliverResponse{Outcome: UnknownRequest}, nil
	}
	return kafkatransport.NewSubscriber(kafkatransport.SubscriberConfig{
		Brokers: brokers, Group: group, Topic: topic, Producer: pub,
	}, e, decodeRetrieved, nil, all...)
}

// decodeRetrieved decodes a query.retrieved; events of questions (not
// searches) are not this replica's business and are passed over without
// a look at their chunks.
func decodeRetrieved(ctx context.Context, msg kafka.Message) (any, error) {
	req, err := kafkatransport.DecodeEvent(ctx, msg)
	if err != nil {
		return undecodable{err: fmt.Errorf("decode %s/%d@%d: %w", msg.Topic, msg.Partition, msg.Offset, err)}, nil
	}
	ev, _ := req.(kafkatransport.Event)
	q, ok := ev.Payload.(*events.QueryRetrieved)
	if !ok || q.Mode != events.ModeSearch {
		return struct{}{}, nil
	}
	if q.TenantID == "" {
		q.TenantID = ev.Envelope.TenantID
	}
	return retrievedRequest{q: *q}, nil
}

// SearchHandler serves POST /v1/search.
type SearchHandler struct {
	s      *Searcher
	keys   *apikey.Set
	logger *slog.Logger
	// Audit records refused requests (nil: none).
	Audit *auditevent.Recorder
}

// NewSearchHandler returns the handler of POST /v1/search.
func NewSearchHandler(s *Searcher, keys *apikey.Set, logger *slog.Logger) *SearchHandler {
	if keys == nil {
		keys = &apikey.Set{}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &SearchHandler{s: s, keys: keys, logger: logger}
}

// ServeHTTP authenticates the request, runs the search and writes the
// ranked results or a JSON error.
func (h *SearchHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	begin := time.Now()
	p, ok := h.keys.Lookup(apikey.BearerToken(r.Header.Get("Authorization")))
	if !ok {
		h.Audit.AuthFailed(r, "search")
		apikey.WriteUnauthenticated(w)
		return
	}
	var req SearchRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxSearchBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", "body must be a JSON object {query, top_k, filter}: "+err.Error())
		return
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "invalid_request", "trailing data after the JSON body")
		return
	}
	ctx := apikey.WithPrincipal(r.Context(), p)
	res, err := h.s.Search(ctx, p, req)
	status, code := searchStatus(err)
	level := slog.LevelInfo
	if err != nil {
		level = slog.LevelWarn
	}
	h.logger.Log(ctx, level, "search", "request_id", res.RequestID, "tenant", p.Tenant, "principal", p.Name,
		"results", len(res.Results), "status", status, "took_ms", float64(time.Since(begin).Microseconds())/1000)
	if err != nil {
		writeError(w, status, code, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(res)
}

// searchStatus maps a search error to its HTTP status and error code.
func searchStatus(err error) (int, string) {
	var rej *SearchRejectedError
	switch {
	case err == nil:
		return http.StatusOK, ""
	case errors.Is(err, ErrBadSearch):
		return http.StatusBadRequest, "invalid_request"
	case errors.As(err, &rej):
		return http.StatusUnprocessableEntity, "rejected_" + rej.Code
	case errors.Is(err, ErrSearchTimeout):
		return http.StatusGatewayTimeout, "timeout"
	case errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable, "unavailable"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "cancelled"
	}
	return http.StatusInternalServerError, "internal"
}
