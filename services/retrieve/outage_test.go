package retrieve

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/tributary-rag/tributary/pkg/kafkatransport"
)

// TestStoreOutagesWait: a vector store failure on the indexing paths is
// an outage to wait out (retried without bound), not a poison message to
// dead-letter; other failures keep their classification.
func TestStoreOutagesWait(t *testing.T) {
	fail := func(err error) func(context.Context, any) (any, error) {
		return func(context.Context, any) (any, error) { return nil, err }
	}
	down := fmt.Errorf("%w: upsert: connection refused", ErrStore)
	_, err := storeOutages(fail(down))(context.Background(), nil)
	if !kafkatransport.IsUnavailable(err) || !errors.Is(err, ErrStore) {
		t.Fatalf("store failure became %v, want it unavailable", err)
	}
	if got := kafkatransport.DefaultErrorPolicy(err, 100, 5); got != kafkatransport.Retry {
		t.Errorf("policy for a store outage on attempt 100 = %v, want retry", got)
	}
	invalid := kafkatransport.Permanent(ErrInvalid)
	if _, err := storeOutages(fail(invalid))(context.Background(), nil); kafkatransport.IsUnavailable(err) || !kafkatransport.IsPermanent(err) {
		t.Errorf("an invalid event became %v, want it still permanent", err)
	}
}
