package vectordb

import (
	"context"
	"sort"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/protobuf/proto"
)

// CreateCollection creates a collection. It fails with InvalidArgument when
// the collection exists or the configuration is not valid.
func (s *Store) CreateCollection(ctx context.Context, req *qdrant.CreateCollection) error {
	c, err := newCollection(req, s.opts.ann)
	if err != nil {
		return err
	}
	data, err := proto.Marshal(c.create)
	if err != nil {
		return internalf("encode create collection: %v", err)
	}
	s.gate.RLock()
	defer s.gate.RUnlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.colls[c.name]; ok {
		return invalidf("Collection `%s` already exists!", c.name)
	}
	if _, ok := s.aliases[c.name]; ok {
		return invalidf("Alias with the same name `%s` already exists!", c.name)
	}
	seq, err := s.wal.Append(opCreateCollection, data)
	if err != nil {
		return internalf("append wal: %v", err)
	}
	s.colls[c.name] = c
	if err := s.wal.Sync(seq); err != nil {
		return internalf("sync wal: %v", err)
	}
	return nil
}

// DeleteCollection deletes a collection and reports whether it existed.
func (s *Store) DeleteCollection(ctx context.Context, name string) (bool, error) {
	s.gate.RLock()
	defer s.gate.RUnlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.colls[name]
	if c == nil {
		return false, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	seq, err := s.wal.Append(opDeleteCollection, []byte(name))
	if err != nil {
		return false, internalf("append wal: %v", err)
	}
	c.dropped = true
	s.dropCollection(name)
	if err := s.wal.Sync(seq); err != nil {
		return false, internalf("sync wal: %v", err)
	}
	return true, nil
}

// CollectionExists reports whether a collection exists.
func (s *Store) CollectionExists(name string) bool {
	_, err := s.collection(name)
	return err == nil
}

// ListCollections returns the collection names, sorted.
func (s *Store) ListCollections() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	names := make([]string, 0, len(s.colls))
	for n := range s.colls {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// write appends one record for collection c and applies it under c's write
// lock, then waits for durability when wait is set. prepare runs under the
// lock before the append and returns the record data and the apply step;
// apply may return work to finish after the lock is released (index
// insertions).
func (s *Store) write(ctx context.Context, c *collection, typ byte, wait bool, prepare func() ([]byte, func() func(), error)) (*qdrant.UpdateResult, error) {
	s.gate.RLock()
	c.mu.Lock()
	if c.dropped {
		c.mu.Unlock()
		s.gate.RUnlock()
		return nil, collectionNotFound(c.name)
	}
	data, apply, err := prepare()
	if err != nil {
		c.mu.Unlock()
		s.gate.RUnlock()
		return nil, err
	}
	seq, err := s.wal.Append(typ, data)
	if err != nil {
		c.mu.Unlock()
		s.gate.RUnlock()
		return nil, internalf("append wal: %v", err)
	}
	after := apply()
	c.mu.Unlock()
	if after != nil {
		// Index insertions run without the collection lock but inside the
		// gate, so a snapshot never sees a half-inserted batch.
		after()
	}
	s.gate.RUnlock()
	if wait {
		if err := s.wal.Sync(seq); err != nil {
			return nil, internalf("sync wal: %v", err)
		}
	}
	s.maybeKick()
	return updateResult(seq, wait), nil
}

// Upsert inserts or replaces points.
func (s *Store) Upsert(ctx context.Context, req *qdrant.UpsertPoints) (*qdrant.UpdateResult, error) {
	if req.GetUpdateFilter() != nil {
		return nil, unimplementedf("conditional upsert (update_filter)")
	}
	c, shards, err := s.shardedCollection(req.GetCollectionName(), req.GetShardKeySelector())
	if err != nil {
		return nil, err
	}
	shard, logSel, err := c.upsertShard(shards)
	if err != nil {
		return nil, err
	}
	ps, err := c.preparePoints(req.GetPoints(), true)
	if err != nil {
		return nil, err
	}
	for i := range ps {
		ps[i].shard = shard
	}
	if c.unnamed {
		// Only the unnamed vector can be missing from an upsert (named
		// vectors are optional); UpdateVectors/DeleteVectors may leave a
		// point without it.
		for _, p := range ps {
			if len(p.dense) == 0 {
				return nil, invalidf("Vector dimension error: expected dim: %d, got 0", c.dims[""])
			}
		}
	}
	data, err := proto.Marshal(&qdrant.UpsertPoints{CollectionName: c.name, Points: req.GetPoints(), ShardKeySelector: logSel})
	if err != nil {
		return nil, internalf("encode upsert: %v", err)
	}
	return s.write(ctx, c, opUpsert, req.GetWait(), func() ([]byte, func() func(), error) {
		if err := c.checkPlacement(ps, shard); err != nil {
			return nil, nil, err
		}
		return data, func() func() { return c.applyUpsert(ps) }, nil
	})
}

// resolveSelector returns the ids a points selector names: the listed ids
// (less those stored outside the selected shards), or the live points of
// the selected shards matching its filter. Caller holds c.mu.
func (c *collection) resolveSelector(sel *qdrant.PointsSelector, pred predicate, shards shardSel) ([]pointID, error) {
	switch v := sel.GetPointsSelectorOneOf().(type) {
	case *qdrant.PointsSelector_Points:
		ids, err := parseIDs(v.Points.GetIds())
		if err != nil || shards == nil {
			return ids, err
		}
		kept := ids[:0]
		for _, id := range ids {
			if slot, ok := c.slots[id]; !ok || c.inShards(shards, slot) {
				kept = append(kept, id)
			}
		}
		return kept, nil
	case *qdrant.PointsSelector_Filter:
		return c.matchingIDs(c.shardPred(shards, pred), v.Filter), nil
	default:
		return nil, invalidf("points selector is empty")
	}
}

func idsProto(ids []pointID) []*qdrant.PointId {
	out := make([]*qdrant.PointId, len(ids))
	for i, id := range ids {
		out[i] = id.proto()
	}
	return out
}

// selectorPredicate validates a points selector without reading state and
// returns the predicate of its filter, or nil for a list of ids.
func selectorPredicate(sel *qdrant.PointsSelector) (predicate, error) {
	switch v := sel.GetPointsSelectorOneOf().(type) {
	case *qdrant.PointsSelector_Points:
		_, err := parseIDs(v.Points.GetIds())
		return nil, err
	case *qdrant.PointsSelector_Filter:
		p, err := compileFilter(v.Filter)
		if err != nil {
			return nil, err
		}
		if p == nil {
			return func(pointID, map[string]*qdrant.Value) bool { return true }, nil
		}
		return p, nil
	default:
		return nil, invalidf("points selector is empty")
	}
}

// Delete removes points by id or filter.
func (s *Store) Delete(ctx context.Context, req *qdrant.DeletePoints) (*qdrant.UpdateResult, error) {
	c, shards, err := s.shardedCollection(req.GetCollectionName(), req.GetShardKeySelector())
	if err != nil {
		return nil, err
	}
	pred, err := selectorPredicate(req.GetPoints())
	if err != nil {
		return nil, err
	}
	return s.write(ctx, c, opDelete, req.GetWait(), func() ([]byte, func() func(), error) {
		ids, err := c.resolveSelector(req.GetPoints(), pred, shards)
		if err != nil {
			return nil, nil, err
		}
		data, err := proto.Marshal(&qdrant.DeletePoints{
			CollectionName: c.name,
			Points:         qdrant.NewPointsSelectorIDs(idsProto(ids)),
		})
		if err != nil {
			return nil, nil, internalf("encode delete: %v", err)
		}
		return data, func() func() { c.applyDelete(ids); return nil }, nil
	})
}

// SetPayload merges (or, with overwrite, replaces) the payload of the
// selected points.
func (s *Store) SetPayload(ctx context.Context, req *qdrant.SetPayloadPoints, overwrite bool) (*qdrant.UpdateResult, error) {
	c, shards, err := s.shardedCollection(req.GetCollectionName(), req.GetShardKeySelector())
	if err != nil {
		return nil, err
	}
	pred, err := selectorPredicate(req.GetPointsSelector())
	if err != nil {
		return nil, err
	}
	var key keyPath
	if req.Key != nil && !overwrite {
		if key, err = parseKeyPath(req.GetKey()); err != nil {
			return nil, err
		}
	}
	typ := opSetPayload
	if overwrite {
		typ = opOverwritePayload
	}
	return s.write(ctx, c, typ, req.GetWait(), func() ([]byte, func() func(), error) {
		ids, err := c.resolveSelector(req.GetPointsSelector(), pred, shards)
		if err != nil {
			return nil, nil, err
		}
		rec := &qdrant.SetPayloadPoints{
			CollectionName: c.name,
			Payload:        req.GetPayload(),
			PointsSelector: qdrant.NewPointsSelectorIDs(idsProto(ids)),
		}
		if key != nil {
			rec.Key = req.Key
		}
		data, err := proto.Marshal(rec)
		if err != nil {
			return nil, nil, internalf("encode set payload: %v", err)
		}
		return data, func() func() { c.applySetPayload(ids, req.GetPayload(), key, overwrite); return nil }, nil
	})
}

// CreateFieldIndex creates a payload index. Keyword and integer indexes
// serve filtered search; other types are recorded in the schema only.
func (s *Store) CreateFieldIndex(ctx context.Context, req *qdrant.CreateFieldIndexCollection) (*qdrant.UpdateResult, error) {
	c, err := s.collection(req.GetCollectionName())
	if err != nil {
		return nil, err
	}
	if req.FieldType == nil {
		return nil, invalidf("field_type is required")
	}
	path, err := parseKeyPath(req.GetFieldName())
	if err != nil {
		return nil, err
	}
	rec := &qdrant.CreateFieldIndexCollection{CollectionName: c.name, FieldName: req.GetFieldName(), FieldType: req.FieldType}
	data, err := proto.Marshal(rec)
	if err != nil {
		return nil, internalf("encode create index: %v", err)
	}
	return s.write(ctx, c, opCreateIndex, req.GetWait(), func() ([]byte, func() func(), error) {
		return data, func() func() { c.applyCreateIndex(req.GetFieldName(), path, req.GetFieldType()); return nil }, nil
	})
}

// DeleteFieldIndex drops a payload index.
func (s *Store) DeleteFieldIndex(ctx context.Context, req *qdrant.DeleteFieldIndexCollection) (*qdrant.UpdateResult, error) {
	c, err := s.collection(req.GetCollectionName())
	if err != nil {
		return nil, err
	}
	data, err := proto.Marshal(&qdrant.DeleteFieldIndexCollection{CollectionName: c.name, FieldName: req.GetFieldName()})
	if err != nil {
		return nil, internalf("encode delete index: %v", err)
	}
	return s.write(ctx, c, opDeleteIndex, req.GetWait(), func() ([]byte, func() func(), error) {
		return data, func() func() { c.applyDeleteIndex(req.GetFieldName()); return nil }, nil
	})
}

// Get returns the listed points that exist, in request order.
func (s *Store) Get(ctx context.Context, req *qdrant.GetPoints) ([]*qdrant.RetrievedPoint, error) {
	c, shards, err := s.shardedCollection(req.GetCollectionName(), req.GetShardKeySelector())
	if err != nil {
		return nil, err
	}
	ids, err := parseIDs(req.GetIds())
	if err != nil {
		return nil, err
	}
	psel, err := parsePayloadSelector(req.GetWithPayload(), true)
	if err != nil {
		return nil, err
	}
	vsel := parseVectorSelector(req.GetWithVectors())
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]*qdrant.RetrievedPoint, 0, len(ids))
	seen := map[pointID]bool{}
	for _, id := range ids {
		slot, ok := c.slots[id]
		if !ok || seen[id] || !c.inShards(shards, slot) {
			continue
		}
		seen[id] = true
		out = append(out, c.retrieved(slot, psel, vsel))
	}
	return out, nil
}

func (c *collection) retrieved(slot uint32, psel payloadSelector, vsel vectorSelector) *qdrant.RetrievedPoint {
	p := &c.points[slot]
	return &qdrant.RetrievedPoint{Id: p.id.proto(), Payload: psel.apply(p.payload), Vectors: c.vectorsOutput(slot, vsel)}
}

// Scroll pages through points in id order. It returns the page and the id
// to pass as offset for the next page (nil on the last page).
func (s *Store) Scroll(ctx context.Context, req *qdrant.ScrollPoints) ([]*qdrant.RetrievedPoint, *qdrant.PointId, error) {
	c, shards, err := s.shardedCollection(req.GetCollectionName(), req.GetShardKeySelector())
	if err != nil {
		return nil, nil, err
	}
	if req.GetOrderBy() != nil {
		return nil, nil, unimplementedf("scroll order_by")
	}
	pred, err := compileFilter(req.GetFilter())
	if err != nil {
		return nil, nil, err
	}
	pred = c.shardPred(shards, pred)
	limit := 10
	if req.Limit != nil {
		limit = int(req.GetLimit())
	}
	var offset *pointID
	if req.Offset != nil {
		o, err := parsePointID(req.GetOffset())
		if err != nil {
			return nil, nil, err
		}
		offset = &o
	}
	psel, err := parsePayloadSelector(req.GetWithPayload(), true)
	if err != nil {
		return nil, nil, err
	}
	vsel := parseVectorSelector(req.GetWithVectors())
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []*qdrant.RetrievedPoint
	var next *qdrant.PointId
	var cands map[uint32]struct{}
	if pred != nil {
		cands = c.indexCandidates(req.GetFilter())
	}
	var slots []uint32
	if cands == nil {
		slots = c.sortedSlots()
	} else {
		// An indexed condition: sort its (few) candidates instead of
		// walking the whole collection in id order.
		slots = make([]uint32, 0, len(cands))
		for slot := range cands {
			if c.points[slot].live {
				slots = append(slots, slot)
			}
		}
		sort.Slice(slots, func(i, j int) bool { return c.points[slots[i]].id.less(c.points[slots[j]].id) })
	}
	if offset != nil {
		// Binary search to the first id at or after the offset.
		slots = slots[sort.Search(len(slots), func(i int) bool { return !c.points[slots[i]].id.less(*offset) }):]
	}
	for _, slot := range slots {
		p := &c.points[slot]
		if offset != nil && p.id.less(*offset) {
			continue
		}
		if pred != nil && !pred(p.id, p.payload) {
			continue
		}
		if len(out) == limit {
			next = p.id.proto()
			break
		}
		out = append(out, c.retrieved(slot, psel, vsel))
	}
	return out, next, nil
}

// Count returns the number of points matching the filter.
func (s *Store) Count(ctx context.Context, req *qdrant.CountPoints) (uint64, error) {
	c, shards, err := s.shardedCollection(req.GetCollectionName(), req.GetShardKeySelector())
	if err != nil {
		return 0, err
	}
	pred, err := compileFilter(req.GetFilter())
	if err != nil {
		return 0, err
	}
	pred = c.shardPred(shards, pred)
	c.mu.RLock()
	defer c.mu.RUnlock()
	if pred == nil {
		return uint64(c.live), nil
	}
	var n uint64
	c.eachMatch(pred, req.GetFilter(), func(uint32) { n++ })
	return n, nil
}

// Query runs a universal query: nearest (dense, sparse or by id), prefetch
// with RRF or DBSF fusion, or a filtered listing without a query.
func (s *Store) Query(ctx context.Context, req *qdrant.QueryPoints) ([]*qdrant.ScoredPoint, error) {
	if req.GetLookupFrom() != nil {
		return nil, unimplementedf("lookup_from")
	}
	c, shards, err := s.shardedCollection(req.GetCollectionName(), req.GetShardKeySelector())
	if err != nil {
		return nil, err
	}
	limit, offset := defaultQueryLimit, 0
	if req.Limit != nil {
		limit = int(req.GetLimit())
	}
	if req.Offset != nil {
		offset = int(req.GetOffset())
	}
	if limit < 0 || offset < 0 || limit > maxLimit || offset > maxLimit {
		return nil, invalidf("limit or offset is too large")
	}
	psel, err := parsePayloadSelector(req.GetWithPayload(), false)
	if err != nil {
		return nil, err
	}
	vsel := parseVectorSelector(req.GetWithVectors())
	c.mu.RLock()
	defer c.mu.RUnlock()
	res, _, err := c.runStage(queryStage{
		prefetch:  req.GetPrefetch(),
		query:     req.GetQuery(),
		using:     req.GetUsing(),
		filter:    req.GetFilter(),
		params:    req.GetParams(),
		threshold: req.ScoreThreshold,
		limit:     limit + offset,
		shards:    shards,
	}, 0)
	if err != nil {
		return nil, err
	}
	return c.scoredPoints(res, offset, psel, vsel), nil
}

func (c *collection) scoredPoints(res []scored, offset int, psel payloadSelector, vsel vectorSelector) []*qdrant.ScoredPoint {
	if offset >= len(res) {
		return []*qdrant.ScoredPoint{}
	}
	res = res[offset:]
	out := make([]*qdrant.ScoredPoint, len(res))
	for i, r := range res {
		p := &c.points[r.slot]
		out[i] = &qdrant.ScoredPoint{
			Id:      p.id.proto(),
			Payload: psel.apply(p.payload),
			Score:   r.score,
			Vectors: c.vectorsOutput(r.slot, vsel),
		}
	}
	return out
}

// Search runs a classic nearest-neighbour search on a dense vector, or on a
// sparse vector when sparse_indices is set.
func (s *Store) Search(ctx context.Context, req *qdrant.SearchPoints) ([]*qdrant.ScoredPoint, error) {
	var in *qdrant.VectorInput
	if req.GetSparseIndices() != nil {
		in = qdrant.NewVectorInputSparse(req.GetSparseIndices().GetData(), req.GetVector())
	} else {
		in = qdrant.NewVectorInputDense(req.GetVector())
	}
	limit := req.GetLimit()
	q := &qdrant.QueryPoints{
		CollectionName:   req.GetCollectionName(),
		Query:            qdrant.NewQueryNearest(in),
		Using:            req.VectorName,
		Filter:           req.GetFilter(),
		Params:           req.GetParams(),
		ScoreThreshold:   req.ScoreThreshold,
		Limit:            &limit,
		Offset:           req.Offset,
		WithVectors:      req.GetWithVectors(),
		WithPayload:      req.GetWithPayload(),
		ShardKeySelector: req.GetShardKeySelector(),
	}
	return s.Query(ctx, q)
}

// CollectionInfo describes a collection.
func (s *Store) CollectionInfo(ctx context.Context, name string) (*qdrant.CollectionInfo, error) {
	c, err := s.collection(name)
	if err != nil {
		return nil, err
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	points := uint64(c.live)
	var indexed uint64
	for _, d := range c.dense {
		if d.ann != nil {
			indexed += uint64(d.count)
		}
	}
	schema := map[string]*qdrant.PayloadSchemaInfo{}
	for k, fi := range c.indexes {
		n := uint64(len(fi.count))
		schema[k] = &qdrant.PayloadSchemaInfo{DataType: schemaType(fi.typ), Points: &n}
	}
	hnsw := c.create.GetHnswConfig()
	if hnsw == nil {
		hnsw = &qdrant.HnswConfigDiff{M: ptr[uint64](16), EfConstruct: ptr[uint64](100), FullScanThreshold: ptr[uint64](10000)}
	}
	return &qdrant.CollectionInfo{
		Status:              qdrant.CollectionStatus_Green,
		OptimizerStatus:     &qdrant.OptimizerStatus{Ok: true},
		SegmentsCount:       1,
		PointsCount:         &points,
		IndexedVectorsCount: &indexed,
		PayloadSchema:       schema,
		Config: &qdrant.CollectionConfig{
			Params: &qdrant.CollectionParams{
				ShardNumber:         1,
				ShardingMethod:      c.create.ShardingMethod,
				OnDiskPayload:       c.create.GetOnDiskPayload(),
				VectorsConfig:       c.create.GetVectorsConfig(),
				SparseVectorsConfig: c.create.GetSparseVectorsConfig(),
				ReplicationFactor:   ptr[uint32](1),
			},
			HnswConfig:      hnsw,
			OptimizerConfig: optimizerConfig(c.create.GetOptimizersConfig()),
			WalConfig:       &qdrant.WalConfigDiff{},
			Metadata:        c.create.GetMetadata(),
		},
	}, nil
}

func ptr[T any](v T) *T { return &v }

func schemaType(t qdrant.FieldType) qdrant.PayloadSchemaType {
	switch t {
	case qdrant.FieldType_FieldTypeKeyword:
		return qdrant.PayloadSchemaType_Keyword
	case qdrant.FieldType_FieldTypeInteger:
		return qdrant.PayloadSchemaType_Integer
	case qdrant.FieldType_FieldTypeFloat:
		return qdrant.PayloadSchemaType_Float
	case qdrant.FieldType_FieldTypeGeo:
		return qdrant.PayloadSchemaType_Geo
	case qdrant.FieldType_FieldTypeText:
		return qdrant.PayloadSchemaType_Text
	case qdrant.FieldType_FieldTypeBool:
		return qdrant.PayloadSchemaType_Bool
	case qdrant.FieldType_FieldTypeDatetime:
		return qdrant.PayloadSchemaType_Datetime
	case qdrant.FieldType_FieldTypeUuid:
		return qdrant.PayloadSchemaType_Uuid
	}
	return qdrant.PayloadSchemaType_UnknownType
}

// optimizerConfig reports the optimizer settings as created or updated;
// the store has no optimizer, so they are informational.
func optimizerConfig(o *qdrant.OptimizersConfigDiff) *qdrant.OptimizersConfigDiff {
	if o == nil {
		return &qdrant.OptimizersConfigDiff{}
	}
	return proto.Clone(o).(*qdrant.OptimizersConfigDiff)
}
