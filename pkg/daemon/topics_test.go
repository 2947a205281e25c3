package daemon_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tributary-rag/tributary/pkg/broker"
	"github.com/tributary-rag/tributary/pkg/daemon"
	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
)

func TestProblems(t *testing.T) {
	var p daemon.Problems
	if err := p.Err(); err != nil {
		t.Fatalf("Err() with no problems = %v, want nil", err)
	}
	p.Addf("chunk-size", "must be positive")
	if err := p.Err(); err == nil || err.Error() != "invalid configuration: TRIBUTARY_CHUNK_SIZE (--chunk-size): must be positive" {
		t.Errorf("Err() with one problem = %v", err)
	}
	full := errors.New("disk full")
	p.Add("data-dir", full)
	p.Addf("replica-id", "%q must be 1-100 characters", "a b")
	err := p.Err()
	want := "invalid configuration: TRIBUTARY_CHUNK_SIZE (--chunk-size): must be positive\n" +
		"TRIBUTARY_DATA_DIR (--data-dir): disk full\n" +
		`TRIBUTARY_REPLICA_ID (--replica-id): "a b" must be 1-100 characters`
	if err == nil || err.Error() != want {
		t.Errorf("Err() = %q, want %q", err, want)
	}
	if !errors.Is(err, full) {
		t.Errorf("Err() = %v does not wrap the added error", err)
	}
}

func TestTopicFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want daemon.TopicFlags
	}{
		{"defaults", nil, nil, daemon.TopicFlags{Partitions: 3, Replication: 1, Enabled: true}},
		{
			"flags and environment",
			[]string{"--topic-replication=2"},
			map[string]string{"TRIBUTARY_TOPIC_PARTITIONS": "6", "TRIBUTARY_PROVISION_TOPICS": "false"},
			daemon.TopicFlags{Partitions: 6, Replication: 2, Enabled: false},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("svc", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			var got daemon.TopicFlags
			got.Register(fs)
			if err := daemon.ParseFlags(fs, tt.args, env(tt.env)); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("TopicFlags = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestTopicFlagsCheck(t *testing.T) {
	tests := []struct {
		flags daemon.TopicFlags
		want  string // the error, "" for none
	}{
		{daemon.TopicFlags{Partitions: 1, Replication: 1}, ""},
		{daemon.TopicFlags{Partitions: 0, Replication: 3}, "invalid configuration: TRIBUTARY_TOPIC_PARTITIONS (--topic-partitions): must be positive"},
		{daemon.TopicFlags{Partitions: 3, Replication: -1}, "invalid configuration: TRIBUTARY_TOPIC_REPLICATION (--topic-replication): must be positive"},
		{daemon.TopicFlags{Partitions: -1, Replication: 0}, "invalid configuration: TRIBUTARY_TOPIC_PARTITIONS (--topic-partitions): must be positive\n" +
			"TRIBUTARY_TOPIC_REPLICATION (--topic-replication): must be positive"},
	}
	for _, tt := range tests {
		var p daemon.Problems
		tt.flags.Check(&p)
		got := fmt.Sprint(p.Err())
		if tt.want == "" {
			tt.want = "<nil>"
		}
		if got != tt.want {
			t.Errorf("%+v.Check: Err() = %q, want %q", tt.flags, got, tt.want)
		}
	}
}

func TestTopicFlagsSpecs(t *testing.T) {
	tf := daemon.TopicFlags{Partitions: 4, Replication: 2, Enabled: true}
	got := tf.Specs([]string{"t.in", "t.other"}, "t.out")
	spec := func(name string) kafkatransport.TopicSpec {
		return kafkatransport.TopicSpec{Name: name, Partitions: 4, ReplicationFactor: 2}
	}
	want := []kafkatransport.TopicSpec{
		spec("t.in"), spec(events.DLQ("t.in")), spec("t.other"), spec(events.DLQ("t.other")), spec("t.out"),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Specs = %+v, want %+v", got, want)
	}
}

func TestTopicFlagsProvision(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t.Run("off does nothing", func(t *testing.T) {
		// No brokers at all: any attempt to create would fail.
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		off := daemon.TopicFlags{Partitions: 1, Replication: 1}
		if err := off.Provision(ctx, logger, nil, kafkatransport.Security{}, kafkatransport.TopicSpec{Name: "x", Partitions: 1, ReplicationFactor: 1}); err != nil {
			t.Errorf("Provision with --provision-topics off = %v, want nil", err)
		}
	})
	t.Run("on creates the topics", func(t *testing.T) {
		b, err := broker.Start(broker.Config{Listen: "127.0.0.1:0"})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		brokers := []string{b.Addr()}
		on := daemon.TopicFlags{Partitions: 2, Replication: 1, Enabled: true}
		if err := on.Provision(ctx, logger, brokers, kafkatransport.Security{}, on.Specs([]string{"prov.in"}, "prov.out")...); err != nil {
			t.Fatalf("Provision = %v", err)
		}
		if err := kafkatransport.CheckTopics(ctx, brokers, kafkatransport.Security{}, "prov.in", events.DLQ("prov.in"), "prov.out"); err != nil {
			t.Errorf("topics after Provision: %v", err)
		}
		if err := kafkatransport.CheckTopics(ctx, brokers, kafkatransport.Security{}, events.DLQ("prov.out")); err == nil || !strings.Contains(err.Error(), "prov.out") {
			t.Errorf("CheckTopics(dead letters of a plain topic) = %v, want it missing", err)
		}
	})
}
