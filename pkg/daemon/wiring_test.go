package daemon_test

import (
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/tributary-rag/tributary/pkg/daemon"
)

func TestWiringTopics(t *testing.T) {
	w := daemon.NewWiring()
	w.Topics([]string{"a", "b"}, "c", "a")
	w.Topics([]string{"d"}, "c")
	if got, want := w.TopicNames(), []string{"a", "b", "d", "c"}; !reflect.DeepEqual(got, want) {
		t.Errorf("TopicNames() = %v, want %v", got, want)
	}
	var names []string
	for _, s := range w.TopicSpecs(daemon.TopicFlags{Partitions: 2, Replication: 1, Enabled: true}) {
		names = append(names, s.Name)
		if s.Partitions != 2 {
			t.Errorf("%s: %d partitions, want 2", s.Name, s.Partitions)
		}
	}
	// Consumed topics come with their DLQ; a produced one that is also
	// consumed is created once.
	want := []string{"a", "a.dlq", "b", "b.dlq", "d", "d.dlq", "c"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("TopicSpecs names = %v, want %v", names, want)
	}
}

func TestWiringCloseOrderAndErrors(t *testing.T) {
	w := daemon.NewWiring()
	var order []string
	boom := errors.New("boom")
	w.OnClose(func() error { order = append(order, "broker"); return nil })
	w.OnClose(func() error { order = append(order, "store"); return boom })
	w.OnClose(func() error { order = append(order, "publisher"); return nil })
	if err := w.Close(); !errors.Is(err, boom) {
		t.Errorf("Close() = %v, want %v", err, boom)
	}
	if want := []string{"publisher", "store", "broker"}; !reflect.DeepEqual(order, want) {
		t.Errorf("close order %v, want %v", order, want)
	}
	if err := w.Close(); err != nil || len(order) != 3 {
		t.Errorf("second Close() = %v and ran %d closers, want nil and none again", err, len(order)-3)
	}
}

func TestWiringRoutesChecksDescribe(t *testing.T) {
	w := daemon.NewWiring()
	w.Handle("GET /v1/x", http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) { io.WriteString(rw, "x") }))
	w.Check(daemon.Check{Name: "one", Run: func(context.Context) error { return nil }})
	w.Describe("backend", "first", "k", 1)
	w.Describe("backend", "second")
	rec := httptest.NewRecorder()
	w.Routes().ServeHTTP(rec, httptest.NewRequest("GET", "/v1/x", nil))
	if rec.Body.String() != "x" {
		t.Errorf("GET /v1/x = %q, want x", rec.Body.String())
	}
	if len(w.Checks()) != 1 || w.Checks()[0].Name != "one" {
		t.Errorf("Checks() = %v", w.Checks())
	}
	if v, ok := w.Described("backend"); !ok || v != "second" {
		t.Errorf("Described(backend) = %v, %v; want second, true", v, ok)
	}
	if _, ok := w.Described("missing"); ok {
		t.Error("Described(missing) reported a value")
	}
}

// settings is a service with one setting that wires one part.
type settings struct {
	size  int
	wired *daemon.Deps
}

func (s *settings) Register(fs *flag.FlagSet) { fs.IntVar(&s.size, "thing-size", s.size, "size") }
func (s *settings) Check(p *daemon.Problems) {
	if s.size <= 0 {
		p.Addf("thing-size", "must be positive")
	}
}
func (s *settings) Wire(_ context.Context, w *daemon.Wiring, d daemon.Deps) error {
	*s.wired = d
	return errors.New("stop here")
}

func TestRunServiceChecksEverySettingThenWires(t *testing.T) {
	var deps daemon.Deps
	s := &settings{size: 1, wired: &deps}
	getenv := env(map[string]string{"TRIBUTARY_THING_SIZE": "0", "TRIBUTARY_TOPIC_PARTITIONS": "0"})
	err := daemon.RunService(context.Background(), "thing", daemon.NeedKafka, s, nil, getenv, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "TRIBUTARY_THING_SIZE (--thing-size): must be positive\nTRIBUTARY_TOPIC_PARTITIONS") {
		t.Fatalf("RunService = %v, want the service's problem, then the topics'", err)
	}
	if deps.Logger != nil {
		t.Fatal("wired despite bad settings")
	}
	getenv = env(map[string]string{"TRIBUTARY_THING_SIZE": "3", "TRIBUTARY_KAFKA_BROKERS": "broker:9092", "TRIBUTARY_TOPIC_PREFIX": "staging"})
	err = daemon.RunService(context.Background(), "thing", daemon.NeedKafka, s, nil, getenv, io.Discard)
	if err == nil || err.Error() != "stop here" {
		t.Fatalf("RunService = %v, want the wire error", err)
	}
	if s.size != 3 || deps.Logger == nil || deps.Keys == nil || deps.Topics.Prefix != "staging" ||
		!reflect.DeepEqual(deps.Brokers, []string{"broker:9092"}) || deps.KafkaMetrics == nil {
		t.Errorf("wired with size %d and deps %+v", s.size, deps)
	}
}
