package audit

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/eventually"
	"github.com/tributary-rag/tributary/pkg/kafkatest"
)

var cluster *kafkatest.Cluster

func TestMain(m *testing.M) { os.Exit(kafkatest.Main(m, &cluster)) }

func eventMsg(topic, typ, tenant, key string, n int) kafka.Message {
	env := events.Envelope{ID: fmt.Sprintf("%s-%s-%d", topic, key, n), Source: "test", Type: typ,
		Time: time.Now().UTC(), TenantID: tenant, CorrelationID: key}
	return kafka.Message{Topic: topic, Key: []byte(key), Headers: env.Headers(),
		Value: []byte(fmt.Sprintf(`{"request_id":%q,"tenant_id":%q,"n":%d}`, key, tenant, n))}
}

// committed returns the group's committed offset (next to read) per
// topic and partition; -1 when none.
func committed(group string, topics []string, partitions int) (map[string]map[int]int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{}}
	for _, tp := range topics {
		for p := 0; p < partitions; p++ {
			req.Topics[tp] = append(req.Topics[tp], p)
		}
	}
	c := &kafka.Client{Addr: kafka.TCP(cluster.Brokers()...)}
	resp, err := c.OffsetFetch(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("offset fetch: %w", err)
	}
	out := map[string]map[int]int64{}
	for tp, ps := range resp.Topics {
		out[tp] = map[int]int64{}
		for _, p := range ps {
			out[tp][p.Partition] = p.CommittedOffset
		}
	}
	return out, nil
}

// lastOffsets returns the highest recorded offset per topic and partition.
func lastOffsets(t *testing.T, l *Log) map[string]map[int]int64 {
	t.Helper()
	last := map[string]map[int]int64{}
	err := l.Scan(context.Background(), nil, func(r Entry) error {
		if last[r.Topic] == nil {
			last[r.Topic] = map[int]int64{}
		}
		last[r.Topic][r.Partition] = max(last[r.Topic][r.Partition], r.Offset)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return last
}

// caughtUp reports whether group committed past every offset in last.
func caughtUp(group string, topics []string, partitions int, last map[string]map[int]int64) (bool, error) {
	com, err := committed(group, topics, partitions)
	if err != nil {
		return false, err
	}
	for tp, ps := range last {
		for p, off := range ps {
			if com[tp][p] != off+1 {
				return false, nil
			}
		}
	}
	return true, nil
}

type runningConsumer struct {
	cancel context.CancelFunc
	done   chan error
}

func startConsumer(t *testing.T, c *Consumer) *runningConsumer {
	ctx, cancel := context.WithCancel(context.Background())
	rc := &runningConsumer{cancel: cancel, done: make(chan error, 1)}
	go func() { rc.done <- c.Run(ctx) }()
	return rc
}

func (rc *runningConsumer) stop(t *testing.T) {
	t.Helper()
	rc.cancel()
	select {
	case err := <-rc.done:
		if err != nil {
			t.Errorf("consumer Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("consumer did not stop")
	}
}

func waitSeq(t *testing.T, l *Log, want uint64) {
	t.Helper()
	eventually.NoError(t, fmt.Sprintf("%d log records", want), 30*time.Second, func() error {
		seq, _ := l.Stats()
		if seq > want {
			t.Fatalf("log has %d records, want %d (duplicates?)", seq, want)
		}
		if seq < want {
			return fmt.Errorf("log has %d records", seq)
		}
		return nil
	})
}

// TestKafkaRecordsEveryTopic publishes events on several topics, checks
// each becomes one record, that offsets are committed only after the
// batch is on disk, and that redelivery (a new group after a restart)
// appends nothing twice.
func TestKafkaRecordsEveryTopic(t *testing.T) {
	const partitions = 3
	prefix := cluster.Prefix(t)
	topics := cluster.CreatePrefixTopics(t, prefix, partitions)
	all := Topics(prefix)
	dir := t.TempDir()
	ctx := context.Background()
	l, err := Open(ctx, dir, testKeys(t), WithSegmentSize(4096), WithRecordPolicy(RecordPolicy{Deltas: true}))
	if err != nil {
		t.Fatal(err)
	}
	svc := NewService(l, nil, nil)
	group := cluster.Group(t)

	var mu sync.Mutex
	var hookErrs []string
	batches := 0
	c := NewConsumer(ConsumerConfig{Brokers: cluster.Brokers(), Group: group, Topics: all}, MakeRecordEndpoint(svc), nil)
	c.afterRecord = func(batch []kafka.Message) {
		// The batch is on disk (a fresh reader of the files sees it) and
		// not yet committed.
		rep, err := Verify(ctx, dir, testKeys(t))
		seq, _ := l.Stats()
		com, cerr := committed(group, all, partitions)
		mu.Lock()
		defer mu.Unlock()
		batches++
		if cerr != nil {
			hookErrs = append(hookErrs, cerr.Error())
		}
		if err != nil || rep.LastSeq != seq {
			hookErrs = append(hookErrs, fmt.Sprintf("before commit: disk has seq %d (%v), log %d", rep.LastSeq, err, seq))
		}
		for _, m := range batch {
			if off := com[m.Topic][m.Partition]; off > m.Offset {
				hookErrs = append(hookErrs, fmt.Sprintf("%s/%d@%d committed (%d) before it was recorded", m.Topic, m.Partition, m.Offset, off))
			}
		}
	}
	rc := startConsumer(t, c)

	var msgs []kafka.Message
	for i := 0; i < 6; i++ {
		msgs = append(msgs, eventMsg(topics.Chunks, events.TypeChunkCreated, "acme", fmt.Sprintf("doc-%d", i%3), i))
		msgs = append(msgs, eventMsg(topics.QueriesReceived, events.TypeQueryReceived, "globex", fmt.Sprintf("req-%d", i), i))
	}
	msgs = append(msgs, eventMsg(topics.AuditEvents, events.AuditTypePrefix+events.AuditKindAuthFailed, "acme", "acme", 0))
	// A malformed event is recorded too, not dead-lettered.
	msgs = append(msgs, kafka.Message{Topic: topics.AnswersModerated, Key: []byte("x"), Value: []byte("not json")})
	cluster.Produce(t, msgs...)
	waitSeq(t, l, uint64(len(msgs)))
	rc.stop(t)

	mu.Lock()
	for _, e := range hookErrs {
		t.Error(e)
	}
	if batches == 0 {
		t.Error("no batch was recorded through the hook")
	}
	mu.Unlock()

	// Every partition's committed offset is past its last message, and
	// no message was recorded twice.
	var recs []Record
	if err := l.Scan(ctx, nil, func(e Entry) error { recs = append(recs, e.Record); return nil }); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range recs {
		k := fmt.Sprintf("%s/%d@%d", r.Topic, r.Partition, r.Offset)
		if seen[k] {
			t.Errorf("record %s twice", k)
		}
		seen[k] = true
	}
	if ok, err := caughtUp(group, all, partitions, lastOffsets(t, l)); !ok || err != nil {
		t.Errorf("committed offsets do not cover the records (%v)", err)
	}
	types := map[string]int{}
	for _, r := range recs {
		types[r.Type]++
	}
	if types[events.TypeChunkCreated] != 6 || types[events.TypeQueryReceived] != 6 || types["tributary.audit.auth_failed"] != 1 || types[""] != 1 {
		t.Errorf("record types = %v", types)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// Restart, and a new group re-reads everything from the start:
	// nothing is appended twice, and new messages still are.
	l2, err := Open(ctx, dir, testKeys(t), WithSegmentSize(4096), WithRecordPolicy(RecordPolicy{Deltas: true}))
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	group2 := cluster.Group(t)
	c2 := NewConsumer(ConsumerConfig{Brokers: cluster.Brokers(), Group: group2, Topics: all}, MakeRecordEndpoint(NewService(l2, nil, nil)), nil)
	rc2 := startConsumer(t, c2)
	cluster.Produce(t, eventMsg(topics.Documents, events.TypeDocumentAccepted, "acme", "doc-9", 9),
		eventMsg(topics.AnswersGenerated, events.TypeAnswerDelta, "acme", "req-9", 9))
	waitSeq(t, l2, uint64(len(msgs)+2))
	// Wait until the new group has consumed (and committed) every
	// partition, so every redelivery has been seen.
	last := lastOffsets(t, l2)
	eventually.True(t, "the second group to catch up", 30*time.Second, func() bool {
		ok, err := caughtUp(group2, all, partitions, last)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	})
	rc2.stop(t)
	if seq, _ := l2.Stats(); seq != uint64(len(msgs)+2) {
		t.Errorf("after redelivery the log has %d records, want %d", seq, len(msgs)+2)
	}
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	if rep, err := Verify(ctx, dir, testKeys(t)); err != nil || rep.Records != uint64(len(msgs)+2) {
		t.Errorf("Verify = %+v, %v", rep, err)
	}
}

// TestKafkaNoCommitWhenRecordingFails: when the log cannot record a batch,
// the consumer stops with the error and commits nothing, so the batch is
// delivered again after the restart.
func TestKafkaNoCommitWhenRecordingFails(t *testing.T) {
	prefix := cluster.Prefix(t)
	topics := cluster.CreatePrefixTopics(t, prefix, 1)
	all := Topics(prefix)
	group := cluster.Group(t)
	cluster.Produce(t, eventMsg(topics.Chunks, events.TypeChunkCreated, "acme", "doc-1", 1))
	failing := func(context.Context, any) (any, error) {
		return RecordResponse{Err: fmt.Errorf("disk full")}, nil
	}
	c := NewConsumer(ConsumerConfig{Brokers: cluster.Brokers(), Group: group, Topics: all}, failing, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := c.Run(ctx)
	if err == nil || ctx.Err() != nil {
		t.Fatalf("Run = %v (ctx %v), want the recording error", err, ctx.Err())
	}
	com, err := committed(group, all, 1)
	if err != nil {
		t.Fatal(err)
	}
	if off := com[topics.Chunks][0]; off >= 0 {
		t.Errorf("committed offset %d after a failed recording, want none", off)
	}
}
