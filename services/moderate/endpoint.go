package moderate

import (
	"context"
	"fmt"

	"github.com/go-kit/kit/endpoint"

	"github.com/tributary-rag/tributary/pkg/events"
)

// Endpoints collects the service's endpoints.
type Endpoints struct {
	Query   endpoint.Endpoint
	Answer  endpoint.Endpoint
	Context endpoint.Endpoint
}

// MakeEndpoints returns the endpoints of s.
func MakeEndpoints(s Service) Endpoints {
	return Endpoints{Query: MakeQueryEndpoint(s), Answer: MakeAnswerEndpoint(s), Context: MakeContextEndpoint(s)}
}

// QueryRequest is the request of the Query endpoint.
type QueryRequest struct {
	Query events.Query
}

// AnswerRequest is the request of the Answer endpoint.
type AnswerRequest struct {
	Event AnswerEvent
}

// ContextRequest is the request of the Context endpoint.
type ContextRequest struct {
	Retrieved events.QueryRetrieved
}

// EmitResponse is the response of every endpoint: the events to publish;
// business errors ride in Err.
type EmitResponse struct {
	Emissions []Emission
	Err       error
}

// Failed implements endpoint.Failer.
func (r EmitResponse) Failed() error { return r.Err }

// MakeQueryEndpoint returns the endpoint of Service.ModerateQuery.
func MakeQueryEndpoint(s Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req, ok := request.(QueryRequest)
		if !ok {
			return nil, fmt.Errorf("query endpoint: unexpected request %T", request)
		}
		out, err := s.ModerateQuery(ctx, req.Query)
		return EmitResponse{Emissions: out, Err: err}, nil
	}
}

// MakeAnswerEndpoint returns the endpoint of Service.ModerateAnswer.
func MakeAnswerEndpoint(s Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req, ok := request.(AnswerRequest)
		if !ok {
			return nil, fmt.Errorf("answer endpoint: unexpected request %T", request)
		}
		out, err := s.ModerateAnswer(ctx, req.Event)
		return EmitResponse{Emissions: out, Err: err}, nil
	}
}

// MakeContextEndpoint returns the endpoint of Service.ScreenContext.
func MakeContextEndpoint(s Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req, ok := request.(ContextRequest)
		if !ok {
			return nil, fmt.Errorf("context endpoint: unexpected request %T", request)
		}
		out, err := s.ScreenContext(ctx, req.Retrieved)
		return EmitResponse{Emissions: out, Err: err}, nil
	}
}
