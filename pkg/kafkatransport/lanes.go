package kafkatransport

import (
	"context"
	"hash/fnv"
	"sync"

	"github.com/segmentio/kafka-go"
)

// workKeyed handles one partition's messages on s.keyLanes goroutines, a
// message's lane chosen by its key, and marks them for commit in offset
// order: a sequencer waits for each message's outcome in fetch order, so
// no offset is committed past an unfinished message. Once a message must
// stay uncommitted (shutting down), nothing after it is committed either.
func (s *Subscriber) workKeyed(ctx context.Context, stopping <-chan struct{}, q <-chan kafka.Message, commits chan<- kafka.Message) {
	type job struct {
		msg  kafka.Message
		done chan bool // the outcome: may it be committed
	}
	// order bounds the partition's messages in flight to the queue size.
	order := make(chan job, s.queueSize)
	lanes := make([]chan job, s.keyLanes)
	var wg sync.WaitGroup
	for i := range lanes {
		lanes[i] = make(chan job, s.queueSize)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range lanes[i] {
				select {
				case <-stopping:
					j.done <- false // fetched but not started
					continue
				default:
				}
				j.done <- s.handle(ctx, stopping, j.msg)
			}
		}()
	}
	sequenced := make(chan struct{})
	go func() {
		defer close(sequenced)
		blocked := false
		for j := range order {
			ok := <-j.done
			blocked = blocked || !ok
			if !blocked {
				commits <- j.msg
			}
		}
	}()
	for msg := range q {
		j := job{msg: msg, done: make(chan bool, 1)}
		order <- j
		lanes[lane(msg.Key, len(lanes))] <- j
	}
	for _, l := range lanes {
		close(l)
	}
	close(order)
	wg.Wait()
	<-sequenced
}

// lane maps a key to one of n lanes (FNV-1a); messages without a key share
// lane 0 and so keep their order.
func lane(key []byte, n int) int {
	if len(key) == 0 {
		return 0
	}
	h := fnv.New32a()
	h.Write(key)
	return int(h.Sum32() % uint32(n))
}
