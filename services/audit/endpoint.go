package audit

import (
	"context"
	"iter"

	"github.com/go-kit/kit/endpoint"
	"github.com/segmentio/kafka-go"
)

// Endpoints collects the service's endpoints; transports call them.
type Endpoints struct {
	Record endpoint.Endpoint
	Export endpoint.Endpoint
	Admin  endpoint.Endpoint
}

// MakeEndpoints returns the endpoints of s.
func MakeEndpoints(s Service) Endpoints {
	return Endpoints{Record: MakeRecordEndpoint(s), Export: MakeExportEndpoint(s), Admin: MakeAdminEndpoint(s)}
}

// RecordRequest is the request of the Record endpoint: one fetched batch.
type RecordRequest struct {
	Messages []kafka.Message
}

// RecordResponse is the response of the Record endpoint.
type RecordResponse struct {
	Appended int
	Err      error
}

// Failed implements endpoint.Failer.
func (r RecordResponse) Failed() error { return r.Err }

// MakeRecordEndpoint returns an endpoint that calls s.Record.
func MakeRecordEndpoint(s Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req := request.(RecordRequest)
		n, err := s.Record(ctx, req.Messages)
		return RecordResponse{Appended: n, Err: err}, nil
	}
}

// ExportRequest is the request of the Export endpoint.
type ExportRequest struct {
	Principal Principal
	Filter    Filter
	// Summary asks for a last line with the status, record count and
	// shredded ranges (see ExportSummary), for clients that cannot read
	// trailers (browsers).
	Summary bool
}

// ExportResponse is the response of the Export endpoint: the records to
// stream, consumed by the transport.
type ExportResponse struct {
	Records iter.Seq2[Entry, error]
	Err     error
	// Summary is the request's Summary.
	Summary bool
}

// Failed implements endpoint.Failer.
func (r ExportResponse) Failed() error { return r.Err }

// MakeExportEndpoint returns an endpoint that calls s.Export.
func MakeExportEndpoint(s Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req := request.(ExportRequest)
		recs, err := s.Export(ctx, req.Principal, req.Filter)
		return ExportResponse{Records: recs, Err: err, Summary: req.Summary}, nil
	}
}

// AdminEndpointRequest is the request of the Admin endpoint.
type AdminEndpointRequest struct {
	Principal Principal
	AdminRequest
}

// AdminResponse is the response of the Admin endpoint.
type AdminResponse struct {
	AdminResult
	Err error `json:"-"`
}

// Failed implements endpoint.Failer.
func (r AdminResponse) Failed() error { return r.Err }

// MakeAdminEndpoint returns an endpoint that calls s.Admin.
func MakeAdminEndpoint(s Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req := request.(AdminEndpointRequest)
		res, err := s.Admin(ctx, req.Principal, req.AdminRequest)
		return AdminResponse{AdminResult: res, Err: err}, nil
	}
}
