package kafkatransport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/events"
)

// TopicSpec describes a topic to create.
type TopicSpec struct {
	Name              string
	Partitions        int
	ReplicationFactor int
	// Configs are topic configs such as "retention.ms".
	Configs map[string]string
}

// TopicSpecs returns specs for each topic name and its dead-letter topic,
// all with the same partition count and replication factor.
func TopicSpecs(partitions, replicationFactor int, names ...string) []TopicSpec {
	specs := make([]TopicSpec, 0, 2*len(names))
	for _, n := range names {
		specs = append(specs,
			TopicSpec{Name: n, Partitions: partitions, ReplicationFactor: replicationFactor},
			TopicSpec{Name: events.DLQ(n), Partitions: partitions, ReplicationFactor: replicationFactor})
	}
	return specs
}

// EnsureTopics creates the topics in specs that do not exist yet. A topic
// that already exists counts as success, whatever its settings, so every
// instance of a service may call it at start.
func EnsureTopics(ctx context.Context, brokers []string, sec Security, specs ...TopicSpec) error {
	if len(specs) == 0 {
		return nil
	}
	if len(brokers) == 0 {
		return errors.New("ensure topics: no brokers")
	}
	req := &kafka.CreateTopicsRequest{}
	for _, s := range specs {
		if s.Partitions <= 0 || s.ReplicationFactor <= 0 {
			return fmt.Errorf("ensure topics: %s: partitions and replication factor must be positive", s.Name)
		}
		tc := kafka.TopicConfig{Topic: s.Name, NumPartitions: s.Partitions, ReplicationFactor: s.ReplicationFactor}
		for k, v := range s.Configs {
			tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: k, ConfigValue: v})
		}
		req.Topics = append(req.Topics, tc)
	}
	c, t := sec.Client(brokers)
	defer t.CloseIdleConnections()
	resp, err := c.CreateTopics(ctx, req)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	var failed []string
	for name, terr := range resp.Errors {
		if terr != nil && !errors.Is(terr, kafka.TopicAlreadyExists) {
			failed = append(failed, fmt.Sprintf("%s: %v", name, terr))
		}
	}
	if len(failed) > 0 {
		sort.Strings(failed)
		return fmt.Errorf("create topics: %s", strings.Join(failed, "; "))
	}
	return nil
}

// ErrMissingTopics is returned by CheckTopics when topics do not exist.
var ErrMissingTopics = errors.New("missing topics")

// CheckTopics asks the cluster for metadata and returns nil if every topic
// exists with at least one partition. It is the readiness check of a
// service: it fails when no broker answers or a topic is missing.
func CheckTopics(ctx context.Context, brokers []string, sec Security, topics ...string) error {
	if len(brokers) == 0 {
		return errors.New("check topics: no brokers")
	}
	c, t := sec.Client(brokers)
	defer t.CloseIdleConnections()
	resp, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	found := map[string]bool{}
	for _, t := range resp.Topics {
		if t.Error == nil && len(t.Partitions) > 0 {
			found[t.Name] = true
		}
	}
	var missing []string
	for _, t := range topics {
		if !found[t] {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s", ErrMissingTopics, strings.Join(missing, ", "))
	}
	return nil
}

// Provision calls EnsureTopics until it succeeds, for up to wait, so that a
// service and its broker may start together. Each failed attempt is logged
// as a warning; ctx cancellation stops it at once.
func Provision(ctx context.Context, logger *slog.Logger, wait time.Duration, brokers []string, sec Security, specs ...TopicSpec) error {
	deadline := time.Now().Add(wait)
	for attempt := 1; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := EnsureTopics(cctx, brokers, sec, specs...)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("provision topics: %w", err)
		}
		logger.Warn("provision topics: broker not ready, retrying", "attempt", attempt, "error", err.Error())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
