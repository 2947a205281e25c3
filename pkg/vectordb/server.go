package vectordb

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"time"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
)

// ServerVersion is the Qdrant version the server reports in HealthCheck; the
// official client compares it with its own for compatibility.
const ServerVersion = "1.17.0"

// NewServer returns a gRPC server serving Qdrant's Qdrant, Collections,
// Points and Snapshots services from s. Methods the store does not implement answer
// codes.Unimplemented. A nil logger discards.
func NewServer(s *Store, logger *slog.Logger, opts ...grpc.ServerOption) *grpc.Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts = append([]grpc.ServerOption{
		grpc.MaxRecvMsgSize(64 << 20),
		grpc.MaxSendMsgSize(64 << 20),
		// The official client pings every 10 s, also without active calls;
		// grpc-go's default policy would answer with GOAWAY (too_many_pings).
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.ChainUnaryInterceptor(recoverInterceptor(logger)),
		// Services the store does not serve (Qdrant's internal cluster
		// services, typos) get the same Unimplemented answer as methods.
		grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
			method, _ := grpc.MethodFromServerStream(stream)
			return unimplementedf("%s", method)
		}),
	}, opts...)
	g := grpc.NewServer(opts...)
	qdrant.RegisterQdrantServer(g, &qdrantService{})
	qdrant.RegisterCollectionsServer(g, &collectionsService{s: s})
	qdrant.RegisterPointsServer(g, &pointsService{s: s})
	qdrant.RegisterSnapshotsServer(g, &snapshotsService{s: s})
	return g
}

// Serve serves s on lis until ctx is cancelled, then stops gracefully
// (waiting at most grace for in-flight calls). A nil logger discards; opts
// add to NewServer's (Access.ServerOptions for keys and TLS).
func Serve(ctx context.Context, s *Store, lis net.Listener, logger *slog.Logger, grace time.Duration, opts ...grpc.ServerOption) error {
	g := NewServer(s, logger, opts...)
	errc := make(chan error, 1)
	go func() { errc <- g.Serve(lis) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve grpc: %w", err)
	case <-ctx.Done():
	}
	stopped := make(chan struct{})
	go func() {
		g.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(grace):
		g.Stop()
		<-stopped
	}
	<-errc
	return nil
}

// recoverInterceptor turns panics into Internal errors and gives the
// generated "method X not implemented" answers a clearer message.
func recoverInterceptor(logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				logger.Error("panic in handler", "method", info.FullMethod, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				resp, err = nil, status.Errorf(codes.Internal, "internal error in %s", info.FullMethod)
			}
		}()
		resp, err = handler(ctx, req)
		if st, ok := status.FromError(err); ok && st.Code() == codes.Unimplemented && strings.HasPrefix(st.Message(), "method ") {
			err = status.Errorf(codes.Unimplemented, "tributary vectordb: %s is not implemented by the embedded store (see docs/vectordb.md)", info.FullMethod)
		}
		return resp, err
	}
}

func since(t time.Time) float64 { return time.Since(t).Seconds() }

type qdrantService struct {
	qdrant.UnimplementedQdrantServer
}

func (qdrantService) HealthCheck(context.Context, *qdrant.HealthCheckRequest) (*qdrant.HealthCheckReply, error) {
	commit := "tributary-vectordb"
	return &qdrant.HealthCheckReply{Title: "qdrant - vector search engine (tributary embedded store)", Version: ServerVersion, Commit: &commit}, nil
}

type collectionsService struct {
	qdrant.UnimplementedCollectionsServer
	s *Store
}

func (c *collectionsService) Get(ctx context.Context, req *qdrant.GetCollectionInfoRequest) (*qdrant.GetCollectionInfoResponse, error) {
	t := time.Now()
	info, err := c.s.CollectionInfo(ctx, req.GetCollectionName())
	if err != nil {
		return nil, err
	}
	return &qdrant.GetCollectionInfoResponse{Result: info, Time: since(t)}, nil
}

func (c *collectionsService) List(ctx context.Context, req *qdrant.ListCollectionsRequest) (*qdrant.ListCollectionsResponse, error) {
	t := time.Now()
	names := c.s.ListCollections()
	out := make([]*qdrant.CollectionDescription, len(names))
	for i, n := range names {
		out[i] = &qdrant.CollectionDescription{Name: n}
	}
	return &qdrant.ListCollectionsResponse{Collections: out, Time: since(t)}, nil
}

func (c *collectionsService) Create(ctx context.Context, req *qdrant.CreateCollection) (*qdrant.CollectionOperationResponse, error) {
	t := time.Now()
	if err := c.s.CreateCollection(ctx, req); err != nil {
		return nil, err
	}
	return &qdrant.CollectionOperationResponse{Result: true, Time: since(t)}, nil
}

func (c *collectionsService) Delete(ctx context.Context, req *qdrant.DeleteCollection) (*qdrant.CollectionOperationResponse, error) {
	t := time.Now()
	ok, err := c.s.DeleteCollection(ctx, req.GetCollectionName())
	if err != nil {
		return nil, err
	}
	return &qdrant.CollectionOperationResponse{Result: ok, Time: since(t)}, nil
}

func (c *collectionsService) CollectionExists(ctx context.Context, req *qdrant.CollectionExistsRequest) (*qdrant.CollectionExistsResponse, error) {
	t := time.Now()
	return &qdrant.CollectionExistsResponse{Result: &qdrant.CollectionExists{Exists: c.s.CollectionExists(req.GetCollectionName())}, Time: since(t)}, nil
}

type pointsService struct {
	qdrant.UnimplementedPointsServer
	s *Store
}

func opResponse(r *qdrant.UpdateResult, t time.Time) *qdrant.PointsOperationResponse {
	return &qdrant.PointsOperationResponse{Result: r, Time: since(t)}
}

func (p *pointsService) Upsert(ctx context.Context, req *qdrant.UpsertPoints) (*qdrant.PointsOperationResponse, error) {
	t := time.Now()
	r, err := p.s.Upsert(ctx, req)
	if err != nil {
		return nil, err
	}
	return opResponse(r, t), nil
}

func (p *pointsService) Delete(ctx context.Context, req *qdrant.DeletePoints) (*qdrant.PointsOperationResponse, error) {
	t := time.Now()
	r, err := p.s.Delete(ctx, req)
	if err != nil {
		return nil, err
	}
	return opResponse(r, t), nil
}

func (p *pointsService) Get(ctx context.Context, req *qdrant.GetPoints) (*qdrant.GetResponse, error) {
	t := time.Now()
	res, err := p.s.Get(ctx, req)
	if err != nil {
		return nil, err
	}
	return &qdrant.GetResponse{Result: res, Time: since(t)}, nil
}

func (p *pointsService) SetPayload(ctx context.Context, req *qdrant.SetPayloadPoints) (*qdrant.PointsOperationResponse, error) {
	t := time.Now()
	r, err := p.s.SetPayload(ctx, req, false)
	if err != nil {
		return nil, err
	}
	return opResponse(r, t), nil
}

func (p *pointsService) OverwritePayload(ctx context.Context, req *qdrant.SetPayloadPoints) (*qdrant.PointsOperationResponse, error) {
	t := time.Now()
	r, err := p.s.SetPayload(ctx, req, true)
	if err != nil {
		return nil, err
	}
	return opResponse(r, t), nil
}

func (p *pointsService) CreateFieldIndex(ctx context.Context, req *qdrant.CreateFieldIndexCollection) (*qdrant.PointsOperationResponse, error) {
	t := time.Now()
	r, err := p.s.CreateFieldIndex(ctx, req)
	if err != nil {
		return nil, err
	}
	return opResponse(r, t), nil
}

func (p *pointsService) DeleteFieldIndex(ctx context.Context, req *qdrant.DeleteFieldIndexCollection) (*qdrant.PointsOperationResponse, error) {
	t := time.Now()
	r, err := p.s.DeleteFieldIndex(ctx, req)
	if err != nil {
		return nil, err
	}
	return opResponse(r, t), nil
}

func (p *pointsService) Scroll(ctx context.Context, req *qdrant.ScrollPoints) (*qdrant.ScrollResponse, error) {
	t := time.Now()
	res, next, err := p.s.Scroll(ctx, req)
	if err != nil {
		return nil, err
	}
	return &qdrant.ScrollResponse{Result: res, NextPageOffset: next, Time: since(t)}, nil
}

func (p *pointsService) Count(ctx context.Context, req *qdrant.CountPoints) (*qdrant.CountResponse, error) {
	t := time.Now()
	n, err := p.s.Count(ctx, req)
	if err != nil {
		return nil, err
	}
	return &qdrant.CountResponse{Result: &qdrant.CountResult{Count: n}, Time: since(t)}, nil
}

func (p *pointsService) Search(ctx context.Context, req *qdrant.SearchPoints) (*qdrant.SearchResponse, error) {
	t := time.Now()
	res, err := p.s.Search(ctx, req)
	if err != nil {
		return nil, err
	}
	return &qdrant.SearchResponse{Result: res, Time: since(t)}, nil
}

func (p *pointsService) SearchBatch(ctx context.Context, req *qdrant.SearchBatchPoints) (*qdrant.SearchBatchResponse, error) {
	t := time.Now()
	out := make([]*qdrant.BatchResult, 0, len(req.GetSearchPoints()))
	for _, sp := range req.GetSearchPoints() {
		sp.CollectionName = req.GetCollectionName()
		res, err := p.s.Search(ctx, sp)
		if err != nil {
			return nil, err
		}
		out = append(out, &qdrant.BatchResult{Result: res})
	}
	return &qdrant.SearchBatchResponse{Result: out, Time: since(t)}, nil
}

func (p *pointsService) Query(ctx context.Context, req *qdrant.QueryPoints) (*qdrant.QueryResponse, error) {
	t := time.Now()
	res, err := p.s.Query(ctx, req)
	if err != nil {
		return nil, err
	}
	return &qdrant.QueryResponse{Result: res, Time: since(t)}, nil
}

func (p *pointsService) QueryBatch(ctx context.Context, req *qdrant.QueryBatchPoints) (*qdrant.QueryBatchResponse, error) {
	t := time.Now()
	out := make([]*qdrant.BatchResult, 0, len(req.GetQueryPoints()))
	for _, q := range req.GetQueryPoints() {
		q.CollectionName = req.GetCollectionName()
		res, err := p.s.Query(ctx, q)
		if err != nil {
			return nil, err
		}
		out = append(out, &qdrant.BatchResult{Result: res})
	}
	return &qdrant.QueryBatchResponse{Result: out, Time: since(t)}, nil
}
