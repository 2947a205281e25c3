package ingest

import (
	"context"

	"github.com/go-kit/kit/endpoint"
)

// Endpoints collects the service's endpoints; transports call them.
type Endpoints struct {
	Ingest      endpoint.Endpoint
	Get         endpoint.Endpoint
	List        endpoint.Endpoint
	Delete      endpoint.Endpoint
	MarkIndexed endpoint.Endpoint
}

// MakeEndpoints returns the endpoints of s.
func MakeEndpoints(s Service) Endpoints {
	return Endpoints{
		Ingest:      MakeIngestEndpoint(s),
		Get:         MakeGetEndpoint(s),
		List:        MakeListEndpoint(s),
		Delete:      MakeDeleteEndpoint(s),
		MarkIndexed: MakeMarkIndexedEndpoint(s),
	}
}

// IngestRequest is the request of the Ingest endpoint.
type IngestRequest struct {
	Principal Principal
	Document  Document
}

// IngestResponse is the response of the Ingest endpoint.
type IngestResponse struct {
	Result
	Err error `json:"-"`
}

// Failed implements endpoint.Failer.
func (r IngestResponse) Failed() error { return r.Err }

// MakeIngestEndpoint returns an endpoint that calls s.Ingest.
func MakeIngestEndpoint(s Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req := request.(IngestRequest)
		res, err := s.Ingest(ctx, req.Principal, req.Document)
		return IngestResponse{Result: res, Err: err}, nil
	}
}

// GetRequest is the request of the Get endpoint.
type GetRequest struct {
	Principal  Principal
	DocumentID string
}

// GetResponse is the response of the Get endpoint.
type GetResponse struct {
	Info
	Err error `json:"-"`
}

// Failed implements endpoint.Failer.
func (r GetResponse) Failed() error { return r.Err }

// MakeGetEndpoint returns an endpoint that calls s.Get.
func MakeGetEndpoint(s Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req := request.(GetRequest)
		info, err := s.Get(ctx, req.Principal, req.DocumentID)
		return GetResponse{Info: info, Err: err}, nil
	}
}

// ListRequest is the request of the List endpoint.
type ListRequest struct {
	Principal Principal
	Query     ListQuery
}

// ListResponse is the response of the List endpoint.
type ListResponse struct {
	ListResult
	Err error `json:"-"`
}

// Failed implements endpoint.Failer.
func (r ListResponse) Failed() error { return r.Err }

// MakeListEndpoint returns an endpoint that calls s.List.
func MakeListEndpoint(s Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req := request.(ListRequest)
		res, err := s.List(ctx, req.Principal, req.Query)
		return ListResponse{ListResult: res, Err: err}, nil
	}
}

// DeleteRequest is the request of the Delete endpoint.
type DeleteRequest struct {
	Principal  Principal
	DocumentID string
}

// DeleteResponse is the response of the Delete endpoint.
type DeleteResponse struct {
	Result
	Err error `json:"-"`
}

// Failed implements endpoint.Failer.
func (r DeleteResponse) Failed() error { return r.Err }

// MakeDeleteEndpoint returns an endpoint that calls s.Delete.
func MakeDeleteEndpoint(s Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req := request.(DeleteRequest)
		res, err := s.Delete(ctx, req.Principal, req.DocumentID)
		return DeleteResponse{Result: res, Err: err}, nil
	}
}

// MarkIndexedRequest is the request of the MarkIndexed endpoint: a
// tributary.document.indexed event's tenant, document and version.
type MarkIndexedRequest struct {
	Tenant     string
	DocumentID string
	Version    int
}

// MarkIndexedResponse is the response of the MarkIndexed endpoint.
type MarkIndexedResponse struct {
	Result
	Err error `json:"-"`
}

// Failed implements endpoint.Failer.
func (r MarkIndexedResponse) Failed() error { return r.Err }

// MakeMarkIndexedEndpoint returns an endpoint that calls s.MarkIndexed.
func MakeMarkIndexedEndpoint(s Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req := request.(MarkIndexedRequest)
		res, err := s.MarkIndexed(ctx, req.Tenant, req.DocumentID, req.Version)
		return MarkIndexedResponse{Result: res, Err: err}, nil
	}
}
