package vectordb

import (
	"context"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// opPutPoints logs whole points as stored (vectors already normalized), for
// the operations that rewrite part of a point: replay must not normalize
// again, so that it reproduces the stored floats bit for bit.
const opPutPoints byte = 15

// keepShards marks rewritten points to stay under their shard.
func keepShards(ps []preparedPoint) {
	for i := range ps {
		ps[i].keepShard = true
	}
}

func pointNotFound(id pointID) error {
	return status.Errorf(codes.NotFound, "Not found: No point with id %s found", id)
}

// storedPoint returns slot's point in upsert form with the vectors as
// stored. Caller holds c.mu.
func (c *collection) storedPoint(slot uint32) *qdrant.PointStruct {
	p := &c.points[slot]
	return &qdrant.PointStruct{Id: p.id.proto(), Payload: p.payload, Vectors: c.vectorsInput(slot, vectorSelector{all: true})}
}

// putPoints logs and applies rewritten points built under the collection's
// lock by build. Existing points stay under their shard; new ones (a
// restore) go under the key sel names, or none when sel is nil.
func (s *Store) putPoints(ctx context.Context, c *collection, wait bool, sel *qdrant.ShardKeySelector, build func() ([]*qdrant.PointStruct, error)) (*qdrant.UpdateResult, error) {
	return s.write(ctx, c, opPutPoints, wait, func() ([]byte, func() func(), error) {
		ps, err := build()
		if err != nil {
			return nil, nil, err
		}
		prepared, err := c.preparePoints(ps, false)
		if err != nil {
			return nil, nil, err
		}
		if err := c.placeLogged(prepared, sel); err != nil {
			return nil, nil, shardGone()
		}
		keepShards(prepared)
		data, err := proto.Marshal(&qdrant.UpsertPoints{CollectionName: c.name, Points: ps, ShardKeySelector: sel})
		if err != nil {
			return nil, nil, internalf("encode points: %v", err)
		}
		return data, func() func() { return c.applyUpsert(prepared) }, nil
	})
}

// UpdateVectors replaces the named vectors of existing points, keeping
// their other vectors and payload. A missing point is NotFound.
func (s *Store) UpdateVectors(ctx context.Context, req *qdrant.UpdatePointVectors) (*qdrant.UpdateResult, error) {
	if req.GetUpdateFilter() != nil {
		return nil, unimplementedf("conditional update (update_filter)")
	}
	c, shards, err := s.shardedCollection(req.GetCollectionName(), req.GetShardKeySelector())
	if err != nil {
		return nil, err
	}
	in := make([]*qdrant.PointStruct, len(req.GetPoints()))
	for i, p := range req.GetPoints() {
		in[i] = &qdrant.PointStruct{Id: p.GetId(), Vectors: p.GetVectors()}
	}
	// Validate (and normalize) outside the lock.
	upd, err := c.preparePoints(in, true)
	if err != nil {
		return nil, err
	}
	for _, u := range upd {
		if len(u.dense)+len(u.sparse) == 0 {
			return nil, invalidf("no vectors to update for point %s", u.id)
		}
	}
	return s.putPoints(ctx, c, req.GetWait(), nil, func() ([]*qdrant.PointStruct, error) {
		out := make([]*qdrant.PointStruct, 0, len(upd))
		for _, u := range upd {
			slot, ok := c.slots[u.id]
			if !ok || !c.inShards(shards, slot) {
				return nil, pointNotFound(u.id)
			}
			ps := c.storedPoint(slot)
			named := ps.GetVectors().GetVectors().GetVectors()
			for name, v := range u.dense {
				named[name] = qdrant.NewVectorDense(v)
			}
			for name, v := range u.sparse {
				named[name] = qdrant.NewVectorSparse(v.idx, v.val)
			}
			out = append(out, ps)
		}
		return out, nil
	})
}

// DeleteVectors removes the named vectors from the selected points; the
// points and their other vectors stay.
func (s *Store) DeleteVectors(ctx context.Context, req *qdrant.DeletePointVectors) (*qdrant.UpdateResult, error) {
	c, shards, err := s.shardedCollection(req.GetCollectionName(), req.GetShardKeySelector())
	if err != nil {
		return nil, err
	}
	names := req.GetVectors().GetNames()
	if len(names) == 0 {
		return nil, invalidf("no vector names to delete")
	}
	for _, n := range names {
		if _, ok := c.dims[n]; !ok && !c.sparseOK[n] {
			return nil, invalidf("Not existing vector name error: %s", n)
		}
	}
	pred, err := selectorPredicate(req.GetPointsSelector())
	if err != nil {
		return nil, err
	}
	return s.putPoints(ctx, c, req.GetWait(), nil, func() ([]*qdrant.PointStruct, error) {
		ids, err := c.resolveSelector(req.GetPointsSelector(), pred, shards)
		if err != nil {
			return nil, err
		}
		out := make([]*qdrant.PointStruct, 0, len(ids))
		for _, id := range ids {
			slot, ok := c.slots[id]
			if !ok {
				return nil, pointNotFound(id)
			}
			ps := c.storedPoint(slot)
			named := ps.GetVectors().GetVectors().GetVectors()
			for _, n := range names {
				delete(named, n)
			}
			out = append(out, ps)
		}
		return out, nil
	})
}

// DeletePayload removes keys (Qdrant JSON paths) from the selected points'
// payloads.
func (s *Store) DeletePayload(ctx context.Context, req *qdrant.DeletePayloadPoints) (*qdrant.UpdateResult, error) {
	c, shards, err := s.shardedCollection(req.GetCollectionName(), req.GetShardKeySelector())
	if err != nil {
		return nil, err
	}
	paths, err := parsePaths(req.GetKeys())
	if err != nil {
		return nil, err
	}
	pred, err := selectorPredicate(req.GetPointsSelector())
	if err != nil {
		return nil, err
	}
	return s.write(ctx, c, opDeletePayload, req.GetWait(), func() ([]byte, func() func(), error) {
		ids, err := c.resolveSelector(req.GetPointsSelector(), pred, shards)
		if err != nil {
			return nil, nil, err
		}
		data, err := proto.Marshal(&qdrant.DeletePayloadPoints{
			CollectionName: c.name,
			Keys:           req.GetKeys(),
			PointsSelector: qdrant.NewPointsSelectorIDs(idsProto(ids)),
		})
		if err != nil {
			return nil, nil, internalf("encode delete payload: %v", err)
		}
		return data, func() func() { c.applyDeletePayload(ids, paths); return nil }, nil
	})
}

// applyDeletePayload removes paths from the points' payloads. Caller holds
// c.mu for writing.
func (c *collection) applyDeletePayload(ids []pointID, paths []keyPath) {
	if len(paths) == 0 {
		return
	}
	sel := payloadSelector{enabled: true, exclude: paths}
	for _, id := range ids {
		slot, ok := c.slots[id]
		if !ok {
			continue
		}
		old := c.points[slot].payload
		next := sel.apply(old)
		c.indexRemove(slot, old)
		c.points[slot].payload = next
		c.indexAdd(slot, next)
	}
}

// ClearPayload removes the whole payload of the selected points.
func (s *Store) ClearPayload(ctx context.Context, req *qdrant.ClearPayloadPoints) (*qdrant.UpdateResult, error) {
	return s.SetPayload(ctx, &qdrant.SetPayloadPoints{
		CollectionName:   req.GetCollectionName(),
		Wait:             req.Wait,
		PointsSelector:   req.GetPoints(),
		ShardKeySelector: req.GetShardKeySelector(),
	}, true)
}

// UpdateBatch runs the operations in order, each as its own request: a
// failing operation stops the batch and the ones before it stay applied, as
// in Qdrant.
func (s *Store) UpdateBatch(ctx context.Context, req *qdrant.UpdateBatchPoints) ([]*qdrant.UpdateResult, error) {
	name, wait := req.GetCollectionName(), req.Wait
	out := make([]*qdrant.UpdateResult, 0, len(req.GetOperations()))
	for i, op := range req.GetOperations() {
		var r *qdrant.UpdateResult
		var err error
		switch o := op.GetOperation().(type) {
		case *qdrant.PointsUpdateOperation_Upsert:
			r, err = s.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: name, Wait: wait, Points: o.Upsert.GetPoints(),
				ShardKeySelector: o.Upsert.GetShardKeySelector(), UpdateFilter: o.Upsert.GetUpdateFilter()})
		case *qdrant.PointsUpdateOperation_DeleteDeprecated:
			r, err = s.Delete(ctx, &qdrant.DeletePoints{CollectionName: name, Wait: wait, Points: o.DeleteDeprecated})
		case *qdrant.PointsUpdateOperation_DeletePoints_:
			r, err = s.Delete(ctx, &qdrant.DeletePoints{CollectionName: name, Wait: wait, Points: o.DeletePoints.GetPoints(),
				ShardKeySelector: o.DeletePoints.GetShardKeySelector()})
		case *qdrant.PointsUpdateOperation_SetPayload_:
			r, err = s.SetPayload(ctx, &qdrant.SetPayloadPoints{CollectionName: name, Wait: wait, Payload: o.SetPayload.GetPayload(),
				PointsSelector: o.SetPayload.GetPointsSelector(), ShardKeySelector: o.SetPayload.GetShardKeySelector(), Key: o.SetPayload.Key}, false)
		case *qdrant.PointsUpdateOperation_OverwritePayload_:
			r, err = s.SetPayload(ctx, &qdrant.SetPayloadPoints{CollectionName: name, Wait: wait, Payload: o.OverwritePayload.GetPayload(),
				PointsSelector: o.OverwritePayload.GetPointsSelector(), ShardKeySelector: o.OverwritePayload.GetShardKeySelector()}, true)
		case *qdrant.PointsUpdateOperation_DeletePayload_:
			r, err = s.DeletePayload(ctx, &qdrant.DeletePayloadPoints{CollectionName: name, Wait: wait, Keys: o.DeletePayload.GetKeys(),
				PointsSelector: o.DeletePayload.GetPointsSelector(), ShardKeySelector: o.DeletePayload.GetShardKeySelector()})
		case *qdrant.PointsUpdateOperation_ClearPayloadDeprecated:
			r, err = s.ClearPayload(ctx, &qdrant.ClearPayloadPoints{CollectionName: name, Wait: wait, Points: o.ClearPayloadDeprecated})
		case *qdrant.PointsUpdateOperation_ClearPayload_:
			r, err = s.ClearPayload(ctx, &qdrant.ClearPayloadPoints{CollectionName: name, Wait: wait, Points: o.ClearPayload.GetPoints(),
				ShardKeySelector: o.ClearPayload.GetShardKeySelector()})
		case *qdrant.PointsUpdateOperation_UpdateVectors_:
			r, err = s.UpdateVectors(ctx, &qdrant.UpdatePointVectors{CollectionName: name, Wait: wait, Points: o.UpdateVectors.GetPoints(),
				ShardKeySelector: o.UpdateVectors.GetShardKeySelector(), UpdateFilter: o.UpdateVectors.GetUpdateFilter()})
		case *qdrant.PointsUpdateOperation_DeleteVectors_:
			r, err = s.DeleteVectors(ctx, &qdrant.DeletePointVectors{CollectionName: name, Wait: wait, Vectors: o.DeleteVectors.GetVectors(),
				PointsSelector: o.DeleteVectors.GetPointsSelector(), ShardKeySelector: o.DeleteVectors.GetShardKeySelector()})
		default:
			err = invalidf("operation %d is empty", i)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}
