package vectordb

import (
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/protobuf/proto"
)

// denseSpace holds one dense vector of every point that has it, row-major by
// slot.
type denseSpace struct {
	name    string
	dim     int
	dist    qdrant.Distance
	data    []float32
	present []bool
	count   int
	ann     annIndex // nil while the space is searched exactly
	// annReady is false while ann's bulk build runs (outside the lock);
	// searches are exact until it completes.
	annReady atomic.Bool

	m, efConstruct int // HNSW build parameters
	// quantile > 0: the graph holds int8 codes (see hnsw.ScalarInt8) and
	// graph searches are rescored with the rows.
	quantile float32
	// rows keeps data in a memory-mapped file (on_disk) instead of the
	// heap; nil when data is on the heap.
	rows *rowFile
	file string // the file rows maps, created at the first row
}

func (d *denseSpace) row(slot uint32) []float32 {
	o := int(slot) * d.dim
	return d.data[o : o+d.dim : o+d.dim]
}

// sparseSpace holds one sparse vector of every point that has it, with an
// inverted index from dimension to (slot, weight).
type sparseSpace struct {
	name  string
	idf   bool
	vecs  []*sparseVec
	count int
	post  map[uint32]map[uint32]float32
}

// point is a slot's identity and payload. A payload map is never mutated
// after it is stored: updates store a new map.
type point struct {
	id      pointID
	payload map[string]*qdrant.Value
	live    bool
	// shard is the number of the shard key the point lives under (see
	// addShardKey); 0 is none, as in every collection without custom
	// sharding.
	shard uint32
}

// fieldIndex is a payload index on one key: posting sets per keyword or
// integer value, used to estimate selectivity and to enumerate candidates.
type fieldIndex struct {
	key   string
	path  keyPath
	typ   qdrant.FieldType
	kw    map[string]map[uint32]struct{}
	ints  map[int64]map[uint32]struct{}
	count map[uint32]struct{}
}

// collection is one collection's in-memory state. mu guards everything
// below it; config fields set at creation are immutable.
type collection struct {
	name     string
	create   *qdrant.CreateCollection
	unnamed  bool // a single unnamed dense vector
	custom   bool // custom sharding: requests may name shard keys
	dims     map[string]int
	dists    map[string]qdrant.Distance
	sparseOK map[string]bool
	annCfg   annConfig

	mu      sync.RWMutex
	dense   map[string]*denseSpace
	sparse  map[string]*sparseSpace
	slots   map[pointID]uint32
	points  []point
	free    []uint32
	live    int
	indexes map[string]*fieldIndex
	// shardKeys are the keys of a custom-sharded collection, by shardKeyString.
	shardKeys map[string]*qdrant.ShardKey
	shardNum  map[string]uint32 // shard number per key, by shardKeyString
	nextShard uint32
	dropped   bool // set when the collection is deleted; writes then fail
	loading   bool // set while a snapshot loads: graphs are not built yet

	// sorted caches the live slots in id order; writers that add or remove
	// ids reset it.
	sorted atomic.Pointer[[]uint32]

	// Search path counters, for tests and diagnostics.
	annSearches, exactSearches atomic.Int64
}

// preparedPoint is a validated point ready to be applied.
type preparedPoint struct {
	id      pointID
	payload map[string]*qdrant.Value
	dense   map[string][]float32
	sparse  map[string]*sparseVec
	shard   uint32
	// keepShard leaves an existing point under its shard (rewrites of part
	// of a point).
	keepShard bool
}

func validCollectionName(name string) error {
	if name == "" || len(name) > 255 || strings.ContainsAny(name, "/\\\x00") {
		return invalidf("collection name %q is not valid", name)
	}
	return nil
}

// newCollection validates a create request and builds an empty collection.
func newCollection(req *qdrant.CreateCollection, ann annConfig) (*collection, error) {
	if err := validCollectionName(req.GetCollectionName()); err != nil {
		return nil, err
	}
	c := &collection{
		name:      req.GetCollectionName(),
		create:    proto.Clone(req).(*qdrant.CreateCollection),
		dims:      map[string]int{},
		dists:     map[string]qdrant.Distance{},
		sparseOK:  map[string]bool{},
		annCfg:    ann,
		dense:     map[string]*denseSpace{},
		sparse:    map[string]*sparseSpace{},
		slots:     map[pointID]uint32{},
		indexes:   map[string]*fieldIndex{},
		shardKeys: map[string]*qdrant.ShardKey{},
		shardNum:  map[string]uint32{},
		custom:    req.GetShardingMethod() == qdrant.ShardingMethod_Custom,
	}
	addDense := func(name string, p *qdrant.VectorParams) error {
		if strings.ContainsRune(name, 0) || len(name) > 255 {
			return invalidf("vector name %q is not valid", name)
		}
		if p == nil {
			return invalidf("vector params for %q are missing", name)
		}
		if p.GetMultivectorConfig() != nil {
			return unimplementedf("multi-vectors")
		}
		quantile, err := parseQuantization(req.GetQuantizationConfig())
		if err != nil {
			return err
		}
		if p.GetQuantizationConfig() != nil {
			if quantile, err = parseQuantization(p.GetQuantizationConfig()); err != nil {
				return err
			}
		}
		if p.Datatype != nil && p.GetDatatype() != qdrant.Datatype_Float32 {
			return unimplementedf("vector datatype %s", p.GetDatatype())
		}
		if p.GetSize() == 0 || p.GetSize() > 65536 {
			return invalidf("vector size for %q must be between 1 and 65536, got %d", name, p.GetSize())
		}
		switch p.GetDistance() {
		case qdrant.Distance_Cosine, qdrant.Distance_Dot, qdrant.Distance_Euclid, qdrant.Distance_Manhattan:
		default:
			return invalidf("unknown distance for vector %q", name)
		}
		c.dims[name] = int(p.GetSize())
		c.dists[name] = p.GetDistance()
		m, efc := hnswParams(req.GetHnswConfig(), p.GetHnswConfig())
		d := &denseSpace{name: name, dim: int(p.GetSize()), dist: p.GetDistance(), m: m, efConstruct: efc, quantile: quantile}
		if p.GetOnDisk() && ann.vectorDir != "" {
			d.file = ann.rowFileName(req.GetCollectionName(), name)
		}
		c.dense[name] = d
		return nil
	}
	switch vc := req.GetVectorsConfig().GetConfig().(type) {
	case *qdrant.VectorsConfig_Params:
		c.unnamed = true
		if err := addDense("", vc.Params); err != nil {
			return nil, err
		}
	case *qdrant.VectorsConfig_ParamsMap:
		for name, p := range vc.ParamsMap.GetMap() {
			if name == "" {
				return nil, invalidf("vector name must not be empty")
			}
			if err := addDense(name, p); err != nil {
				return nil, err
			}
		}
	}
	for name, p := range req.GetSparseVectorsConfig().GetMap() {
		if name == "" || strings.ContainsRune(name, 0) || len(name) > 255 {
			return nil, invalidf("sparse vector name %q is not valid", name)
		}
		if _, dup := c.dense[name]; dup {
			return nil, invalidf("vector name %q is used by a dense and a sparse vector", name)
		}
		c.sparseOK[name] = true
		c.sparse[name] = &sparseSpace{name: name, idf: p.GetModifier() == qdrant.Modifier_Idf, post: map[uint32]map[uint32]float32{}}
	}
	if len(c.dense) == 0 && len(c.sparse) == 0 {
		return nil, invalidf("collection %q needs at least one dense or sparse vector", c.name)
	}
	return c, nil
}

// preparePoints validates upserted points against the collection's
// configuration. It reads only immutable config and needs no lock.
func (c *collection) preparePoints(ps []*qdrant.PointStruct, normalizeCosine bool) ([]preparedPoint, error) {
	out := make([]preparedPoint, 0, len(ps))
	for _, p := range ps {
		id, err := parsePointID(p.GetId())
		if err != nil {
			return nil, err
		}
		pp := preparedPoint{id: id, payload: p.GetPayload(), dense: map[string][]float32{}, sparse: map[string]*sparseVec{}}
		var named map[string]*qdrant.Vector
		switch v := p.GetVectors().GetVectorsOptions().(type) {
		case *qdrant.Vectors_Vector:
			named = map[string]*qdrant.Vector{"": v.Vector}
		case *qdrant.Vectors_Vectors:
			named = v.Vectors.GetVectors()
		}
		for name, v := range named {
			pv, err := parseVector(v)
			if err != nil {
				return nil, err
			}
			if pv.sparse != nil {
				if !c.sparseOK[name] {
					return nil, invalidf("Not existing vector name error: %s", name)
				}
				pp.sparse[name] = pv.sparse
				continue
			}
			dim, ok := c.dims[name]
			if !ok {
				if c.sparseOK[name] {
					return nil, invalidf("Conversion between sparse and regular vectors failed for vector %q", name)
				}
				return nil, invalidf("Not existing vector name error: %s", name)
			}
			if len(pv.dense) != dim {
				return nil, invalidf("Vector dimension error: expected dim: %d, got %d", dim, len(pv.dense))
			}
			if err := checkFinite(pv.dense); err != nil {
				return nil, err
			}
			if normalizeCosine && c.dists[name] == qdrant.Distance_Cosine {
				pp.dense[name] = normalize(pv.dense)
			} else {
				pp.dense[name] = append([]float32(nil), pv.dense...)
			}
		}
		out = append(out, pp)
	}
	return out, nil
}

// applyUpsert stores prepared points, replacing existing ones. Caller holds
// c.mu for writing. The returned function, when not nil, finishes the HNSW
// insertions; callers run it after releasing c.mu.
func (c *collection) applyUpsert(ps []preparedPoint) func() {
	type annAdd struct {
		slots []uint32
		vecs  [][]float32
	}
	var adds map[string]*annAdd
	for _, p := range ps {
		slot, ok := c.slots[p.id]
		shard := p.shard
		if ok {
			if p.keepShard {
				shard = c.points[slot].shard
			}
			c.clearSlot(slot)
		} else {
			slot = c.allocSlot()
			c.slots[p.id] = slot
			c.live++
			c.sorted.Store(nil)
		}
		c.points[slot] = point{id: p.id, payload: p.payload, live: true, shard: shard}
		for name, v := range p.dense {
			d := c.dense[name]
			copy(d.row(slot), v)
			d.present[slot] = true
			d.count++
			if d.ann != nil {
				if adds == nil {
					adds = map[string]*annAdd{}
				}
				a := adds[name]
				if a == nil {
					a = &annAdd{}
					adds[name] = a
				}
				a.slots = append(a.slots, slot)
				a.vecs = append(a.vecs, v) // v is never mutated; rows are
			}
		}
		for name, v := range p.sparse {
			s := c.sparse[name]
			s.vecs[slot] = v
			s.count++
			for i, dim := range v.idx {
				m := s.post[dim]
				if m == nil {
					m = map[uint32]float32{}
					s.post[dim] = m
				}
				m[slot] = v.val[i]
			}
		}
		c.indexAdd(slot, p.payload)
	}
	var inserts []func()
	for name, a := range adds {
		// A slot upserted twice in one batch is added once, with its final
		// vector.
		seen := map[uint32]bool{}
		slots, vecs := a.slots[:0:0], a.vecs[:0:0]
		for i := len(a.slots) - 1; i >= 0; i-- {
			if !seen[a.slots[i]] && c.points[a.slots[i]].live {
				seen[a.slots[i]] = true
				slots, vecs = append(slots, a.slots[i]), append(vecs, a.vecs[i])
			}
		}
		ann := c.dense[name].ann
		handles := ann.Assign(slots)
		inserts = append(inserts, func() { ann.Insert(handles, vecs) })
	}
	if build := c.maybeBuildANN(); build != nil {
		inserts = append(inserts, build)
	}
	if len(inserts) == 0 {
		return nil
	}
	return func() {
		for _, f := range inserts {
			f()
		}
	}
}

func (c *collection) allocSlot() uint32 {
	if n := len(c.free); n > 0 {
		s := c.free[n-1]
		c.free = c.free[:n-1]
		return s
	}
	slot := uint32(len(c.points))
	c.points = append(c.points, point{})
	for _, d := range c.dense {
		d.appendRow()
		d.present = append(d.present, false)
	}
	for _, s := range c.sparse {
		s.vecs = append(s.vecs, nil)
	}
	return slot
}

// clearSlot removes a slot's vectors and index entries but keeps it mapped.
func (c *collection) clearSlot(slot uint32) {
	c.indexRemove(slot, c.points[slot].payload)
	for _, d := range c.dense {
		if d.present[slot] {
			d.present[slot] = false
			d.count--
			if d.ann != nil {
				d.ann.Remove(slot)
			}
		}
	}
	for _, s := range c.sparse {
		if v := s.vecs[slot]; v != nil {
			for _, dim := range v.idx {
				if m := s.post[dim]; m != nil {
					delete(m, slot)
					if len(m) == 0 {
						delete(s.post, dim)
					}
				}
			}
			s.vecs[slot] = nil
			s.count--
		}
	}
}

// applyDelete removes points. Caller holds c.mu for writing.
func (c *collection) applyDelete(ids []pointID) {
	for _, id := range ids {
		slot, ok := c.slots[id]
		if !ok {
			continue
		}
		c.clearSlot(slot)
		c.points[slot] = point{}
		delete(c.slots, id)
		c.free = append(c.free, slot)
		c.live--
		c.sorted.Store(nil)
	}
}

// applySetPayload merges payload into the points' payloads, at key when it
// is set. Caller holds c.mu for writing.
func (c *collection) applySetPayload(ids []pointID, payload map[string]*qdrant.Value, key keyPath, overwrite bool) {
	for _, id := range ids {
		slot, ok := c.slots[id]
		if !ok {
			continue
		}
		old := c.points[slot].payload
		var next map[string]*qdrant.Value
		switch {
		case overwrite:
			next = payload
		case key == nil:
			next = make(map[string]*qdrant.Value, len(old)+len(payload))
			for k, v := range old {
				next[k] = v
			}
			for k, v := range payload {
				next[k] = v
			}
		default:
			next = setPayloadAt(old, key, payload)
		}
		c.indexRemove(slot, old)
		c.points[slot].payload = next
		c.indexAdd(slot, next)
	}
}

// setPayloadAt returns a copy of old with src merged into the object at
// path, creating objects along the way (as Qdrant's set_payload with key).
func setPayloadAt(old map[string]*qdrant.Value, path keyPath, src map[string]*qdrant.Value) map[string]*qdrant.Value {
	next := make(map[string]*qdrant.Value, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	var cur *qdrant.Value
	if v, ok := old[path[0].key]; ok {
		cur = proto.Clone(v).(*qdrant.Value)
	} else {
		cur = &qdrant.Value{}
	}
	next[path[0].key] = cur
	setInto(cur, path[1:], src)
	return next
}

func setInto(v *qdrant.Value, path keyPath, src map[string]*qdrant.Value) {
	if len(path) == 0 {
		s := v.GetStructValue()
		if s == nil {
			s = &qdrant.Struct{Fields: map[string]*qdrant.Value{}}
			v.Kind = &qdrant.Value_StructValue{StructValue: s}
		}
		if s.Fields == nil {
			s.Fields = map[string]*qdrant.Value{}
		}
		for k, x := range src {
			s.Fields[k] = x
		}
		return
	}
	switch path[0].kind {
	case 'k':
		s := v.GetStructValue()
		if s == nil {
			s = &qdrant.Struct{Fields: map[string]*qdrant.Value{}}
			v.Kind = &qdrant.Value_StructValue{StructValue: s}
		}
		if s.Fields == nil {
			s.Fields = map[string]*qdrant.Value{}
		}
		child, ok := s.Fields[path[0].key]
		if !ok {
			child = &qdrant.Value{}
			s.Fields[path[0].key] = child
		}
		setInto(child, path[1:], src)
	case 'i':
		if l := v.GetListValue(); l != nil && path[0].index < len(l.GetValues()) {
			setInto(l.GetValues()[path[0].index], path[1:], src)
		}
	case 'w':
		if l := v.GetListValue(); l != nil {
			for _, e := range l.GetValues() {
				setInto(e, path[1:], src)
			}
		}
	}
}

// applyCreateIndex builds a payload index. Caller holds c.mu for writing.
func (c *collection) applyCreateIndex(key string, path keyPath, typ qdrant.FieldType) {
	fi := &fieldIndex{key: key, path: path, typ: typ, kw: map[string]map[uint32]struct{}{}, ints: map[int64]map[uint32]struct{}{}, count: map[uint32]struct{}{}}
	c.indexes[key] = fi
	for slot, p := range c.points {
		if p.live {
			fi.add(uint32(slot), p.payload)
		}
	}
}

func (c *collection) applyDeleteIndex(key string) { delete(c.indexes, key) }

func (c *collection) indexAdd(slot uint32, payload map[string]*qdrant.Value) {
	for _, fi := range c.indexes {
		fi.add(slot, payload)
	}
}

func (c *collection) indexRemove(slot uint32, payload map[string]*qdrant.Value) {
	for _, fi := range c.indexes {
		fi.remove(slot, payload)
	}
}

// each calls fn for every indexable scalar at the index's path.
func (fi *fieldIndex) each(payload map[string]*qdrant.Value, fn func(v *qdrant.Value)) {
	for _, v := range fi.path.values(payload, nil) {
		if l := v.GetListValue(); l != nil {
			for _, e := range l.GetValues() {
				fn(e)
			}
			continue
		}
		fn(v)
	}
}

func (fi *fieldIndex) add(slot uint32, payload map[string]*qdrant.Value) {
	fi.each(payload, func(v *qdrant.Value) {
		switch k := v.GetKind().(type) {
		case *qdrant.Value_StringValue:
			if fi.typ == qdrant.FieldType_FieldTypeKeyword {
				addPosting(fi.kw, k.StringValue, slot)
				fi.count[slot] = struct{}{}
			}
		case *qdrant.Value_IntegerValue:
			if fi.typ == qdrant.FieldType_FieldTypeInteger {
				addPosting(fi.ints, k.IntegerValue, slot)
				fi.count[slot] = struct{}{}
			}
		}
	})
}

func (fi *fieldIndex) remove(slot uint32, payload map[string]*qdrant.Value) {
	delete(fi.count, slot)
	fi.each(payload, func(v *qdrant.Value) {
		switch k := v.GetKind().(type) {
		case *qdrant.Value_StringValue:
			removePosting(fi.kw, k.StringValue, slot)
		case *qdrant.Value_IntegerValue:
			removePosting(fi.ints, k.IntegerValue, slot)
		}
	})
}

func addPosting[K comparable](m map[K]map[uint32]struct{}, k K, slot uint32) {
	s := m[k]
	if s == nil {
		s = map[uint32]struct{}{}
		m[k] = s
	}
	s[slot] = struct{}{}
}

func removePosting[K comparable](m map[K]map[uint32]struct{}, k K, slot uint32) {
	if s := m[k]; s != nil {
		delete(s, slot)
		if len(s) == 0 {
			delete(m, k)
		}
	}
}

// matchingIDs returns the ids of live points that match pred, in id order.
// Caller holds c.mu.
// A payload index on one of filter's must conditions narrows the scan to
// its candidates. Caller holds c.mu.
func (c *collection) matchingIDs(pred predicate, filter *qdrant.Filter) []pointID {
	var ids []pointID
	c.eachMatch(pred, filter, func(slot uint32) {
		ids = append(ids, c.points[slot].id)
	})
	sortIDs(ids)
	return ids
}

// eachMatch calls fn for every live slot that matches pred (the compiled
// filter; nil matches all), in no particular order. When a payload index
// applies to filter only its candidates are checked, so deleting or
// counting one document's points costs its points, not the collection.
// Caller holds c.mu.
func (c *collection) eachMatch(pred predicate, filter *qdrant.Filter, fn func(slot uint32)) {
	if pred != nil {
		if cands := c.indexCandidates(filter); cands != nil {
			for slot := range cands {
				if p := &c.points[slot]; p.live && pred(p.id, p.payload) {
					fn(slot)
				}
			}
			return
		}
	}
	for slot := range c.points {
		if p := &c.points[slot]; p.live && (pred == nil || pred(p.id, p.payload)) {
			fn(uint32(slot))
		}
	}
}

func sortIDs(ids []pointID) {
	sort.Slice(ids, func(i, j int) bool { return ids[i].less(ids[j]) })
}

// sortedSlots returns the live slots in id order; the slice is shared and
// must not be modified. Caller holds c.mu.
func (c *collection) sortedSlots() []uint32 {
	if p := c.sorted.Load(); p != nil {
		return *p
	}
	out := make([]uint32, 0, c.live)
	for slot, p := range c.points {
		if p.live {
			out = append(out, uint32(slot))
		}
	}
	sort.Slice(out, func(i, j int) bool { return c.points[out[i]].id.less(c.points[out[j]].id) })
	c.sorted.Store(&out)
	return out
}

// maybeBuildANN attaches a new HNSW index to each dense space that reached
// the threshold (or whose index holds more tombstones than live nodes). The
// nodes are assigned here, under the write lock; the returned function, when
// not nil, inserts them and marks the index ready, and runs after the lock is
// released so that the build blocks neither readers nor other writers.
// Until then searches on the space are exact. Caller holds c.mu for writing.
func (c *collection) maybeBuildANN() func() {
	if c.annCfg.newIndex == nil || c.loading {
		return nil
	}
	var builds []func()
	for _, d := range c.dense {
		if d.ann != nil {
			// Tombstones slow searches and hold memory: rebuild once they
			// outnumber the live entries.
			if live, deleted := d.ann.Stats(); deleted <= max(live, 50000) {
				continue
			}
		} else if d.count < c.annCfg.threshold {
			continue
		}
		ann := c.annCfg.newIndex(d.dim, d.dist, d.m, d.efConstruct, d.quantile)
		if ann == nil {
			continue
		}
		var slots []uint32
		var vecs [][]float32
		for slot, ok := range d.present {
			if ok {
				slots = append(slots, uint32(slot))
				// Rows may be rewritten by later writers while the build
				// runs: insert copies.
				vecs = append(vecs, append([]float32(nil), d.row(uint32(slot))...))
			}
		}
		handles := ann.Assign(slots)
		d.ann = ann
		d.annReady.Store(false)
		ready := &d.annReady
		builds = append(builds, func() {
			ann.Insert(handles, vecs)
			ready.Store(true)
		})
	}
	if len(builds) == 0 {
		return nil
	}
	return func() {
		for _, b := range builds {
			b()
		}
	}
}
