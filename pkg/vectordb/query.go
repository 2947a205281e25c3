package vectordb

import (
	"math"
	"sort"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/protobuf/proto"
)

const (
	defaultQueryLimit = 10
	defaultRRFK       = 2
	maxLimit          = 1 << 20
)

// queryStage is one node of a Query request tree: the root or a prefetch.
type queryStage struct {
	prefetch  []*qdrant.PrefetchQuery
	query     *qdrant.Query
	using     string
	filter    *qdrant.Filter
	params    *qdrant.SearchParams
	threshold *float32
	limit     int
	shards    shardSel // nil: every shard
}

// andFilters combines a parent filter with a child's: both must hold.
func andFilters(parent, child *qdrant.Filter) *qdrant.Filter {
	switch {
	case parent == nil:
		return child
	case child == nil:
		return parent
	}
	return &qdrant.Filter{Must: []*qdrant.Condition{
		{ConditionOneOf: &qdrant.Condition_Filter{Filter: parent}},
		{ConditionOneOf: &qdrant.Condition_Filter{Filter: child}},
	}}
}

// runStage evaluates a query stage. Caller holds c.mu for reading.
func (c *collection) runStage(st queryStage, depth int) ([]scored, bool, error) {
	if depth > 8 {
		return nil, false, invalidf("prefetch is nested too deeply")
	}
	if st.limit < 0 || st.limit > maxLimit {
		return nil, false, invalidf("limit %d is out of range", st.limit)
	}
	pred, err := compileFilter(st.filter)
	if err != nil {
		return nil, false, err
	}
	pred = c.shardPred(st.shards, pred)
	var subs [][]scored
	var subSmaller []bool
	for _, p := range st.prefetch {
		limit := defaultQueryLimit
		if p.Limit != nil {
			limit = int(p.GetLimit())
		}
		res, smaller, err := c.runStage(queryStage{
			prefetch:  p.GetPrefetch(),
			query:     p.GetQuery(),
			using:     p.GetUsing(),
			filter:    andFilters(st.filter, p.GetFilter()),
			params:    p.GetParams(),
			threshold: p.ScoreThreshold,
			limit:     limit,
			shards:    st.shards,
		}, depth+1)
		if err != nil {
			return nil, false, err
		}
		subs = append(subs, res)
		subSmaller = append(subSmaller, smaller)
	}
	var restrict []uint32
	if len(st.prefetch) > 0 {
		seen := map[uint32]bool{}
		restrict = []uint32{}
		for _, res := range subs {
			for _, s := range res {
				if !seen[s.slot] {
					seen[s.slot] = true
					restrict = append(restrict, s.slot)
				}
			}
		}
	}
	req := searchRequest{
		pred:      pred,
		filter:    st.filter,
		limit:     st.limit,
		threshold: st.threshold,
		exact:     st.params.GetExact(),
		ef:        int(min(st.params.GetHnswEf(), 1<<16)),
		restrict:  restrict,
		quant:     st.params.GetQuantization(),
		shards:    st.shards,
	}
	switch q := st.query.GetVariant().(type) {
	case nil:
		if len(subs) == 1 {
			return truncate(subs[0], st.limit), subSmaller[0], nil
		}
		if len(subs) > 1 {
			return nil, false, invalidf("a query is required to combine several prefetches")
		}
		return c.scrollScored(pred, st.limit), false, nil
	case *qdrant.Query_Nearest:
		return c.nearest(q.Nearest, st.using, req)
	case *qdrant.Query_Fusion:
		if len(subs) == 0 {
			return nil, false, invalidf("fusion needs at least one prefetch")
		}
		switch q.Fusion {
		case qdrant.Fusion_RRF:
			return c.filterThreshold(rrf(subs, defaultRRFK, nil, c.betterFunc(false)), st.threshold, st.limit), false, nil
		case qdrant.Fusion_DBSF:
			return c.filterThreshold(dbsf(subs, subSmaller, c.betterFunc(false)), st.threshold, st.limit), false, nil
		default:
			return nil, false, unimplementedf("fusion %s", q.Fusion)
		}
	case *qdrant.Query_Rrf:
		if len(subs) == 0 {
			return nil, false, invalidf("fusion needs at least one prefetch")
		}
		k := defaultRRFK
		if q.Rrf.K != nil {
			if q.Rrf.GetK() == 0 {
				return nil, false, invalidf("rrf k must be positive")
			}
			k = int(q.Rrf.GetK())
		}
		w := q.Rrf.GetWeights()
		if len(w) > 0 && len(w) != len(subs) {
			return nil, false, invalidf("Number of weights in RRF should match number of pre-fetches: got %d, expected %d", len(w), len(subs))
		}
		return c.filterThreshold(rrf(subs, k, w, c.betterFunc(false)), st.threshold, st.limit), false, nil
	default:
		return nil, false, unimplementedf("this query type (only nearest, fusion and rrf are served)")
	}
}

func truncate(s []scored, limit int) []scored {
	if len(s) > limit {
		return s[:limit]
	}
	return s
}

func (c *collection) filterThreshold(s []scored, threshold *float32, limit int) []scored {
	if threshold != nil {
		out := s[:0]
		for _, x := range s {
			if x.score >= *threshold {
				out = append(out, x)
			}
		}
		s = out
	}
	return truncate(s, limit)
}

// nearest runs a nearest-neighbour query on the named space. Caller holds
// c.mu for reading.
func (c *collection) nearest(in *qdrant.VectorInput, using string, req searchRequest) ([]scored, bool, error) {
	pv, byID, err := parseVectorInput(in)
	if err != nil {
		return nil, false, err
	}
	if byID != nil {
		id, err := parsePointID(byID)
		if err != nil {
			return nil, false, err
		}
		slot, ok := c.slots[id]
		if !ok || !c.inShards(req.shards, slot) {
			return nil, false, status404Point(id)
		}
		if d := c.dense[using]; d != nil && d.present[slot] {
			pv.dense = append([]float32(nil), d.row(slot)...)
		} else if s := c.sparse[using]; s != nil && s.vecs[slot] != nil {
			pv.sparse = s.vecs[slot]
		} else {
			return nil, false, invalidf("point %s has no vector %q", id, using)
		}
		req.exclude = map[uint32]bool{slot: true}
	}
	if pv.sparse != nil {
		s := c.sparse[using]
		if s == nil {
			return nil, false, invalidf("Not existing vector name error: %s", using)
		}
		return c.searchSparse(s, pv.sparse, req), false, nil
	}
	d := c.dense[using]
	if d == nil {
		return nil, false, invalidf("Not existing vector name error: %s", using)
	}
	if len(pv.dense) != d.dim {
		return nil, false, invalidf("Vector dimension error: expected dim: %d, got %d", d.dim, len(pv.dense))
	}
	if err := checkFinite(pv.dense); err != nil {
		return nil, false, err
	}
	return c.searchDense(d, pv.dense, req), d.smallerBetter(), nil
}

func status404Point(id pointID) error {
	return invalidf("No point with id %s found", id)
}

// scrollScored returns matching points in id order with score 0.
func (c *collection) scrollScored(pred predicate, limit int) []scored {
	var out []scored
	for _, slot := range c.sortedSlots() {
		if len(out) >= limit {
			break
		}
		p := &c.points[slot]
		if pred == nil || pred(p.id, p.payload) {
			out = append(out, scored{slot: slot})
		}
	}
	return out
}

// rrf fuses ranked lists by reciprocal rank, as Qdrant does:
// score = sum over lists of 1 / ((rank+1)/weight + k - 1), rank from 0.
func rrf(lists [][]scored, k int, weights []float32, better func(a, b scored) bool) []scored {
	acc := map[uint32]float32{}
	var order []uint32
	for i, l := range lists {
		w := float32(1)
		if len(weights) > 0 {
			w = weights[i]
		}
		for rank, s := range l {
			var sc float32
			if w > 0 {
				sc = 1 / (float32(rank+1)/w + float32(k) - 1)
			}
			if _, ok := acc[s.slot]; !ok {
				order = append(order, s.slot)
			}
			acc[s.slot] += sc
		}
	}
	out := make([]scored, 0, len(order))
	for _, slot := range order {
		out = append(out, scored{slot, acc[slot]})
	}
	sort.SliceStable(out, func(i, j int) bool { return better(out[i], out[j]) })
	return out
}

// dbsf fuses lists by distribution-based score fusion: each list is
// normalized with mean ± 3 standard deviations as its extremes, then the
// normalized scores are summed.
func dbsf(lists [][]scored, smaller []bool, better func(a, b scored) bool) []scored {
	acc := map[uint32]float32{}
	var order []uint32
	for li, l := range lists {
		norm := make([]float32, len(l))
		switch {
		case len(l) == 1:
			norm[0] = 0.5
		case len(l) > 1:
			var mean, agg float32
			for i, s := range l {
				old := s.score - mean
				mean += old / float32(i+1)
				agg += old * (s.score - mean)
			}
			std := float32(math.Sqrt(float64(agg / float32(len(l)-1))))
			lo, hi := mean-3*std, mean+3*std
			for i, s := range l {
				if lo == hi {
					norm[i] = 0.5
				} else {
					norm[i] = (s.score - lo) / (hi - lo)
				}
				if smaller[li] {
					norm[i] = 1 - norm[i]
				}
			}
		}
		for i, s := range l {
			if _, ok := acc[s.slot]; !ok {
				order = append(order, s.slot)
			}
			acc[s.slot] += norm[i]
		}
	}
	out := make([]scored, 0, len(order))
	for _, slot := range order {
		out = append(out, scored{slot, acc[slot]})
	}
	sort.SliceStable(out, func(i, j int) bool { return better(out[i], out[j]) })
	return out
}

// payloadSelector decides which payload fields a response carries.
type payloadSelector struct {
	enabled bool
	include []keyPath
	exclude []keyPath
}

func parsePayloadSelector(sel *qdrant.WithPayloadSelector, dflt bool) (payloadSelector, error) {
	switch s := sel.GetSelectorOptions().(type) {
	case nil:
		return payloadSelector{enabled: dflt}, nil
	case *qdrant.WithPayloadSelector_Enable:
		return payloadSelector{enabled: s.Enable}, nil
	case *qdrant.WithPayloadSelector_Include:
		ps, err := parsePaths(s.Include.GetFields())
		return payloadSelector{enabled: true, include: ps}, err
	case *qdrant.WithPayloadSelector_Exclude:
		ps, err := parsePaths(s.Exclude.GetFields())
		return payloadSelector{enabled: true, exclude: ps}, err
	default:
		return payloadSelector{}, invalidf("unknown payload selector")
	}
}

func parsePaths(fields []string) ([]keyPath, error) {
	out := make([]keyPath, 0, len(fields))
	for _, f := range fields {
		p, err := parseKeyPath(f)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// apply returns the selected part of payload. Stored payloads are shared,
// so nested selections copy what they change.
func (ps payloadSelector) apply(payload map[string]*qdrant.Value) map[string]*qdrant.Value {
	if !ps.enabled {
		return nil
	}
	switch {
	case ps.include != nil:
		out := map[string]*qdrant.Value{}
		for _, p := range ps.include {
			includePath(out, payload, p)
		}
		return out
	case ps.exclude != nil:
		out := make(map[string]*qdrant.Value, len(payload))
		for k, v := range payload {
			out[k] = v
		}
		for _, p := range ps.exclude {
			if len(p) == 1 {
				delete(out, p[0].key)
				continue
			}
			v, ok := out[p[0].key]
			if !ok {
				continue
			}
			c := proto.Clone(v).(*qdrant.Value)
			removeAt(c, p[1:])
			out[p[0].key] = c
		}
		return out
	default:
		return payload
	}
}

// includePath copies the value at p (object keys only below the first
// step) from src into dst, keeping its nesting.
func includePath(dst, src map[string]*qdrant.Value, p keyPath) {
	v, ok := src[p[0].key]
	if !ok {
		return
	}
	rest := p[1:]
	if len(rest) == 0 || rest[0].kind != 'k' {
		dst[p[0].key] = v
		return
	}
	s := v.GetStructValue()
	if s == nil || dst[p[0].key] == v {
		return // not an object, or already wholly included
	}
	// dst's struct for this key, if any, was built here and is ours to fill.
	child := dst[p[0].key].GetStructValue()
	if child == nil {
		child = &qdrant.Struct{Fields: map[string]*qdrant.Value{}}
	}
	includePath(child.Fields, s.GetFields(), rest)
	if len(child.Fields) > 0 {
		dst[p[0].key] = &qdrant.Value{Kind: &qdrant.Value_StructValue{StructValue: child}}
	}
}

func removeAt(v *qdrant.Value, p keyPath) {
	if len(p) == 0 {
		return
	}
	switch p[0].kind {
	case 'k':
		s := v.GetStructValue()
		if s == nil {
			return
		}
		if len(p) == 1 {
			delete(s.Fields, p[0].key)
			return
		}
		if c, ok := s.Fields[p[0].key]; ok {
			removeAt(c, p[1:])
		}
	case 'w':
		if l := v.GetListValue(); l != nil {
			for _, e := range l.GetValues() {
				removeAt(e, p[1:])
			}
		}
	case 'i':
		if l := v.GetListValue(); l != nil && p[0].index < len(l.GetValues()) {
			removeAt(l.GetValues()[p[0].index], p[1:])
		}
	}
}

// vectorSelector decides which vectors a response carries.
type vectorSelector struct {
	all   bool
	names map[string]bool
}

func parseVectorSelector(sel *qdrant.WithVectorsSelector) vectorSelector {
	switch s := sel.GetSelectorOptions().(type) {
	case *qdrant.WithVectorsSelector_Enable:
		return vectorSelector{all: s.Enable}
	case *qdrant.WithVectorsSelector_Include:
		return vectorSelector{names: stringBoolSet(s.Include.GetNames())}
	default:
		return vectorSelector{}
	}
}

func stringBoolSet(ss []string) map[string]bool {
	m := make(map[string]bool, len(ss))
	for _, s := range ss {
		m[s] = true
	}
	return m
}

func (vs vectorSelector) want(name string) bool { return vs.all || vs.names[name] }

// vectorsOutput returns the selected vectors of slot. Caller holds c.mu.
func (c *collection) vectorsOutput(slot uint32, vs vectorSelector) *qdrant.VectorsOutput {
	if !vs.all && len(vs.names) == 0 {
		return nil
	}
	if c.unnamed && len(c.sparse) == 0 {
		d := c.dense[""]
		if !vs.want("") || !d.present[slot] {
			return nil
		}
		return &qdrant.VectorsOutput{VectorsOptions: &qdrant.VectorsOutput_Vector{Vector: denseOutput(d.row(slot))}}
	}
	named := map[string]*qdrant.VectorOutput{}
	for name, d := range c.dense {
		if vs.want(name) && d.present[slot] {
			named[name] = denseOutput(d.row(slot))
		}
	}
	for name, s := range c.sparse {
		if v := s.vecs[slot]; vs.want(name) && v != nil {
			named[name] = &qdrant.VectorOutput{Vector: &qdrant.VectorOutput_Sparse{Sparse: &qdrant.SparseVector{
				Indices: append([]uint32(nil), v.idx...),
				Values:  append([]float32(nil), v.val...),
			}}}
		}
	}
	return &qdrant.VectorsOutput{VectorsOptions: &qdrant.VectorsOutput_Vectors{Vectors: &qdrant.NamedVectorsOutput{Vectors: named}}}
}

func denseOutput(v []float32) *qdrant.VectorOutput {
	return &qdrant.VectorOutput{Vector: &qdrant.VectorOutput_Dense{Dense: &qdrant.DenseVector{Data: append([]float32(nil), v...)}}}
}
