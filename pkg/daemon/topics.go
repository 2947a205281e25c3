package daemon

import (
	"context"
	"flag"
	"log/slog"
	"time"

	"github.com/tributary-rag/tributary/pkg/kafkatransport"
)

// provisionWait is how long TopicFlags.Provision retries a broker that is
// not up yet, so that a service may start together with its broker.
const provisionWait = time.Minute

// TopicFlags are the settings for the topics a service creates at start.
// Every service creates all the topics it reads or writes, whichever
// service starts first, so every service has these flags. Register binds
// them to a flag set.
type TopicFlags struct {
	// Partitions of each topic created (--topic-partitions; default 3).
	Partitions int
	// Replication is the replication factor of each topic created
	// (--topic-replication; default 1).
	Replication int
	// Enabled turns creation on (--provision-topics; default true); off,
	// the topics must exist already.
	Enabled bool
}

// Register registers --topic-partitions, --topic-replication and
// --provision-topics on fs, writing to t when fs is parsed.
func (t *TopicFlags) Register(fs *flag.FlagSet) {
	fs.IntVar(&t.Partitions, "topic-partitions", 3, "partitions of topics created at start")
	fs.IntVar(&t.Replication, "topic-replication", 1, "replication factor of topics created at start")
	fs.BoolVar(&t.Enabled, "provision-topics", true, "create missing topics at start")
}

// Check records in p each setting out of range. Services call it after
// their own checks, so that the topic problems come last.
func (t TopicFlags) Check(p *Problems) {
	if t.Partitions <= 0 {
		p.Addf("topic-partitions", "must be positive")
	}
	if t.Replication <= 0 {
		p.Addf("topic-replication", "must be positive")
	}
}

// Specs returns what to create: each topic of withDLQ together with its
// dead-letter topic (kafkatransport.TopicSpecs), then each of plain alone,
// all with t's partitions and replication factor.
func (t TopicFlags) Specs(withDLQ []string, plain ...string) []kafkatransport.TopicSpec {
	specs := kafkatransport.TopicSpecs(t.Partitions, t.Replication, withDLQ...)
	for _, name := range plain {
		specs = append(specs, kafkatransport.TopicSpec{Name: name, Partitions: t.Partitions, ReplicationFactor: t.Replication})
	}
	return specs
}

// Provision creates the topics of specs that are missing, retrying for up
// to a minute (kafkatransport.Provision), and does nothing when
// --provision-topics is off.
func (t TopicFlags) Provision(ctx context.Context, logger *slog.Logger, brokers []string, sec kafkatransport.Security, specs ...kafkatransport.TopicSpec) error {
	if !t.Enabled {
		return nil
	}
	return kafkatransport.Provision(ctx, logger, provisionWait, brokers, sec, specs...)
}
