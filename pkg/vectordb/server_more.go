package vectordb

import (
	"context"
	"time"

	"github.com/qdrant/go-client/qdrant"
)

func (c *collectionsService) Update(ctx context.Context, req *qdrant.UpdateCollection) (*qdrant.CollectionOperationResponse, error) {
	t := time.Now()
	if err := c.s.UpdateCollection(ctx, req); err != nil {
		return nil, err
	}
	return &qdrant.CollectionOperationResponse{Result: true, Time: since(t)}, nil
}

func (c *collectionsService) UpdateAliases(ctx context.Context, req *qdrant.ChangeAliases) (*qdrant.CollectionOperationResponse, error) {
	t := time.Now()
	if err := c.s.UpdateAliases(ctx, req); err != nil {
		return nil, err
	}
	return &qdrant.CollectionOperationResponse{Result: true, Time: since(t)}, nil
}

func (c *collectionsService) ListCollectionAliases(ctx context.Context, req *qdrant.ListCollectionAliasesRequest) (*qdrant.ListAliasesResponse, error) {
	t := time.Now()
	as, err := c.s.ListAliases(ctx, req.GetCollectionName())
	if err != nil {
		return nil, err
	}
	return &qdrant.ListAliasesResponse{Aliases: as, Time: since(t)}, nil
}

func (c *collectionsService) ListAliases(ctx context.Context, req *qdrant.ListAliasesRequest) (*qdrant.ListAliasesResponse, error) {
	t := time.Now()
	as, err := c.s.ListAliases(ctx, "")
	if err != nil {
		return nil, err
	}
	return &qdrant.ListAliasesResponse{Aliases: as, Time: since(t)}, nil
}

func (c *collectionsService) CreateShardKey(ctx context.Context, req *qdrant.CreateShardKeyRequest) (*qdrant.CreateShardKeyResponse, error) {
	if err := c.s.CreateShardKey(ctx, req); err != nil {
		return nil, err
	}
	return &qdrant.CreateShardKeyResponse{Result: true}, nil
}

func (c *collectionsService) DeleteShardKey(ctx context.Context, req *qdrant.DeleteShardKeyRequest) (*qdrant.DeleteShardKeyResponse, error) {
	if err := c.s.DeleteShardKey(ctx, req); err != nil {
		return nil, err
	}
	return &qdrant.DeleteShardKeyResponse{Result: true}, nil
}

func (c *collectionsService) ListShardKeys(ctx context.Context, req *qdrant.ListShardKeysRequest) (*qdrant.ListShardKeysResponse, error) {
	t := time.Now()
	keys, err := c.s.ListShardKeys(ctx, req.GetCollectionName())
	if err != nil {
		return nil, err
	}
	return &qdrant.ListShardKeysResponse{ShardKeys: keys, Time: since(t)}, nil
}

func (p *pointsService) UpdateVectors(ctx context.Context, req *qdrant.UpdatePointVectors) (*qdrant.PointsOperationResponse, error) {
	t := time.Now()
	r, err := p.s.UpdateVectors(ctx, req)
	if err != nil {
		return nil, err
	}
	return opResponse(r, t), nil
}

func (p *pointsService) DeleteVectors(ctx context.Context, req *qdrant.DeletePointVectors) (*qdrant.PointsOperationResponse, error) {
	t := time.Now()
	r, err := p.s.DeleteVectors(ctx, req)
	if err != nil {
		return nil, err
	}
	return opResponse(r, t), nil
}

func (p *pointsService) DeletePayload(ctx context.Context, req *qdrant.DeletePayloadPoints) (*qdrant.PointsOperationResponse, error) {
	t := time.Now()
	r, err := p.s.DeletePayload(ctx, req)
	if err != nil {
		return nil, err
	}
	return opResponse(r, t), nil
}

func (p *pointsService) ClearPayload(ctx context.Context, req *qdrant.ClearPayloadPoints) (*qdrant.PointsOperationResponse, error) {
	t := time.Now()
	r, err := p.s.ClearPayload(ctx, req)
	if err != nil {
		return nil, err
	}
	return opResponse(r, t), nil
}

func (p *pointsService) UpdateBatch(ctx context.Context, req *qdrant.UpdateBatchPoints) (*qdrant.UpdateBatchResponse, error) {
	t := time.Now()
	r, err := p.s.UpdateBatch(ctx, req)
	if err != nil {
		return nil, err
	}
	return &qdrant.UpdateBatchResponse{Result: r, Time: since(t)}, nil
}

func (p *pointsService) QueryGroups(ctx context.Context, req *qdrant.QueryPointGroups) (*qdrant.QueryGroupsResponse, error) {
	t := time.Now()
	r, err := p.s.QueryGroups(ctx, req)
	if err != nil {
		return nil, err
	}
	return &qdrant.QueryGroupsResponse{Result: r, Time: since(t)}, nil
}

func (p *pointsService) SearchGroups(ctx context.Context, req *qdrant.SearchPointGroups) (*qdrant.SearchGroupsResponse, error) {
	t := time.Now()
	r, err := p.s.SearchGroups(ctx, req)
	if err != nil {
		return nil, err
	}
	return &qdrant.SearchGroupsResponse{Result: r, Time: since(t)}, nil
}

func (p *pointsService) Facet(ctx context.Context, req *qdrant.FacetCounts) (*qdrant.FacetResponse, error) {
	t := time.Now()
	hits, err := p.s.Facet(ctx, req)
	if err != nil {
		return nil, err
	}
	return &qdrant.FacetResponse{Hits: hits, Time: since(t)}, nil
}

// The matrix answers carry no result message when no pair was found (fewer
// than two sampled points), which clients read as an empty matrix.

func (p *pointsService) SearchMatrixPairs(ctx context.Context, req *qdrant.SearchMatrixPoints) (*qdrant.SearchMatrixPairsResponse, error) {
	t := time.Now()
	m, err := p.s.SearchMatrix(ctx, req)
	if err != nil {
		return nil, err
	}
	resp := &qdrant.SearchMatrixPairsResponse{Time: since(t)}
	if len(m.pairs) > 0 {
		resp.Result = m.pairsProto()
	}
	return resp, nil
}

func (p *pointsService) SearchMatrixOffsets(ctx context.Context, req *qdrant.SearchMatrixPoints) (*qdrant.SearchMatrixOffsetsResponse, error) {
	t := time.Now()
	m, err := p.s.SearchMatrix(ctx, req)
	if err != nil {
		return nil, err
	}
	resp := &qdrant.SearchMatrixOffsetsResponse{Time: since(t)}
	if len(m.pairs) > 0 {
		resp.Result = m.offsetsProto()
	}
	return resp, nil
}

type snapshotsService struct {
	qdrant.UnimplementedSnapshotsServer
	s *Store
}

func (sn *snapshotsService) Create(ctx context.Context, req *qdrant.CreateSnapshotRequest) (*qdrant.CreateSnapshotResponse, error) {
	t := time.Now()
	d, err := sn.s.CreateSnapshot(ctx, req.GetCollectionName())
	if err != nil {
		return nil, err
	}
	return &qdrant.CreateSnapshotResponse{SnapshotDescription: d, Time: since(t)}, nil
}

func (sn *snapshotsService) List(ctx context.Context, req *qdrant.ListSnapshotsRequest) (*qdrant.ListSnapshotsResponse, error) {
	t := time.Now()
	if req.GetCollectionName() == "" {
		return nil, invalidf("collection_name is required")
	}
	ds, err := sn.s.ListSnapshots(ctx, req.GetCollectionName())
	if err != nil {
		return nil, err
	}
	return &qdrant.ListSnapshotsResponse{SnapshotDescriptions: ds, Time: since(t)}, nil
}

func (sn *snapshotsService) Delete(ctx context.Context, req *qdrant.DeleteSnapshotRequest) (*qdrant.DeleteSnapshotResponse, error) {
	t := time.Now()
	if err := validCollectionName(req.GetCollectionName()); err != nil {
		return nil, err
	}
	if err := sn.s.DeleteSnapshot(ctx, req.GetCollectionName(), req.GetSnapshotName()); err != nil {
		return nil, err
	}
	return &qdrant.DeleteSnapshotResponse{Time: since(t)}, nil
}

func (sn *snapshotsService) CreateFull(ctx context.Context, req *qdrant.CreateFullSnapshotRequest) (*qdrant.CreateSnapshotResponse, error) {
	t := time.Now()
	d, err := sn.s.CreateFullSnapshot(ctx)
	if err != nil {
		return nil, err
	}
	return &qdrant.CreateSnapshotResponse{SnapshotDescription: d, Time: since(t)}, nil
}

func (sn *snapshotsService) ListFull(ctx context.Context, req *qdrant.ListFullSnapshotsRequest) (*qdrant.ListSnapshotsResponse, error) {
	t := time.Now()
	ds, err := sn.s.ListSnapshots(ctx, "")
	if err != nil {
		return nil, err
	}
	return &qdrant.ListSnapshotsResponse{SnapshotDescriptions: ds, Time: since(t)}, nil
}

func (sn *snapshotsService) DeleteFull(ctx context.Context, req *qdrant.DeleteFullSnapshotRequest) (*qdrant.DeleteSnapshotResponse, error) {
	t := time.Now()
	if err := sn.s.DeleteSnapshot(ctx, "", req.GetSnapshotName()); err != nil {
		return nil, err
	}
	return &qdrant.DeleteSnapshotResponse{Time: since(t)}, nil
}
