package kafkatransport_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/eventually"
	kt "github.com/tributary-rag/tributary/pkg/kafkatransport"
)

const testLanes = 8

// keysApart returns n request ids whose lanes differ from slow's.
func keysApart(slow string, n int) []string {
	var out []string
	for i := 0; len(out) < n; i++ {
		k := fmt.Sprintf("fast-%d", i)
		if kt.Lane([]byte(k), testLanes) != kt.Lane([]byte(slow), testLanes) {
			out = append(out, k)
		}
	}
	return out
}

// TestKeyConcurrency blocks the first message of one key on a
// single-partition topic: later messages with other keys are handled
// meanwhile, the blocked key's next message waits for it, and after a
// shutdown in that state everything from the blocked message on is
// delivered again (nothing committed past it) and nothing before it.
func TestKeyConcurrency(t *testing.T) {
	t.Parallel()
	in := cluster.Topic(t, 1)
	group := cluster.Group(t)
	pub := newPublisher(t)
	ctx := events.WithTenant(context.Background(), "acme")
	const slow = "slow"
	fast := keysApart(slow, 4)
	// Partition order: fast0/0, slow/0, fast1/0, fast2/0, slow/1, fast3/0.
	order := []events.AnswerDelta{delta(fast[0], 0), delta(slow, 0), delta(fast[1], 0), delta(fast[2], 0), delta(slow, 1), delta(fast[3], 0)}
	for _, d := range order {
		if err := pub.Publish(ctx, in, d); err != nil {
			t.Fatal(err)
		}
	}
	name := func(req any) string {
		d := req.(kt.Event).Payload.(*events.AnswerDelta)
		return fmt.Sprintf("%s/%d", d.RequestID, d.Seq)
	}

	var mu sync.Mutex
	var handled []string
	seen := func(want ...string) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			for _, w := range want {
				if !slices.Contains(handled, w) {
					return false
				}
			}
			return true
		}
	}
	blocked := make(chan struct{})
	sub := kt.NewSubscriber(kt.SubscriberConfig{Brokers: cluster.Brokers(), Group: group, Topic: in, Producer: pub},
		func(ctx context.Context, req any) (any, error) {
			n := name(req)
			if n == slow+"/0" {
				close(blocked)
				<-ctx.Done() // held until the drain gives up on it
				return nil, ctx.Err()
			}
			mu.Lock()
			handled = append(handled, n)
			mu.Unlock()
			return nil, nil
		}, kt.DecodeEvent, nil,
		kt.SubscriberKeyConcurrency(testLanes), kt.SubscriberDrainTimeout(200*time.Millisecond))
	r := start(t, sub)
	<-blocked
	eventually.True(t, "other keys handled past the blocked one", 10*time.Second, seen(fast[0]+"/0", fast[1]+"/0", fast[2]+"/0", fast[3]+"/0"))
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	if slices.Contains(handled, slow+"/1") {
		t.Errorf("slow/1 handled before slow/0 finished: %v", handled)
	}
	mu.Unlock()
	r.stop(t)

	// Again in the same group: redelivery starts at slow/0.
	mu.Lock()
	handled = nil
	mu.Unlock()
	sub2 := kt.NewSubscriber(kt.SubscriberConfig{Brokers: cluster.Brokers(), Group: group, Topic: in, Producer: pub},
		func(ctx context.Context, req any) (any, error) {
			mu.Lock()
			handled = append(handled, name(req))
			mu.Unlock()
			return nil, nil
		}, kt.DecodeEvent, nil, kt.SubscriberKeyConcurrency(testLanes))
	r2 := start(t, sub2)
	want := []string{slow + "/0", fast[1] + "/0", fast[2] + "/0", slow + "/1", fast[3] + "/0"}
	eventually.True(t, "redelivery from the blocked message on", 10*time.Second, seen(want...))
	time.Sleep(100 * time.Millisecond)
	r2.stop(t)
	mu.Lock()
	defer mu.Unlock()
	if slices.Contains(handled, fast[0]+"/0") {
		t.Errorf("%s/0 (before the blocked message, finished) delivered again: %v", fast[0], handled)
	}
	if slices.Index(handled, slow+"/0") > slices.Index(handled, slow+"/1") {
		t.Errorf("key %s out of order on redelivery: %v", slow, handled)
	}
}

// TestKeyConcurrencyOrderPerKey runs many keys' streams through a few lanes
// and checks each key's order.
func TestKeyConcurrencyOrderPerKey(t *testing.T) {
	t.Parallel()
	in := cluster.Topic(t, 2)
	group := cluster.Group(t)
	keys := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}
	const n = 40
	produceDeltas(t, in, keys, n)
	var mu sync.Mutex
	seen := map[string][]int{}
	total := 0
	sub := kt.NewSubscriber(kt.SubscriberConfig{Brokers: cluster.Brokers(), Group: group, Topic: in, Producer: newPublisher(t)},
		func(ctx context.Context, req any) (any, error) {
			d := req.(kt.Event).Payload.(*events.AnswerDelta)
			time.Sleep(time.Duration(d.Seq%3) * 100 * time.Microsecond) // vary the pace per message
			mu.Lock()
			seen[d.RequestID] = append(seen[d.RequestID], d.Seq)
			total++
			mu.Unlock()
			return nil, nil
		}, kt.DecodeEvent, nil, kt.SubscriberKeyConcurrency(4))
	r := start(t, sub)
	eventually.True(t, "every message", 20*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return total >= len(keys)*n
	})
	r.stop(t)
	mu.Lock()
	defer mu.Unlock()
	checkOrder(t, "keyed", seen, keys, n)
}

// TestKeyConcurrencyWithBatchRejected: the two modes are exclusive.
func TestKeyConcurrencyWithBatchRejected(t *testing.T) {
	t.Parallel()
	sub := kt.NewSubscriber(kt.SubscriberConfig{Brokers: cluster.Brokers(), Group: "g", Topic: "t", Producer: newPublisher(t)},
		func(context.Context, any) (any, error) { return nil, nil }, kt.DecodeEvent, nil,
		kt.SubscriberKeyConcurrency(4), kt.SubscriberBatch(8, 0))
	if err := sub.Run(context.Background()); err == nil {
		t.Fatal("Run with key concurrency and batching: want an error")
	}
}
