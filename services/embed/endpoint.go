package embed

import (
	"context"

	"github.com/go-kit/kit/endpoint"

	"github.com/tributary-rag/tributary/pkg/events"
)

// Endpoints collects the service's endpoints; transports call them.
type Endpoints struct {
	EmbedChunk endpoint.Endpoint
	EmbedQuery endpoint.Endpoint
}

// MakeEndpoints returns the endpoints of s.
func MakeEndpoints(s Service) Endpoints {
	return Endpoints{
		EmbedChunk: MakeEmbedChunkEndpoint(s),
		EmbedQuery: MakeEmbedQueryEndpoint(s),
	}
}

// EmbedChunkRequest is the request of the EmbedChunk endpoint.
type EmbedChunkRequest struct {
	Chunk events.ChunkCreated
}

// EmbedChunkResponse is the response of the EmbedChunk endpoint.
type EmbedChunkResponse struct {
	Embedded events.ChunkEmbedded
	Err      error
}

// Failed implements endpoint.Failer.
func (r EmbedChunkResponse) Failed() error { return r.Err }

// MakeEmbedChunkEndpoint returns an endpoint that calls s.EmbedChunk.
func MakeEmbedChunkEndpoint(s Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req := request.(EmbedChunkRequest)
		out, err := s.EmbedChunk(ctx, req.Chunk)
		return EmbedChunkResponse{Embedded: out, Err: err}, nil
	}
}

// EmbedQueryRequest is the request of the EmbedQuery endpoint.
type EmbedQueryRequest struct {
	Query events.QueryApproved
}

// EmbedQueryResponse is the response of the EmbedQuery endpoint.
type EmbedQueryResponse struct {
	Embedded events.QueryEmbedded
	Err      error
}

// Failed implements endpoint.Failer.
func (r EmbedQueryResponse) Failed() error { return r.Err }

// MakeEmbedQueryEndpoint returns an endpoint that calls s.EmbedQuery.
func MakeEmbedQueryEndpoint(s Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req := request.(EmbedQueryRequest)
		out, err := s.EmbedQuery(ctx, req.Query)
		return EmbedQueryResponse{Embedded: out, Err: err}, nil
	}
}
