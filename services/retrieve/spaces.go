package retrieve

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tributary-rag/tributary/pkg/events"
)

// KindSpace is the kind of a collection's meta point: the embedding model
// its vectors come from and when the collection was created.
const KindSpace = "space"

// Payload keys of a space's meta point.
const (
	FieldDim     = "dim"
	FieldCreated = "created_unix_nano"
)

// DefaultRetireAfter is how long a replaced collection is kept after the
// alias moved off it, for questions still embedded with its model.
const DefaultRetireAfter = time.Hour

// DefaultCheckEvery is how often Spaces checks whether a rebuilt
// collection has caught up.
const DefaultCheckEvery = 10 * time.Second

// SpaceName is the collection of the vectors of model (the events' model
// name, sparse and dense parts) with dense vectors of dim dimensions:
// "<base>__<slug>_<dim>". The slug is the model name cut to [a-z0-9-] and
// 64 characters, plus 8 hex digits of its FNV-1a hash, so two models never
// share a collection even when their slugs do.
func SpaceName(base, model string, dim int) string {
	var b strings.Builder
	for _, r := range strings.ToLower(model) {
		if b.Len() >= 64 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else if s := b.String(); s != "" && !strings.HasSuffix(s, "-") {
			b.WriteByte('-')
		}
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(model))
	return fmt.Sprintf("%s__%s%08x_%d", base, b.String(), h.Sum32(), dim)
}

// space is one collection of one embedding space, and the service on it.
type space struct {
	name    string
	model   string // "" for an empty collection made before spaces
	dim     int
	created int64
	// legacy: a collection made before spaces (no meta point); its model
	// is its chunks', and sparse-only chunks of that model go to it too.
	legacy bool
	ix     *Index
	svc    Service
	// seedFrom is the collection whose document states seed this one
	// (see seed); "" once done or when there is nothing to copy.
	seedMu   sync.Mutex
	seedFrom string
}

// Spaces is a Service over one collection per embedding model, reached for
// questions through an alias, so that a new model's collection is built
// in the background and swapped in atomically (docs/retrieve.md, "Changing
// the embedding model"). Chunks go to the collection of their event's
// model and dimension, created on first sight; deletions and empty
// versions go to every collection; a question goes to the collection of
// its own model, never to another model's vectors. Spaces is safe for
// concurrent use.
type Spaces struct {
	client      *qdrant.Client
	base        string
	denseSize   int
	ixOpts      []IndexOption
	svcOpts     []Option
	emit        Emitter
	retireAfter time.Duration
	logger      *slog.Logger
	now         func() time.Time
	dropped     *prometheus.CounterVec

	mu       sync.Mutex
	spaces   map[string]*space
	active   string
	retiring map[string]time.Time
}

// SpacesOption configures NewSpaces.
type SpacesOption func(*Spaces)

// WithRetireAfter sets how long a replaced collection stays (default
// DefaultRetireAfter).
func WithRetireAfter(d time.Duration) SpacesOption { return func(s *Spaces) { s.retireAfter = d } }

// WithSpacesLogger logs alias switches and dropped collections to l.
func WithSpacesLogger(l *slog.Logger) SpacesOption { return func(s *Spaces) { s.logger = l } }

// WithSpaceIndexOptions and WithSpaceServiceOptions configure each
// collection's Index and Service (WithAlias is ignored: the alias is
// Spaces').
func WithSpaceIndexOptions(o ...IndexOption) SpacesOption {
	return func(s *Spaces) { s.ixOpts = append(s.ixOpts, o...) }
}

// WithSpaceServiceOptions: see WithSpaceIndexOptions.
func WithSpaceServiceOptions(o ...Option) SpacesOption {
	return func(s *Spaces) { s.svcOpts = append(s.svcOpts, o...) }
}

// NewSpaces returns Spaces on the collections "<base>__…" behind the alias
// base, publishing document.indexed (for the active collection only)
// through emit. denseSize is the dense size of a collection made for
// sparse-only events. Call Load before use.
func NewSpaces(client *qdrant.Client, base string, denseSize int, emit Emitter, opts ...SpacesOption) *Spaces {
	s := &Spaces{client: client, base: base, denseSize: denseSize, emit: emit, retireAfter: DefaultRetireAfter,
		logger: slog.New(slog.DiscardHandler), now: time.Now, spaces: map[string]*space{}, retiring: map[string]time.Time{},
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tributary", Subsystem: "retrieve", Name: "query_vectors_dropped_total",
			Help: "Query vectors left out because their model is not the active collection's (vector: dense, sparse).",
		}, []string{"vector"})}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Register registers tributary_retrieve_query_vectors_dropped_total with
// reg (nil: none).
func (s *Spaces) Register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	return reg.Register(s.dropped)
}

// Active returns the collection the alias points at ("" before the first
// chunk).
func (s *Spaces) Active() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active
}

// Load reads the alias and the existing collections. A collection the
// alias points at that is not a space (made before spaces) is kept as the
// active one, its model read from one of its chunks, until a newer space
// catches up with it. Spaces older than the active one are retiring, their
// grace counted from now; collections dropped meanwhile (by another
// replica) are forgotten.
func (s *Spaces) Load(ctx context.Context) error {
	target, err := s.aliasTarget(ctx)
	if err != nil {
		return err
	}
	names, err := s.client.ListCollections(ctx)
	if err != nil {
		return fmt.Errorf("list collections: %w", err)
	}
	opened := map[string]*space{}
	for _, name := range names {
		if !strings.HasPrefix(name, s.base+"__") && name != target {
			continue
		}
		s.mu.Lock()
		_, known := s.spaces[name]
		s.mu.Unlock()
		if known {
			continue
		}
		sp, err := s.open(ctx, name)
		if err != nil {
			return err
		}
		opened[name] = sp
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, sp := range opened {
		if _, ok := s.spaces[name]; !ok {
			s.spaces[name] = sp
		}
	}
	for name := range s.spaces {
		if !slices.Contains(names, name) {
			delete(s.spaces, name)
			delete(s.retiring, name)
		}
	}
	if target == "" && len(s.spaces) > 0 {
		// Spaces without the alias (it was deleted by hand): the oldest
		// one is complete, as the first one always is.
		for name, sp := range s.spaces {
			if target == "" || sp.created < s.spaces[target].created {
				target = name
			}
		}
		if err := s.client.CreateAlias(ctx, s.base, target); err != nil {
			return fmt.Errorf("create alias %s: %w", s.base, err)
		}
	}
	s.active = target
	if a, ok := s.spaces[target]; ok {
		for name, sp := range s.spaces {
			if name != target && sp.created < a.created {
				if _, ok := s.retiring[name]; !ok {
					s.retiring[name] = s.now()
				}
			}
		}
	}
	return nil
}

// aliasTarget is the collection of the alias base, or "".
func (s *Spaces) aliasTarget(ctx context.Context) (string, error) {
	aliases, err := s.client.ListAliases(ctx)
	if err != nil {
		return "", fmt.Errorf("list aliases: %w", err)
	}
	for _, a := range aliases {
		if a.GetAliasName() == s.base {
			return a.GetCollectionName(), nil
		}
	}
	return "", nil
}

// metaID is the id of a collection's meta point.
func metaID(name string) string { return events.DeterministicID("tributary/retrieve", KindSpace, name) }

// open reads an existing collection's meta point.
func (s *Spaces) open(ctx context.Context, name string) (*space, error) {
	pts, err := s.client.Get(ctx, &qdrant.GetPoints{CollectionName: name,
		Ids: []*qdrant.PointId{qdrant.NewID(metaID(name))}, WithPayload: qdrant.NewWithPayload(true)})
	if err != nil {
		return nil, storeError("read collection meta", err)
	}
	info, err := s.client.GetCollectionInfo(ctx, name)
	if err != nil {
		return nil, storeError("describe collection", err)
	}
	dense := int(info.GetConfig().GetParams().GetVectorsConfig().GetParamsMap().GetMap()[DenseVector].GetSize())
	sp := &space{name: name, dim: dense}
	if len(pts) == 1 {
		p := pts[0].GetPayload()
		sp.model, sp.created = p[FieldModel].GetStringValue(), p[FieldCreated].GetIntegerValue()
	} else {
		sp.legacy = true
		chunks, err := s.client.Scroll(ctx, &qdrant.ScrollPoints{CollectionName: name,
			Filter: &qdrant.Filter{Must: []*qdrant.Condition{qdrant.NewMatchKeyword(FieldKind, KindChunk)}},
			Limit:  qdrant.PtrOf(uint32(1)), WithPayload: qdrant.NewWithPayloadInclude(FieldModel)})
		if err != nil {
			return nil, storeError("read a chunk of "+name, err)
		}
		if len(chunks) == 1 {
			sp.model = chunks[0].GetPayload()[FieldModel].GetStringValue()
		}
	}
	sp.ix = NewIndex(s.client, name, dense, s.ixOpts...)
	sp.ix.alias = false
	sp.svc = NewService(sp.ix, spaceEmitter{s, name}, s.svcOpts...)
	return sp, nil
}

// spaceFor returns the space of model and dim, creating its collection
// (and, when there is none, the alias) on first sight.
func (s *Spaces) spaceFor(ctx context.Context, model string, dim int) (*space, error) {
	name := SpaceName(s.base, model, dim)
	s.mu.Lock()
	sp := s.lookup(model, dim)
	s.mu.Unlock()
	if sp != nil {
		return sp, nil
	}
	size := dim
	if size == 0 {
		size = s.denseSize
	}
	ix := NewIndex(s.client, name, size, s.ixOpts...)
	ix.alias = false
	if err := ix.Ensure(ctx); err != nil {
		return nil, err
	}
	sp = &space{name: name, model: model, dim: dim, created: s.now().UnixNano(), ix: ix}
	s.mu.Lock()
	if a, ok := s.spaces[s.active]; ok && sp.created <= a.created {
		sp.created = a.created + 1 // newer than the active one, whatever the clocks say
	}
	s.mu.Unlock()
	sp.svc = NewService(ix, spaceEmitter{s, name}, s.svcOpts...)
	existing, err := s.open(ctx, name)
	if err != nil {
		return nil, err
	}
	if existing.created != 0 { // another replica made it first
		sp.created = existing.created
	} else if _, err := s.client.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: name, Wait: qdrant.PtrOf(true),
		Points: []*qdrant.PointStruct{{Id: qdrant.NewID(metaID(name)), Vectors: qdrant.NewVectorsMap(map[string]*qdrant.Vector{}),
			Payload: map[string]*qdrant.Value{FieldKind: qdrant.NewValueString(KindSpace), FieldModel: qdrant.NewValueString(model),
				FieldDim: qdrant.NewValueInt(int64(dim)), FieldCreated: qdrant.NewValueInt(sp.created)}}}}); err != nil {
		return nil, storeError("write collection meta", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev, ok := s.spaces[name]; ok {
		return prev, nil
	}
	s.spaces[name] = sp
	sp.seedFrom = s.active
	if s.active == "" {
		// The first collection is complete by definition: point the alias
		// at it at once. Creating an alias that exists re-points it, so a
		// racing replica converges on one of the two; Load fixes ours.
		if err := s.client.CreateAlias(ctx, s.base, name); err != nil {
			return nil, fmt.Errorf("%w: create alias %s: %w", ErrStore, s.base, err)
		}
		s.active = name
		s.logger.Info("collection alias created", "alias", s.base, "collection", name, "model", model)
	}
	return sp, nil
}

// seed copies the document states (indexed, announced and deleted
// versions) of the collection that was active when sp was made into sp,
// once, before sp's first chunk: replayed chunks of versions that were
// replaced or deleted before the rebuild began are then dropped as stale,
// as they were in the active collection. Deletions that arrive later reach
// sp directly (DeleteDocument goes to every collection). Versions only
// grow, so each state is merged field by field with what sp already has.
func (s *Spaces) seed(ctx context.Context, sp *space) error {
	sp.seedMu.Lock()
	defer sp.seedMu.Unlock()
	if sp.seedFrom == "" {
		return nil
	}
	s.mu.Lock()
	from, ok := s.spaces[sp.seedFrom]
	s.mu.Unlock()
	if ok {
		var offset *qdrant.PointId
		for {
			pts, next, err := s.client.ScrollAndOffset(ctx, &qdrant.ScrollPoints{CollectionName: from.name,
				Filter: &qdrant.Filter{Must: []*qdrant.Condition{qdrant.NewMatchKeyword(FieldKind, KindDocumentState)}},
				Offset: offset, Limit: qdrant.PtrOf(uint32(500)),
				WithPayload: qdrant.NewWithPayload(true), WithVectors: qdrant.NewWithVectors(false)})
			if err != nil {
				return storeError("scroll document states of "+from.name, err)
			}
			for _, p := range pts {
				pl := p.GetPayload()
				tenant, doc := pl[FieldTenant].GetStringValue(), pl[FieldDocumentID].GetStringValue()
				cur, err := sp.ix.State(ctx, tenant, doc)
				if err != nil {
					return err
				}
				merged := DocState{
					Indexed:   max(cur.Indexed, int(pl[FieldIndexedVersion].GetIntegerValue())),
					Announced: max(cur.Announced, int(pl[FieldAnnouncedVersion].GetIntegerValue())),
					Deleted:   max(cur.Deleted, int(pl[FieldDeletedVersion].GetIntegerValue())),
				}
				if merged != cur {
					if err := sp.ix.SetState(ctx, tenant, doc, merged); err != nil {
						return err
					}
				}
			}
			if next == nil || len(pts) == 0 {
				break
			}
			offset = next
		}
	}
	sp.seedFrom = ""
	return nil
}

// lookup returns the space of model and dim: its own collection, or a
// collection made before spaces whose chunks are of that model. s.mu is
// held.
func (s *Spaces) lookup(model string, dim int) *space {
	if sp, ok := s.spaces[SpaceName(s.base, model, dim)]; ok {
		return sp
	}
	for _, sp := range s.spaces {
		if sp.legacy && sp.model != "" && sp.model == model && (dim == sp.dim || dim == 0) {
			return sp
		}
	}
	return nil
}

// spaceEmitter publishes document.indexed for the active collection only:
// a collection being rebuilt completes old versions again, which must not
// announce them again.
type spaceEmitter struct {
	s    *Spaces
	name string
}

func (e spaceEmitter) Indexed(ctx context.Context, d events.DocumentIndexed) error {
	if e.s.Active() != e.name {
		return nil
	}
	return e.s.emit.Indexed(ctx, d)
}

func (s *Spaces) all() []*space {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*space, 0, len(s.spaces))
	for _, sp := range s.spaces {
		out = append(out, sp)
	}
	slices.SortFunc(out, func(a, b *space) int { return strings.Compare(a.name, b.name) })
	return out
}

// IndexChunk implements Service: the chunk goes to its model's collection.
func (s *Spaces) IndexChunk(ctx context.Context, c events.ChunkEmbedded) (IndexResult, error) {
	if c.Model == "" {
		return IndexResult{}, fmt.Errorf("%w: chunk %s without model", ErrInvalid, c.ChunkID)
	}
	sp, err := s.spaceFor(ctx, c.Model, len(c.Dense))
	if err != nil {
		return IndexResult{}, err
	}
	if err := s.seed(ctx, sp); err != nil {
		return IndexResult{}, err
	}
	return sp.svc.IndexChunk(ctx, c)
}

// IndexChunks implements BatchIndexer: each model's chunks go together to
// its collection.
func (s *Spaces) IndexChunks(ctx context.Context, chunks []ContextChunk) ([]IndexResult, []error, error) {
	results := make([]IndexResult, len(chunks))
	errs := make([]error, len(chunks))
	groups := map[*space][]int{}
	var order []*space
	for i, c := range chunks {
		if c.Chunk.Model == "" {
			errs[i] = fmt.Errorf("%w: chunk %s without model", ErrInvalid, c.Chunk.ChunkID)
			continue
		}
		sp, err := s.spaceFor(ctx, c.Chunk.Model, len(c.Chunk.Dense))
		if err != nil {
			return nil, nil, err
		}
		if err := s.seed(ctx, sp); err != nil {
			return nil, nil, err
		}
		if _, ok := groups[sp]; !ok {
			order = append(order, sp)
		}
		groups[sp] = append(groups[sp], i)
	}
	for _, sp := range order {
		idx := groups[sp]
		part := make([]ContextChunk, len(idx))
		for j, i := range idx {
			part[j] = chunks[i]
		}
		res, es, err := IndexChunks(ctx, sp.svc, part)
		if err != nil {
			return nil, nil, err
		}
		for j, i := range idx {
			results[i], errs[i] = res[j], es[j]
		}
	}
	return results, errs, nil
}

// AcceptDocument implements Service on every collection; the result is
// the active one's.
func (s *Spaces) AcceptDocument(ctx context.Context, d events.DocumentAccepted) (IndexResult, error) {
	var out IndexResult
	active := s.Active()
	for _, sp := range s.all() {
		res, err := sp.svc.AcceptDocument(ctx, d)
		if dropped(err, sp.name, active) {
			continue
		}
		if err != nil {
			return IndexResult{}, err
		}
		if sp.name == active {
			out = res
		}
	}
	if out.Status == "" {
		out.Status = StatusIgnored
	}
	return out, nil
}

// DeleteDocument implements Service on every collection.
func (s *Spaces) DeleteDocument(ctx context.Context, d events.DocumentDeleted) error {
	active := s.Active()
	for _, sp := range s.all() {
		if err := sp.svc.DeleteDocument(ctx, d); err != nil && !dropped(err, sp.name, active) {
			return err
		}
	}
	return nil
}

// dropped reports whether err says that collection name, not the active
// one, is gone: another replica dropped it after its grace period.
func dropped(err error, name, active string) bool {
	return err != nil && name != active && status.Code(err) == codes.NotFound
}

// Retrieve implements Service. The question goes to the collection of its
// own model when that collection is the active one or a retiring one
// (complete); otherwise to the active collection with only the vectors
// whose part of the model name matches it (the sparse one when only the
// dense model changed, and vice versa) — never vectors of one model
// against another's.
func (s *Spaces) Retrieve(ctx context.Context, q events.QueryEmbedded) (events.QueryRetrieved, error) {
	s.mu.Lock()
	sp := s.lookup(q.Model, len(q.Dense))
	var retiring, isActive bool
	if sp != nil {
		_, retiring = s.retiring[sp.name]
		isActive = sp.name == s.active
	}
	active := s.spaces[s.active]
	s.mu.Unlock()
	if isActive || retiring {
		return sp.svc.Retrieve(ctx, q)
	}
	if active == nil {
		return events.QueryRetrieved{Query: q.Query}, nil
	}
	if active.model != "" { // an empty legacy collection keeps today's rules
		qs, qd := splitModel(q.Model)
		as, ad := splitModel(active.model)
		if qs != as && q.Sparse != nil {
			q.Sparse = nil
			s.dropped.WithLabelValues("sparse").Inc()
		}
		if (qd != ad || len(q.Dense) != active.dim) && len(q.Dense) > 0 {
			q.Dense = nil
			s.dropped.WithLabelValues("dense").Inc()
		}
	}
	if q.Sparse == nil && len(q.Dense) == 0 {
		return events.QueryRetrieved{Query: q.Query}, nil
	}
	return active.svc.Retrieve(ctx, q)
}

// splitModel splits an events model name "sparse+dense/dim" into its
// sparse and dense parts.
func splitModel(m string) (sparse, dense string) {
	sparse, dense, _ = strings.Cut(m, "+")
	return sparse, dense
}

// Run checks every interval whether a newer collection has caught up with
// the active one, switches the alias when it has, and drops retired
// collections after their grace period, until ctx ends.
func (s *Spaces) Run(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := s.Checkpoint(ctx); err != nil && ctx.Err() == nil {
			s.logger.Warn("collection checkpoint", "err", err.Error())
		}
	}
}

// Checkpoint runs one check (see Run). The newest collection created after
// the active one has caught up when it holds exactly the active one's
// chunk points (the same ids: every chunk, every version, every deletion
// applied); then the alias moves to it in one UpdateAliases request
// (delete and create together: no moment without the alias, no question
// sees a half-built collection).
func (s *Spaces) Checkpoint(ctx context.Context) error {
	if err := s.Load(ctx); err != nil { // another replica may have switched
		return err
	}
	s.mu.Lock()
	active := s.spaces[s.active]
	var cand *space
	for name, sp := range s.spaces {
		if _, r := s.retiring[name]; r || active == nil || name == active.name || sp.created <= active.created {
			continue
		}
		if cand == nil || sp.created > cand.created {
			cand = sp
		}
	}
	s.mu.Unlock()
	if cand != nil {
		// An empty collection from before spaces has nothing to keep
		// answering from (its model's chunks would have gone to it).
		same := active.legacy && active.model == ""
		if !same {
			var err error
			if same, err = s.sameChunks(ctx, active.name, cand.name); err != nil {
				return err
			}
		}
		if same {
			if err := s.client.UpdateAliases(ctx, []*qdrant.AliasOperations{
				qdrant.NewAliasDelete(s.base), qdrant.NewAliasCreate(s.base, cand.name)}); err != nil {
				return fmt.Errorf("%w: switch alias %s: %w", ErrStore, s.base, err)
			}
			s.mu.Lock()
			s.active = cand.name
			s.retiring[active.name] = s.now()
			s.mu.Unlock()
			s.logger.Info("collection alias switched", "alias", s.base, "from", active.name, "to", cand.name, "model", cand.model)
		}
	}
	return s.dropRetired(ctx)
}

// dropRetired deletes the retiring collections past their grace period.
func (s *Spaces) dropRetired(ctx context.Context) error {
	s.mu.Lock()
	var due []string
	for name, since := range s.retiring {
		if s.now().Sub(since) >= s.retireAfter {
			due = append(due, name)
		}
	}
	s.mu.Unlock()
	for _, name := range due {
		if err := s.client.DeleteCollection(ctx, name); err != nil {
			return fmt.Errorf("%w: drop collection %s: %w", ErrStore, name, err)
		}
		s.mu.Lock()
		delete(s.retiring, name)
		delete(s.spaces, name)
		s.mu.Unlock()
		s.logger.Info("retired collection dropped", "collection", name)
	}
	return nil
}

// sameChunks reports whether collections a and b hold the same chunk point
// ids. It reads ids only (no vectors, no payload), a page at a time.
func (s *Spaces) sameChunks(ctx context.Context, a, b string) (bool, error) {
	ids := func(name string) (map[string]struct{}, error) {
		out := map[string]struct{}{}
		var offset *qdrant.PointId
		for {
			pts, next, err := s.client.ScrollAndOffset(ctx, &qdrant.ScrollPoints{CollectionName: name,
				Filter: &qdrant.Filter{Must: []*qdrant.Condition{qdrant.NewMatchKeyword(FieldKind, KindChunk)}},
				Offset: offset, Limit: qdrant.PtrOf(uint32(1000)),
				WithPayload: qdrant.NewWithPayload(false), WithVectors: qdrant.NewWithVectors(false)})
			if err != nil {
				return nil, storeError("scroll "+name, err)
			}
			for _, p := range pts {
				out[p.GetId().GetUuid()] = struct{}{}
			}
			if next == nil || len(pts) == 0 {
				return out, nil
			}
			offset = next
		}
	}
	ia, err := ids(a)
	if err != nil {
		return false, err
	}
	ib, err := ids(b)
	if err != nil {
		return false, err
	}
	if len(ia) != len(ib) {
		return false, nil
	}
	for id := range ia {
		if _, ok := ib[id]; !ok {
			return false, nil
		}
	}
	return true, nil
}

var _ interface {
	Service
	BatchIndexer
} = (*Spaces)(nil)
