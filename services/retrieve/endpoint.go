package retrieve

import (
	"context"

	"github.com/go-kit/kit/endpoint"

	"github.com/tributary-rag/tributary/pkg/events"
)

// Endpoints collects the service's endpoints; transports call them.
type Endpoints struct {
	IndexChunk     endpoint.Endpoint
	AcceptDocument endpoint.Endpoint
	DeleteDocument endpoint.Endpoint
	Retrieve       endpoint.Endpoint
}

// MakeEndpoints returns the endpoints of s.
func MakeEndpoints(s Service) Endpoints {
	return Endpoints{
		IndexChunk:     MakeIndexChunkEndpoint(s),
		AcceptDocument: MakeAcceptDocumentEndpoint(s),
		DeleteDocument: MakeDeleteDocumentEndpoint(s),
		Retrieve:       MakeRetrieveEndpoint(s),
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
