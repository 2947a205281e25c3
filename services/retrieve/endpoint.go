package retrieve

import (
	"context"
	"fmt"

	"github.com/go-kit/kit/endpoint"

	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
)

// Endpoints collects the service's endpoints; transports call them.
type Endpoints struct {
	IndexChunk     endpoint.Endpoint
	AcceptDocument endpoint.Endpoint
	DeleteDocument endpoint.Endpoint
	Retrieve       endpoint.Endpoint
	// IndexChunks serves a batch of IndexChunkRequests with one store
	// write; nil makes the chunks subscriber call IndexChunk per message.
	IndexChunks kafkatransport.BatchEndpoint
}

// MakeEndpoints returns the endpoints of s.
func MakeEndpoints(s Service) Endpoints {
	return Endpoints{
		IndexChunk:     MakeIndexChunkEndpoint(s),
		AcceptDocument: MakeAcceptDocumentEndpoint(s),
		DeleteDocument: MakeDeleteDocumentEndpoint(s),
		Retrieve:       MakeRetrieveEndpoint(s),
		IndexChunks:    MakeIndexChunksEndpoint(s),
	}
}

// MakeIndexChunksEndpoint returns a batch endpoint that indexes a batch of
// IndexChunkRequests through IndexChunks (one upsert when s is a
// BatchIndexer). Each response is an IndexResponse; an invalid chunk's
// carries its error (permanent), so it alone is dead-lettered. A store or
// publish failure fails the batch, which the subscriber then handles one
// message at a time.
func MakeIndexChunksEndpoint(s Service) kafkatransport.BatchEndpoint {
	return func(ctx context.Context, batch []kafkatransport.BatchRequest) ([]any, error) {
		chunks := make([]ContextChunk, len(batch))
		for i, r := range batch {
			req, ok := r.Request.(IndexChunkRequest)
			if !ok {
				return nil, fmt.Errorf("index chunks: request %d is %T", i, r.Request)
			}
			chunks[i] = ContextChunk{Ctx: r.Ctx, Chunk: req.Chunk}
		}
		results, errs, err := IndexChunks(ctx, s, chunks)
		if err != nil {
			return nil, err
		}
		resps := make([]any, len(batch))
		for i := range batch {
			var ferr error
			if errs[i] != nil {
				ferr = kafkatransport.Permanent(errs[i])
				if Retryable(errs[i]) {
					ferr = errs[i]
				}
			}
			resps[i] = IndexResponse{IndexResult: results[i], Err: ferr}
		}
		return resps, nil
	}
}

// IndexChunkRequest is the request of the IndexChunk endpoint.
type IndexChunkRequest struct {
	Chunk events.ChunkEmbedded
}

// IndexResponse is the response of IndexChunk and AcceptDocument.
type IndexResponse struct {
	IndexResult
	Err error
}

// Failed implements endpoint.Failer.
func (r IndexResponse) Failed() error { return r.Err }

// MakeIndexChunkEndpoint returns an endpoint that calls s.IndexChunk.
func MakeIndexChunkEndpoint(s Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req := request.(IndexChunkRequest)
		res, err := s.IndexChunk(ctx, req.Chunk)
		return IndexResponse{IndexResult: res, Err: err}, nil
	}
}

// AcceptDocumentRequest is the request of the AcceptDocument endpoint.
type AcceptDocumentRequest struct {
	Document events.DocumentAccepted
}

// MakeAcceptDocumentEndpoint returns an endpoint that calls
// s.AcceptDocument.
func MakeAcceptDocumentEndpoint(s Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req := request.(AcceptDocumentRequest)
		res, err := s.AcceptDocument(ctx, req.Document)
		return IndexResponse{IndexResult: res, Err: err}, nil
	}
}

// DeleteDocumentRequest is the request of the DeleteDocument endpoint.
type DeleteDocumentRequest struct {
	Document events.DocumentDeleted
}

// DeleteDocumentResponse is the response of the DeleteDocument endpoint.
type DeleteDocumentResponse struct {
	Err error
}

// Failed implements endpoint.Failer.
func (r DeleteDocumentResponse) Failed() error { return r.Err }

// MakeDeleteDocumentEndpoint returns an endpoint that calls
// s.DeleteDocument.
func MakeDeleteDocumentEndpoint(s Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req := request.(DeleteDocumentRequest)
		return DeleteDocumentResponse{Err: s.DeleteDocument(ctx, req.Document)}, nil
	}
}

// RetrieveRequest is the request of the Retrieve endpoint.
type RetrieveRequest struct {
	Query events.QueryEmbedded
}

// RetrieveResponse is the response of the Retrieve endpoint.
type RetrieveResponse struct {
	Retrieved events.QueryRetrieved
	Err       error
}

// Failed implements endpoint.Failer.
func (r RetrieveResponse) Failed() error { return r.Err }

// MakeRetrieveEndpoint returns an endpoint that calls s.Retrieve.
func MakeRetrieveEndpoint(s Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req := request.(RetrieveRequest)
		res, err := s.Retrieve(ctx, req.Query)
		return RetrieveResponse{Retrieved: res, Err: err}, nil
	}
}

// IgnoredRequest is what the documents decoder returns for event types the
// service does not act on (document.rejected, its own document.indexed).
type IgnoredRequest struct{}
