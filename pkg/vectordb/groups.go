package vectordb

import (
	"context"
	"math/rand/v2"
	"sort"

	"github.com/qdrant/go-client/qdrant"
)

const (
	defaultGroupSize   = 3
	defaultFacetLimit  = 10
	defaultMatrixLimit = 3
	defaultMatrixSize  = 10
	maxGroupValues     = 4096 // limit × group_size, as a bound on the work
)

// groupKey is a group's identity: a string or an integer payload value.
type groupKey struct {
	isInt bool
	s     string
	i     int64
}

func (k groupKey) proto() *qdrant.GroupId {
	switch {
	case !k.isInt:
		return &qdrant.GroupId{Kind: &qdrant.GroupId_StringValue{StringValue: k.s}}
	case k.i >= 0:
		return &qdrant.GroupId{Kind: &qdrant.GroupId_UnsignedValue{UnsignedValue: uint64(k.i)}}
	default:
		return &qdrant.GroupId{Kind: &qdrant.GroupId_IntegerValue{IntegerValue: k.i}}
	}
}

// groupKeys returns the string and integer values at path in payload
// (each element of an array), the values Qdrant groups by.
func groupKeys(path keyPath, payload map[string]*qdrant.Value) []groupKey {
	var out []groupKey
	add := func(v *qdrant.Value) {
		switch k := v.GetKind().(type) {
		case *qdrant.Value_StringValue:
			out = append(out, groupKey{s: k.StringValue})
		case *qdrant.Value_IntegerValue:
			out = append(out, groupKey{isInt: true, i: k.IntegerValue})
		}
	}
	for _, v := range path.values(payload, nil) {
		if l := v.GetListValue(); l != nil {
			for _, e := range l.GetValues() {
				add(e)
			}
			continue
		}
		add(v)
	}
	return out
}

// QueryGroups runs a query and groups its hits by a payload value: at most
// limit groups (default 10), each with its best group_size hits (default
// 3), groups ordered by their best hit. Points without a string or integer
// value at group_by are left out. The query fetches limit × group_size × 4
// hits and is re-run with a 4× wider limit until it finds limit groups or
// the candidates are exhausted; a group may then hold fewer than group_size
// hits even though more of its points exist further down (as in Qdrant,
// group_size is a maximum).
func (s *Store) QueryGroups(ctx context.Context, req *qdrant.QueryPointGroups) (*qdrant.GroupsResult, error) {
	if req.GetLookupFrom() != nil {
		return nil, unimplementedf("lookup_from")
	}
	if req.GetWithLookup() != nil {
		return nil, unimplementedf("with_lookup")
	}
	c, shards, err := s.shardedCollection(req.GetCollectionName(), req.GetShardKeySelector())
	if err != nil {
		return nil, err
	}
	if req.GetGroupBy() == "" {
		return nil, invalidf("group_by is required")
	}
	path, err := parseKeyPath(req.GetGroupBy())
	if err != nil {
		return nil, err
	}
	limit, size := defaultQueryLimit, defaultGroupSize
	if req.Limit != nil {
		limit = int(req.GetLimit())
	}
	if req.GroupSize != nil {
		size = int(req.GetGroupSize())
	}
	if limit < 1 || size < 1 || limit*size > maxGroupValues {
		return nil, invalidf("limit × group_size must be between 1 and %d", maxGroupValues)
	}
	psel, err := parsePayloadSelector(req.GetWithPayload(), false)
	if err != nil {
		return nil, err
	}
	vsel := parseVectorSelector(req.GetWithVectors())
	c.mu.RLock()
	defer c.mu.RUnlock()
	type group struct {
		key  groupKey
		hits []scored
	}
	var groups []*group
	for fetch := limit * size * 4; ; fetch *= 4 {
		res, _, err := c.runStage(queryStage{
			prefetch:  req.GetPrefetch(),
			query:     req.GetQuery(),
			using:     req.GetUsing(),
			filter:    req.GetFilter(),
			params:    req.GetParams(),
			threshold: req.ScoreThreshold,
			limit:     min(fetch, maxLimit),
			shards:    shards,
		}, 0)
		if err != nil {
			return nil, err
		}
		groups = groups[:0]
		byKey := map[groupKey]*group{}
		for _, r := range res {
			for _, k := range groupKeys(path, c.points[r.slot].payload) {
				g := byKey[k]
				if g == nil {
					if len(groups) == limit {
						continue
					}
					g = &group{key: k}
					byKey[k] = g
					groups = append(groups, g)
				}
				if len(g.hits) < size && (len(g.hits) == 0 || g.hits[len(g.hits)-1].slot != r.slot) {
					g.hits = append(g.hits, r)
				}
			}
		}
		// Enough groups (full or not: a group's best hits are its first
		// ones either way), or nothing more to fetch.
		if len(groups) == limit || len(res) < fetch || fetch >= c.live || fetch >= maxLimit {
			break
		}
	}
	out := &qdrant.GroupsResult{Groups: make([]*qdrant.PointGroup, 0, len(groups))}
	for _, g := range groups {
		out.Groups = append(out.Groups, &qdrant.PointGroup{Id: g.key.proto(), Hits: c.scoredPoints(g.hits, 0, psel, vsel)})
	}
	return out, nil
}

// SearchGroups is QueryGroups for the classic search request.
func (s *Store) SearchGroups(ctx context.Context, req *qdrant.SearchPointGroups) (*qdrant.GroupsResult, error) {
	var in *qdrant.VectorInput
	if req.GetSparseIndices() != nil {
		in = qdrant.NewVectorInputSparse(req.GetSparseIndices().GetData(), req.GetVector())
	} else {
		in = qdrant.NewVectorInputDense(req.GetVector())
	}
	limit, size := uint64(req.GetLimit()), uint64(req.GetGroupSize())
	return s.QueryGroups(ctx, &qdrant.QueryPointGroups{
		CollectionName:   req.GetCollectionName(),
		Query:            qdrant.NewQueryNearest(in),
		Using:            req.VectorName,
		Filter:           req.GetFilter(),
		Params:           req.GetParams(),
		ScoreThreshold:   req.ScoreThreshold,
		WithPayload:      req.GetWithPayload(),
		WithVectors:      req.GetWithVectors(),
		Limit:            &limit,
		GroupSize:        &size,
		GroupBy:          req.GetGroupBy(),
		WithLookup:       req.GetWithLookup(),
		ShardKeySelector: req.GetShardKeySelector(),
	})
}

// facetKey is a facet value: string, integer or bool.
type facetKey struct {
	kind byte // 's', 'i', 'b'
	s    string
	i    int64
}

func (k facetKey) proto() *qdrant.FacetValue {
	switch k.kind {
	case 'i':
		return &qdrant.FacetValue{Variant: &qdrant.FacetValue_IntegerValue{IntegerValue: k.i}}
	case 'b':
		return &qdrant.FacetValue{Variant: &qdrant.FacetValue_BoolValue{BoolValue: k.i != 0}}
	}
	return &qdrant.FacetValue{Variant: &qdrant.FacetValue_StringValue{StringValue: k.s}}
}

// Facet counts the points (matching the filter) per value at key, always
// exactly, most frequent first (ties by value). As in Qdrant the key needs a
// payload index.
func (s *Store) Facet(ctx context.Context, req *qdrant.FacetCounts) ([]*qdrant.FacetHit, error) {
	c, shards, err := s.shardedCollection(req.GetCollectionName(), req.GetShardKeySelector())
	if err != nil {
		return nil, err
	}
	path, err := parseKeyPath(req.GetKey())
	if err != nil {
		return nil, err
	}
	pred, err := compileFilter(req.GetFilter())
	if err != nil {
		return nil, err
	}
	pred = c.shardPred(shards, pred)
	limit := defaultFacetLimit
	if req.Limit != nil {
		limit = int(min(req.GetLimit(), maxLimit))
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if _, ok := c.indexes[req.GetKey()]; !ok {
		return nil, invalidf("Index required but not found for \"%s\" of one of the following types: [keyword, integer, bool]. Help: Create an index for this key", req.GetKey())
	}
	counts := map[facetKey]uint64{}
	seen := map[facetKey]bool{}
	c.eachMatch(pred, req.GetFilter(), func(slot uint32) {
		clear(seen)
		for _, v := range path.values(c.points[slot].payload, nil) {
			vals := []*qdrant.Value{v}
			if l := v.GetListValue(); l != nil {
				vals = l.GetValues()
			}
			for _, e := range vals {
				var k facetKey
				switch x := e.GetKind().(type) {
				case *qdrant.Value_StringValue:
					k = facetKey{kind: 's', s: x.StringValue}
				case *qdrant.Value_IntegerValue:
					k = facetKey{kind: 'i', i: x.IntegerValue}
				case *qdrant.Value_BoolValue:
					k = facetKey{kind: 'b'}
					if x.BoolValue {
						k.i = 1
					}
				default:
					continue
				}
				if !seen[k] {
					seen[k] = true
					counts[k]++
				}
			}
		}
	})
	keys := make([]facetKey, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if counts[a] != counts[b] {
			return counts[a] > counts[b]
		}
		if a.kind != b.kind {
			return a.kind < b.kind
		}
		if a.s != b.s {
			return a.s < b.s
		}
		return a.i < b.i
	})
	if len(keys) > limit {
		keys = keys[:limit]
	}
	out := make([]*qdrant.FacetHit, len(keys))
	for i, k := range keys {
		out[i] = &qdrant.FacetHit{Value: k.proto(), Count: counts[k]}
	}
	return out, nil
}

// matrix is a search matrix: the sampled points and, for each, its nearest
// sampled neighbours.
type matrix struct {
	ids   []pointID
	pairs []matrixPair
}

type matrixPair struct {
	a, b  int // indexes into ids
	score float32
}

// SearchMatrix samples up to sample points (default 10) that match the
// filter and have the dense vector using, and returns for each its limit
// (default 3) nearest neighbours among the sample.
func (s *Store) SearchMatrix(ctx context.Context, req *qdrant.SearchMatrixPoints) (*matrix, error) {
	c, shards, err := s.shardedCollection(req.GetCollectionName(), req.GetShardKeySelector())
	if err != nil {
		return nil, err
	}
	pred, err := compileFilter(req.GetFilter())
	if err != nil {
		return nil, err
	}
	pred = c.shardPred(shards, pred)
	sample, limit := defaultMatrixSize, defaultMatrixLimit
	if req.Sample != nil {
		sample = int(min(req.GetSample(), maxGroupValues))
	}
	if req.Limit != nil {
		limit = int(min(req.GetLimit(), maxGroupValues))
	}
	if sample < 2 || limit < 1 {
		return nil, invalidf("sample must be at least 2 and limit at least 1")
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	d := c.dense[req.GetUsing()]
	if d == nil {
		if c.sparseOK[req.GetUsing()] {
			return nil, unimplementedf("search matrix on sparse vectors")
		}
		return nil, invalidf("Not existing vector name error: %s", req.GetUsing())
	}
	var cands []uint32
	c.eachMatch(pred, req.GetFilter(), func(slot uint32) {
		if d.present[slot] {
			cands = append(cands, slot)
		}
	})
	if len(cands) > sample {
		rand.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
		cands = cands[:sample]
	}
	sort.Slice(cands, func(i, j int) bool { return c.points[cands[i]].id.less(c.points[cands[j]].id) })
	m := &matrix{ids: make([]pointID, len(cands))}
	better := c.betterFunc(d.smallerBetter())
	for i, a := range cands {
		m.ids[i] = c.points[a].id
		top := newTopK(limit, better)
		for _, b := range cands {
			if b != a {
				top.offer(scored{slot: b, score: d.score(d.row(a), d.row(b))})
			}
		}
		for _, h := range top.sorted() {
			m.pairs = append(m.pairs, matrixPair{a: i, b: indexOf(cands, h.slot), score: h.score})
		}
	}
	return m, nil
}

func indexOf(s []uint32, v uint32) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func (m *matrix) pairsProto() *qdrant.SearchMatrixPairs {
	out := &qdrant.SearchMatrixPairs{Pairs: make([]*qdrant.SearchMatrixPair, len(m.pairs))}
	for i, p := range m.pairs {
		out.Pairs[i] = &qdrant.SearchMatrixPair{A: m.ids[p.a].proto(), B: m.ids[p.b].proto(), Score: p.score}
	}
	return out
}

func (m *matrix) offsetsProto() *qdrant.SearchMatrixOffsets {
	out := &qdrant.SearchMatrixOffsets{Ids: make([]*qdrant.PointId, len(m.ids))}
	if len(m.pairs) == 0 {
		out.Ids = out.Ids[:0]
	}
	for i, id := range m.ids {
		if len(m.pairs) > 0 {
			out.Ids[i] = id.proto()
		}
	}
	for _, p := range m.pairs {
		out.OffsetsRow = append(out.OffsetsRow, uint64(p.a))
		out.OffsetsCol = append(out.OffsetsCol, uint64(p.b))
		out.Scores = append(out.Scores, p.score)
	}
	return out
}
