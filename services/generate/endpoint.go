package generate

import (
	"context"
	"fmt"

	"github.com/go-kit/kit/endpoint"
)

// Endpoints collects the service's endpoints.
type Endpoints struct {
	Answer endpoint.Endpoint
}

// MakeEndpoints returns the endpoints of s.
func MakeEndpoints(s Service) Endpoints {
	return Endpoints{Answer: MakeAnswerEndpoint(s)}
}

// AnswerRequest is the request of the Answer endpoint.
type AnswerRequest struct {
	Question Question
	// Skip marks an event that asks for no answer (a search: retrieval
	// only); the endpoint does nothing and the offset is committed.
	Skip bool
}

// AnswerResponse is the response of the Answer endpoint; business errors
// ride in Err.
type AnswerResponse struct {
	Answer Answer
	Err    error
}

// Failed implements endpoint.Failer.
func (r AnswerResponse) Failed() error { return r.Err }

// MakeAnswerEndpoint returns the endpoint of Service.Answer.
func MakeAnswerEndpoint(s Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req, ok := request.(AnswerRequest)
		if !ok {
			return nil, fmt.Errorf("answer endpoint: unexpected request %T", request)
		}
		if req.Skip {
			return AnswerResponse{}, nil
		}
		a, err := s.Answer(ctx, req.Question)
		return AnswerResponse{Answer: a, Err: err}, nil
	}
}
