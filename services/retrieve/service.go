// Package retrieve is Tributary's retrieval service: it indexes embedded
// chunks in Qdrant (through the official client only), applies document
// versions and deletions, and answers embedded queries with the best chunks
// the asker may see.
//
// See docs/retrieve.md for the collection layout and the version, delete
// and tenancy rules.
package retrieve

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strings"
	"sync"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-rag/tributary/pkg/events"
)

// Business errors.
var (
	// ErrInvalid marks an event that can never be handled (missing tenant,
	// a chunk id that is not the chunk's deterministic id, a vector of the
	// wrong size...). The transport dead-letters it at once.
	ErrInvalid = errors.New("invalid event")
	// ErrStore marks a vector store failure that may pass on retry.
	ErrStore = errors.New("vector store unavailable")
	// ErrPublish marks a failure to publish an event; it may pass on retry.
	ErrPublish = errors.New("publish failed")
)

// Retryable reports whether a failed call may succeed when retried.
func Retryable(err error) bool { return err != nil && !errors.Is(err, ErrInvalid) }

// Outcomes of IndexChunk and AcceptDocument.
const (
	// StatusPending: the chunk is indexed, its version is not complete yet.
	StatusPending = "pending"
	// StatusIndexed: every chunk of the version is indexed, older versions
	// are gone and document.indexed was published (now or before).
	StatusIndexed = "indexed"
	// StatusStale: the version is older than the document's newest indexed
	// version, or was deleted; nothing was kept.
	StatusStale = "stale"
	// StatusIgnored: the event needs no action here.
	StatusIgnored = "ignored"
)

// Defaults of the query limits.
const (
	DefaultTopK = 5
	MaxTopK     = 50
	// DefaultPerDocument is the most chunks of one document in a result.
	DefaultPerDocument = 3
	// DefaultNearDuplicate is the word-trigram Jaccard similarity at which
	// two chunks count as the same text (licences, disclaimers,
	// templates).
	DefaultNearDuplicate = 0.8
)

// IndexResult is the outcome of indexing.
type IndexResult struct {
	Status  string
	Version int
}

// Service indexes chunks, applies versions and deletions, and retrieves.
// Every method acts for the tenant named in its argument, which the
// transport has checked against the event's tenantid header.
type Service interface {
	// IndexChunk upserts one embedded chunk; when it completes its version,
	// the older versions' points are deleted and document.indexed is
	// published.
	IndexChunk(ctx context.Context, c events.ChunkEmbedded) (IndexResult, error)
	// AcceptDocument completes a version that has no chunks at all;
	// versions with chunks complete through IndexChunk.
	AcceptDocument(ctx context.Context, d events.DocumentAccepted) (IndexResult, error)
	// DeleteDocument deletes the document's points of the deleted version
	// and older (all of them when the event names no version) and keeps
	// those versions from coming back; a newer version, ingested after the
	// deletion, is left alone.
	DeleteDocument(ctx context.Context, d events.DocumentDeleted) error
	// Retrieve answers a query with the chunks of the asker's tenant and
	// groups that match it best.
	Retrieve(ctx context.Context, q events.QueryEmbedded) (events.QueryRetrieved, error)
}

// ContextChunk is a chunk with the context of the event that carried it
// (tenant, correlation id and trace), which a document.indexed it
// completes continues.
type ContextChunk struct {
	Ctx   context.Context
	Chunk events.ChunkEmbedded
}

// BatchIndexer indexes several chunks with one store write. The Service of
// NewService and the package's middlewares implement it.
type BatchIndexer interface {
	// IndexChunks does for each chunk, in order, what IndexChunk does,
	// with one wait=true upsert for all their points and one read of each
	// touched document's state. It returns one result and one error per
	// chunk (an invalid chunk fails alone and writes nothing); err fails
	// the whole batch (a store or publish failure): some chunks may be
	// indexed already, and handling them again is harmless.
	IndexChunks(ctx context.Context, chunks []ContextChunk) (results []IndexResult, errs []error, err error)
}

// IndexChunks indexes chunks through s: in one batch when s is a
// BatchIndexer, else one IndexChunk at a time (stopping at the first
// retryable failure, which fails the whole call).
func IndexChunks(ctx context.Context, s Service, chunks []ContextChunk) ([]IndexResult, []error, error) {
	if b, ok := s.(BatchIndexer); ok {
		return b.IndexChunks(ctx, chunks)
	}
	results := make([]IndexResult, len(chunks))
	errs := make([]error, len(chunks))
	for i, c := range chunks {
		res, err := s.IndexChunk(c.Ctx, c.Chunk)
		if err != nil && Retryable(err) {
			return nil, nil, err
		}
		results[i], errs[i] = res, err
	}
	return results, errs, nil
}

// Emitter publishes the service's own events.
type Emitter interface {
	// Indexed publishes tributary.document.indexed; its ce_id is
	// deterministic, so a repeat carries the same idempotency key.
	Indexed(ctx context.Context, d events.DocumentIndexed) error
}

// Option configures the service.
type Option func(*service)

// WithTopK sets the default and the largest number of results per query
// (defaults DefaultTopK and MaxTopK).
func WithTopK(def, maxK int) Option {
	return func(s *service) {
		if def > 0 {
			s.topK = def
		}
		if maxK > 0 {
			s.maxTopK = maxK
		}
	}
}

// WithCrowding sets how results are kept from crowding: at most
// perDocument chunks of one document (0: no limit), and chunks whose text
// is near-identical to a better one (word-trigram Jaccard similarity at
// least nearDuplicate; 1 collapses only identical texts, above 1 none)
// collapsed into it (defaults DefaultPerDocument, DefaultNearDuplicate).
func WithCrowding(perDocument int, nearDuplicate float64) Option {
	return func(s *service) {
		s.perDocument, s.nearDuplicate = perDocument, nearDuplicate
	}
}

// The values of WithSearchVectors.
const (
	VectorsHybrid = "hybrid"
	VectorsDense  = "dense"
	VectorsSparse = "sparse"
)

// WithSearchVectors makes queries search only their dense (VectorsDense)
// or only their sparse (VectorsSparse) vector, to compare the stages or
// to run one of them alone; the default, VectorsHybrid, searches both
// when a query has both and fuses them with RRF. A query without the
// selected vector finds nothing.
func WithSearchVectors(v string) Option {
	return func(s *service) { s.vectors = v }
}

// NewService returns the service on ix, publishing through emit.
func NewService(ix *Index, emit Emitter, opts ...Option) Service {
	s := &service{
		ix:            ix,
		emit:          emit,
		topK:          DefaultTopK,
		maxTopK:       MaxTopK,
		perDocument:   DefaultPerDocument,
		nearDuplicate: DefaultNearDuplicate,
		locks:         newKeyedMutex(),
		progress:      map[versionKey]map[int]struct{}{},
	}
	for _, o := range opts {
		o(s)
	}
	s.topK = min(s.topK, s.maxTopK)
	return s
}

type versionKey struct {
	tenant, document string
	version          int
}

// maxTracked bounds the in-memory progress map; past it, progress is
// forgotten and completion falls back to counting at the last chunk.
const maxTracked = 100_000

type service struct {
	ix      *Index
	emit    Emitter
	topK    int
	maxTopK int
	// perDocument and nearDuplicate: see WithCrowding.
	perDocument   int
	nearDuplicate float64
	locks         *keyedMutex
	// reranker, when set, reorders the best rerankCandidates hits (see
	// WithReranker).
	reranker         Reranker
	rerankCandidates int
	rerankLatency    prometheus.Observer
	// vectors: see WithSearchVectors.
	vectors string

	mu sync.Mutex
	// progress holds the chunk indexes of each incomplete version seen by
	// this process. It is only a hint of when to count: the points in the
	// store are the truth.
	progress map[versionKey]map[int]struct{}
}

func docKey(tenant, documentID string) string {
	return fmt.Sprintf("%d:%s/%s", len(tenant), tenant, documentID)
}

// validateChunk refuses chunks that can never be indexed. The chunk id
// must be the deterministic id of (tenant, document, version, index): the
// point id is the chunk id, so an arbitrary id could overwrite another
// tenant's point.
func (s *service) validateChunk(c events.ChunkEmbedded) error {
	switch {
	case c.TenantID == "":
		return fmt.Errorf("%w: chunk without tenant", ErrInvalid)
	case c.DocumentID == "":
		return fmt.Errorf("%w: chunk without document id", ErrInvalid)
	case c.Version < 1:
		return fmt.Errorf("%w: chunk version %d", ErrInvalid, c.Version)
	case c.ChunkCount < 1 || c.Index < 0 || c.Index >= c.ChunkCount:
		return fmt.Errorf("%w: chunk index %d of %d", ErrInvalid, c.Index, c.ChunkCount)
	case c.ChunkID != events.ChunkID(c.TenantID, c.DocumentID, c.Version, c.Index):
		return fmt.Errorf("%w: chunk id %q is not the id of %s version %d index %d", ErrInvalid, c.ChunkID, c.DocumentID, c.Version, c.Index)
	case len(c.Dense) == 0 && (c.Sparse == nil || len(c.Sparse.Indices) == 0):
		return fmt.Errorf("%w: chunk %s has no vector", ErrInvalid, c.ChunkID)
	case len(c.Dense) > 0 && len(c.Dense) != s.ix.DenseSize():
		return fmt.Errorf("%w: chunk %s has a dense vector of size %d, the collection %d", ErrInvalid, c.ChunkID, len(c.Dense), s.ix.DenseSize())
	}
	if err := checkVectors(c.Dense, c.Sparse); err != nil {
		return fmt.Errorf("%w: chunk %s: %w", ErrInvalid, c.ChunkID, err)
	}
	return nil
}

func checkVectors(dense []float32, sparse *events.SparseVector) error {
	for _, x := range dense {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return errors.New("dense vector has a non-finite value")
		}
	}
	if sparse == nil {
		return nil
	}
	if len(sparse.Indices) != len(sparse.Values) {
		return fmt.Errorf("sparse vector has %d indices and %d values", len(sparse.Indices), len(sparse.Values))
	}
	seen := make(map[uint32]struct{}, len(sparse.Indices))
	for i, ix := range sparse.Indices {
		if _, dup := seen[ix]; dup {
			return fmt.Errorf("sparse vector repeats index %d", ix)
		}
		seen[ix] = struct{}{}
		v := sparse.Values[i]
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return errors.New("sparse vector has a non-finite value")
		}
	}
	return nil
}

func (s *service) IndexChunk(ctx context.Context, c events.ChunkEmbedded) (IndexResult, error) {
	if err := s.validateChunk(c); err != nil {
		return IndexResult{}, err
	}
	unlock := s.locks.Lock(docKey(c.TenantID, c.DocumentID))
	defer unlock()

	// Write first, then read the document's state: a newer version that
	// completes or a deletion that lands meanwhile writes its state before
	// it deletes, so either this read sees it or its delete removes this
	// point (see docs/retrieve.md, "Versions").
	if err := s.ix.Upsert(ctx, c); err != nil {
		return IndexResult{}, err
	}
	st, err := s.ix.State(ctx, c.TenantID, c.DocumentID)
	if err != nil {
		return IndexResult{}, err
	}
	if st.Supersedes(c.Version) {
		if err := s.ix.DeleteVersion(ctx, c.TenantID, c.DocumentID, c.Version); err != nil {
			return IndexResult{}, err
		}
		s.forget(versionKey{c.TenantID, c.DocumentID, c.Version})
		return IndexResult{Status: StatusStale, Version: c.Version}, nil
	}
	if !s.track(versionKey{c.TenantID, c.DocumentID, c.Version}, c.Index, c.ChunkCount) {
		return IndexResult{Status: StatusPending, Version: c.Version}, nil
	}
	return s.complete(ctx, c.TenantID, c.DocumentID, c.Version, c.ChunkCount, st)
}

func (s *service) IndexChunks(ctx context.Context, chunks []ContextChunk) ([]IndexResult, []error, error) {
	results := make([]IndexResult, len(chunks))
	errs := make([]error, len(chunks))
	valid := make([]int, 0, len(chunks))
	points := make([]events.ChunkEmbedded, 0, len(chunks))
	var keys []string
	for i, c := range chunks {
		if err := s.validateChunk(c.Chunk); err != nil {
			errs[i] = err
			continue
		}
		valid = append(valid, i)
		points = append(points, c.Chunk)
		keys = append(keys, docKey(c.Chunk.TenantID, c.Chunk.DocumentID))
	}
	if len(valid) == 0 {
		return results, errs, nil
	}
	// Lock every touched document, in one order, so two batches cannot
	// deadlock; single-document callers take one lock.
	slices.Sort(keys)
	for _, k := range slices.Compact(keys) {
		unlock := s.locks.Lock(k)
		defer unlock()
	}

	// As in IndexChunk: write first, then read each document's state. Every
	// point of the batch is written before any state is read, so one read
	// per document serves all its chunks.
	if err := s.ix.UpsertMany(ctx, points); err != nil {
		return nil, nil, err
	}
	states := map[string]DocState{}
	dropped := map[versionKey]bool{}
	for _, i := range valid {
		c := chunks[i].Chunk
		key := docKey(c.TenantID, c.DocumentID)
		st, ok := states[key]
		if !ok {
			var err error
			if st, err = s.ix.State(ctx, c.TenantID, c.DocumentID); err != nil {
				return nil, nil, err
			}
			states[key] = st
		}
		vk := versionKey{c.TenantID, c.DocumentID, c.Version}
		if st.Supersedes(c.Version) {
			if !dropped[vk] {
				if err := s.ix.DeleteVersion(ctx, c.TenantID, c.DocumentID, c.Version); err != nil {
					return nil, nil, err
				}
				dropped[vk] = true
			}
			s.forget(vk)
			results[i] = IndexResult{Status: StatusStale, Version: c.Version}
			continue
		}
		if !s.track(vk, c.Index, c.ChunkCount) {
			results[i] = IndexResult{Status: StatusPending, Version: c.Version}
			continue
		}
		res, next, err := s.completeState(chunks[i].Ctx, c.TenantID, c.DocumentID, c.Version, c.ChunkCount, st)
		if err != nil {
			return nil, nil, err
		}
		states[key] = next
		results[i] = res
	}
	return results, errs, nil
}

// track records a chunk and reports whether its version may be complete:
// every index was seen by this process, or this is the last index (chunks
// of a document arrive in index order on one partition, and after a restart
// the earlier ones may have been handled by a previous process).
func (s *service) track(k versionKey, index, count int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen, ok := s.progress[k]
	if !ok {
		if len(s.progress) >= maxTracked {
			clear(s.progress)
		}
		seen = map[int]struct{}{}
		s.progress[k] = seen
	}
	seen[index] = struct{}{}
	return len(seen) >= count || index == count-1
}

func (s *service) forget(k versionKey) {
	s.mu.Lock()
	delete(s.progress, k)
	s.mu.Unlock()
}

// complete finishes a version whose points all exist: it records the
// version as indexed, deletes older versions and announces it once.
// Caller holds the document's lock.
func (s *service) complete(ctx context.Context, tenant, documentID string, version, count int, st DocState) (IndexResult, error) {
	res, _, err := s.completeState(ctx, tenant, documentID, version, count, st)
	return res, err
}

// completeState is complete that also returns the document's state after
// it.
func (s *service) completeState(ctx context.Context, tenant, documentID string, version, count int, st DocState) (IndexResult, DocState, error) {
	n, err := s.ix.CountVersion(ctx, tenant, documentID, version)
	if err != nil {
		return IndexResult{}, st, err
	}
	if n < count {
		return IndexResult{Status: StatusPending, Version: version}, st, nil
	}
	if st.Indexed < version {
		st.Indexed = version
		if err := s.ix.SetState(ctx, tenant, documentID, st); err != nil {
			return IndexResult{}, st, err
		}
	}
	if err := s.ix.DeleteVersions(ctx, tenant, documentID, version); err != nil {
		return IndexResult{}, st, err
	}
	if st.Announced < version {
		err := s.emit.Indexed(ctx, events.DocumentIndexed{
			DocumentID: documentID,
			TenantID:   tenant,
			Version:    version,
			ChunkCount: count,
			Collection: s.ix.Collection(),
		})
		if err != nil {
			return IndexResult{}, st, fmt.Errorf("%w: document.indexed: %w", ErrPublish, err)
		}
		st.Announced = version
		if err := s.ix.SetState(ctx, tenant, documentID, st); err != nil {
			return IndexResult{}, st, err
		}
	}
	s.forget(versionKey{tenant, documentID, version})
	return IndexResult{Status: StatusIndexed, Version: version}, st, nil
}

func (s *service) AcceptDocument(ctx context.Context, d events.DocumentAccepted) (IndexResult, error) {
	if d.TenantID == "" || d.DocumentID == "" || d.Version < 1 {
		return IndexResult{}, fmt.Errorf("%w: document.accepted needs tenant, document id and version", ErrInvalid)
	}
	if d.ChunkCount > 0 {
		return IndexResult{Status: StatusIgnored, Version: d.Version}, nil
	}
	unlock := s.locks.Lock(docKey(d.TenantID, d.DocumentID))
	defer unlock()
	st, err := s.ix.State(ctx, d.TenantID, d.DocumentID)
	if err != nil {
		return IndexResult{}, err
	}
	if st.Supersedes(d.Version) {
		return IndexResult{Status: StatusStale, Version: d.Version}, nil
	}
	return s.complete(ctx, d.TenantID, d.DocumentID, d.Version, 0, st)
}

func (s *service) DeleteDocument(ctx context.Context, d events.DocumentDeleted) error {
	if d.TenantID == "" || d.DocumentID == "" || d.Version < 0 {
		return fmt.Errorf("%w: document.deleted needs tenant and document id", ErrInvalid)
	}
	unlock := s.locks.Lock(docKey(d.TenantID, d.DocumentID))
	defer unlock()
	st, err := s.ix.State(ctx, d.TenantID, d.DocumentID)
	if err != nil {
		return err
	}
	// The tombstone goes first, the points after (see IndexChunk).
	if d.Version > st.Deleted {
		st.Deleted = d.Version
		if err := s.ix.SetState(ctx, d.TenantID, d.DocumentID, st); err != nil {
			return err
		}
	}
	if err := s.ix.DeleteDocument(ctx, d.TenantID, d.DocumentID, d.Version); err != nil {
		return err
	}
	s.mu.Lock()
	for k := range s.progress {
		if k.tenant == d.TenantID && k.document == d.DocumentID && (d.Version == 0 || k.version <= d.Version) {
			delete(s.progress, k)
		}
	}
	s.mu.Unlock()
	return nil
}

func (s *service) Retrieve(ctx context.Context, q events.QueryEmbedded) (events.QueryRetrieved, error) {
	if q.TenantID == "" || q.RequestID == "" {
		return events.QueryRetrieved{}, fmt.Errorf("%w: query needs tenant and request id", ErrInvalid)
	}
	if len(q.Dense) > 0 && len(q.Dense) != s.ix.DenseSize() {
		return events.QueryRetrieved{}, fmt.Errorf("%w: query has a dense vector of size %d, the collection %d", ErrInvalid, len(q.Dense), s.ix.DenseSize())
	}
	if err := checkVectors(q.Dense, q.Sparse); err != nil {
		return events.QueryRetrieved{}, fmt.Errorf("%w: query: %w", ErrInvalid, err)
	}
	k := q.TopK
	switch {
	case k <= 0:
		k = s.topK
	case k > s.maxTopK:
		k = s.maxTopK
	}
	n, rerank := k, s.reranker != nil && strings.TrimSpace(q.Question) != ""
	if rerank {
		n = max(k, s.rerankCandidates)
	}
	dense, sparse := q.Dense, q.Sparse
	switch s.vectors {
	case VectorsDense:
		sparse = nil
	case VectorsSparse:
		dense = nil
	}
	hits, err := s.ix.Search(ctx, SearchRequest{
		Tenant: q.TenantID,
		Groups: q.Groups,
		Dense:  dense,
		Sparse: sparse,
		Limit:  max(4*n, 20), // so that n remain after near-duplicates and crowding
		Filter: q.Filter,
	})
	if err != nil {
		return events.QueryRetrieved{}, err
	}
	hits = uncrowd(applyFilter(hits, q.Filter), n, s.perDocument, s.nearDuplicate)
	if rerank {
		if hits, err = s.rerank(ctx, q.Question, hits, k); err != nil {
			return events.QueryRetrieved{}, err
		}
	}
	return events.QueryRetrieved{Query: q.Query, Results: hits}, nil
}

// applyFilter keeps the hits that pass f exactly. The index already
// searched with f (queryConditions); this cuts its substring match of the
// source prefix down to the prefix.
func applyFilter(hits []events.RetrievedChunk, f *events.QueryFilter) []events.RetrievedChunk {
	if f == nil || (len(f.DocumentIDs) == 0 && f.SourcePrefix == "") {
		return hits
	}
	out := hits[:0:0]
	for _, h := range hits {
		if len(f.DocumentIDs) > 0 && !slices.Contains(f.DocumentIDs, h.DocumentID) {
			continue
		}
		if !strings.HasPrefix(h.Source, f.SourcePrefix) {
			continue
		}
		out = append(out, h)
	}
	return out
}

// uncrowd returns at most k of hits (best first), skipping a hit whose
// text is a near-duplicate of a kept one (the better-scoring copy stays:
// hits are in score order) and the hits of a document that has
// perDocument already (0: no limit). Never nil.
func uncrowd(hits []events.RetrievedChunk, k, perDocument int, nearDuplicate float64) []events.RetrievedChunk {
	out := make([]events.RetrievedChunk, 0, min(k, len(hits)))
	perDoc := map[string]int{}
	exact := map[string]bool{}
	var shingles [][]uint64
	for _, h := range hits {
		if len(out) == k {
			break
		}
		if perDocument > 0 && perDoc[h.DocumentID] >= perDocument {
			continue
		}
		norm := normalizeText(h.Text)
		if nearDuplicate <= 1 && exact[norm] {
			continue
		}
		sh := trigrams(norm)
		if nearDuplicate < 1 && slices.ContainsFunc(shingles, func(o []uint64) bool { return jaccard(sh, o) >= nearDuplicate }) {
			continue
		}
		exact[norm] = true
		shingles = append(shingles, sh)
		perDoc[h.DocumentID]++
		out = append(out, h)
	}
	return out
}

// normalizeText lowercases text and reduces it to its words separated by
// single spaces, so that copies differing in case, punctuation or line
// breaks compare equal.
func normalizeText(s string) string {
	return strings.Join(strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	}), " ")
}

// trigrams returns the hashed word trigrams of a normalized text (its
// words when it has fewer than three), sorted and distinct.
func trigrams(norm string) []uint64 {
	words := strings.Fields(norm)
	if len(words) < 3 {
		return []uint64{fnv64(norm)}
	}
	out := make([]uint64, 0, len(words)-2)
	for i := 0; i+3 <= len(words); i++ {
		out = append(out, fnv64(words[i]+" "+words[i+1]+" "+words[i+2]))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// jaccard returns |a∩b| / |a∪b| of two sorted, distinct sets.
func jaccard(a, b []uint64) float64 {
	inter := 0
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch {
		case a[i] == b[j]:
			inter++
			i++
			j++
		case a[i] < b[j]:
			i++
		default:
			j++
		}
	}
	union := len(a) + len(b) - inter
	if union == 0 {
		return 1
	}
	return float64(inter) / float64(union)
}

func fnv64(s string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	return h.Sum64()
}

// keyedMutex serializes work per key; entries live while someone holds or
// waits for them.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyedEntry
}

type keyedEntry struct {
	mu   sync.Mutex
	refs int
}

func newKeyedMutex() *keyedMutex { return &keyedMutex{m: map[string]*keyedEntry{}} }

// Lock locks key and returns its unlock function.
func (k *keyedMutex) Lock(key string) func() {
	k.mu.Lock()
	e, ok := k.m[key]
	if !ok {
		e = &keyedEntry{}
		k.m[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		e.refs--
		if e.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}
