package kafkatransport

import (
	"context"

	"github.com/go-kit/kit/endpoint"
)

// PermanentFailures returns an endpoint middleware that turns a business
// error riding in the response (an endpoint.Failer with a non-nil
// Failed()) into the endpoint's error, so the Subscriber sees it before it
// encodes anything: wrapped with Permanent (dead-lettered at once) when
// isPermanent reports true for it, returned as is (retried with backoff)
// otherwise. A nil isPermanent makes no failure permanent. The endpoint's
// own errors and successful responses pass through unchanged.
func PermanentFailures(isPermanent func(error) bool) endpoint.Middleware {
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		return func(ctx context.Context, request any) (any, error) {
			resp, err := next(ctx, request)
			if err != nil {
				return nil, err
			}
			f, ok := resp.(endpoint.Failer)
			if !ok {
				return resp, nil
			}
			failed := f.Failed()
			if failed == nil {
				return resp, nil
			}
			if isPermanent != nil && isPermanent(failed) {
				return nil, Permanent(failed)
			}
			return nil, failed
		}
	}
}
