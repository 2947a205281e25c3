package edge

import (
	"context"
	"fmt"

	"github.com/go-kit/kit/endpoint"
)

// Endpoints collects the service's endpoints.
type Endpoints struct {
	Ask     endpoint.Endpoint
	Cancel  endpoint.Endpoint
	Abandon endpoint.Endpoint
	Deliver endpoint.Endpoint
}

// MakeEndpoints returns the endpoints of s.
func MakeEndpoints(s Service) Endpoints {
	return Endpoints{
		Ask:     MakeAskEndpoint(s),
		Cancel:  MakeCancelEndpoint(s),
		Abandon: MakeAbandonEndpoint(s),
		Deliver: MakeDeliverEndpoint(s),
	}
}

// AskRequest is the request of the Ask endpoint.
type AskRequest struct {
	Question Question
	Sink     Sink
}

// AskResponse is the response of the Ask endpoint; business errors ride in
// Err.
type AskResponse struct {
	RequestID string
	Err       error
}

// Failed implements endpoint.Failer.
func (r AskResponse) Failed() error { return r.Err }

// MakeAskEndpoint returns the endpoint of Service.Ask.
func MakeAskEndpoint(s Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req, ok := request.(AskRequest)
		if !ok {
			return nil, fmt.Errorf("ask endpoint: unexpected request %T", request)
		}
		id, err := s.Ask(ctx, req.Question, req.Sink)
		return AskResponse{RequestID: id, Err: err}, nil
	}
}

// CancelRequest is the request of the Cancel endpoint.
type CancelRequest struct {
	RequestID string
}

// CancelResponse is the response of the Cancel endpoint.
type CancelResponse struct {
	// InFlight reports whether the request was still in flight.
	InFlight bool
}

// MakeCancelEndpoint returns the endpoint of Service.Cancel.
func MakeCancelEndpoint(s Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req, ok := request.(CancelRequest)
		if !ok {
			return nil, fmt.Errorf("cancel endpoint: unexpected request %T", request)
		}
		return CancelResponse{InFlight: s.Cancel(ctx, req.RequestID)}, nil
	}
}

// AbandonRequest is the request of the Abandon endpoint.
type AbandonRequest struct {
	RequestID string
}

// MakeAbandonEndpoint returns the endpoint of Service.Abandon.
func MakeAbandonEndpoint(s Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req, ok := request.(AbandonRequest)
		if !ok {
			return nil, fmt.Errorf("abandon endpoint: unexpected request %T", request)
		}
		s.Abandon(ctx, req.RequestID)
		return struct{}{}, nil
	}
}

// DeliverRequest is the request of the Deliver endpoint.
type DeliverRequest struct {
	Reply Reply
}

// DeliverResponse is the response of the Deliver endpoint.
type DeliverResponse struct {
	Outcome string
	Err     error
}

// Failed implements endpoint.Failer.
func (r DeliverResponse) Failed() error { return r.Err }

// MakeDeliverEndpoint returns the endpoint of Service.Deliver.
func MakeDeliverEndpoint(s Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req, ok := request.(DeliverRequest)
		if !ok {
			return nil, fmt.Errorf("deliver endpoint: unexpected request %T", request)
		}
		outcome, err := s.Deliver(ctx, req.Reply)
		return DeliverResponse{Outcome: outcome, Err: err}, nil
	}
}
